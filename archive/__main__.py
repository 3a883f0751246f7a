"""``python -m archive``: the same command as ``policy-archive``."""

from archive.cli import main

main(prog_name="policy-archive")
