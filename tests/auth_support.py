"""Accounts in tests: add a user through the CLI, log a Flask test client in, read its CSRF
token. Used by every admin test (h4, h5, h6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient

from archive.cli import main
from archive.config import Config

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)"')


def config_file(config: Config) -> Path:
    """``config.path`` as a file the CLI can read: for a Config built in memory (the
    ``make_config`` fixture), a config.toml naming its data directory is written there."""
    assert config.path is not None
    path = Path(config.path)
    if not path.exists():
        path.write_text(f"data_dir = {json.dumps(str(config.data_dir))}\n", encoding="utf-8")
    return path


def add_user(config_path: Path, name: str, role: str, password: str = PASSWORD) -> None:
    """``policy-archive --config CONFIG user add NAME --role ROLE --password-stdin``."""
    result = CliRunner().invoke(
        main,
        ["--config", str(config_path), "user", "add", name, "--role", role, "--password-stdin"],
        input=password + "\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output


def csrf(client: FlaskClient) -> str:
    """The CSRF token of the client's session (read from the login page before a login, from
    the admin home after it)."""
    page = client.get("/admin/")
    if page.status_code != 200:
        page = client.get("/login")
    match = _META.search(page.text) or _CSRF.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


def login(client: FlaskClient, name: str, password: str = PASSWORD) -> None:
    """Log ``client`` in through the form (GET /login for the token, POST it) and assert the
    redirect that follows a successful login."""
    page = client.get("/login")
    match = _CSRF.search(page.text)
    assert page.status_code == 200 and match, page.text[:500]
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": match.group(1)},
    )
    assert response.status_code == 302, (response.status_code, response.text[:500])
    assert response.headers["Location"].startswith("/"), response.headers["Location"]
