"""Secrets are read at the config edge only: load_config fills them from the environment, and
the code that uses them reads only the config it is given."""

from __future__ import annotations

import ast
from pathlib import Path

from archive.alerts.smtp import SmtpSender
from archive.alerts.tokens import secret_key
from archive.config import config_from_mapping, load_config
from tests.conftest import REPO

ENV = {"POLICY_ARCHIVE_SECRET_KEY": "env-key", "POLICY_ARCHIVE_SMTP_PASSWORD": "env-pass"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_config_fills_empty_secrets_from_the_environment(tmp_path):
    config = load_config(write(tmp_path, '[smtp]\nhost = "mail.example"\n'), environ=ENV)
    assert config.web.secret_key == "env-key"
    assert config.smtp.password == "env-pass"
    assert secret_key(config) == b"env-key"
    assert SmtpSender(config.smtp).settings.password == "env-pass"


def test_the_file_wins_over_the_environment(tmp_path):
    path = write(tmp_path, '[web]\nsecret_key = "file-key"\n[smtp]\npassword = "file-pass"\n')
    config = load_config(path, environ=ENV)
    assert (config.web.secret_key, config.smtp.password) == ("file-key", "file-pass")


def test_without_the_environment_the_key_is_generated_once_in_the_data_dir(tmp_path):
    config = load_config(write(tmp_path, 'data_dir = "d"\n'), environ={})
    assert config.web.secret_key == "" and config.smtp.password == ""
    first = secret_key(config)
    assert len(first) >= 32 and secret_key(config) == first
    assert (tmp_path / "d" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert config_from_mapping({}, path=tmp_path / "c.toml", environ=ENV).web.secret_key == (
        "env-key"
    )


def test_secrets_are_not_shown_in_the_config_repr(tmp_path):
    config = load_config(write(tmp_path, ""), environ=ENV)
    assert "env-key" not in repr(config) and "env-pass" not in repr(config)


def _environment_reads(path: Path) -> list[int]:
    """The lines of a file that use ``os.environ`` / ``os.getenv`` / ``os.putenv``, except
    reading ``PATH`` to hand on to a child process (a search path, not a setting)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    passthrough = {
        id(node.func.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "PATH"
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if "env" in alias.name]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "environb", "getenv", "getenvb", "putenv")
            and id(node) not in passthrough
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_environment_is_read_only_by_the_config_loader():
    config_py = REPO / "archive" / "config" / "__init__.py"
    sources = [p for top in ("archive", "webui", "store") for p in (REPO / top).rglob("*.py")]
    reads = {
        str(p.relative_to(REPO)): lines
        for p in sources
        if p != config_py and (lines := _environment_reads(p))
    }
    assert reads == {}, "read settings and secrets in the config loader and pass them down"
    assert _environment_reads(config_py)  # the check does see the loader's reads


def test_the_check_finds_a_stray_read(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text(
        'import os\nfrom os import getenv\nA = os.environ["X"]\nB = os.getenv("Y")\n'
        'C = os.environ.get("PATH", "")\n',
        encoding="utf-8",
    )
    assert _environment_reads(stray) == [2, 3, 4]
