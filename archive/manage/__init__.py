"""Managing policies from the admin UI: the library side.

- :mod:`~archive.manage.preview`: a fetched page kept for a while (in data_dir/previews), the
  extraction preview re-run from it on every selector change, and the page made safe to show
  in a sandboxed frame.
- :mod:`~archive.manage.declared`: the declarations repository the UI writes (Open Terms
  Archive files, one commit per edit authored by the user, history with ``validUntil``), and the
  policies as they are now (config.toml's plus the repository's), without a restart.
- :mod:`~archive.manage.requests` and :mod:`~archive.manage.pauses`: check requests and pause
  flags in state.sqlite, so a web UI that is not the writer can ask the writer to act.
- :mod:`~archive.manage.pickup`: what the writer does with them: the thread in ``run`` that
  reschedules on edits and drains requests, and the direct run when no writer runs.

config.toml is the user's file and is never written.
"""
