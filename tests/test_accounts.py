"""Accounts through the CLI (`user`, `token`), password hashing, login throttling with its
backoff and log line, session expiry and the audit log, on a real state.sqlite."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from archive.accounts import audit
from archive.accounts.errors import LoginRefusedError
from archive.accounts.login import authenticate
from archive.accounts.passwords import hash_password, verify_password
from archive.accounts.sessions import Sessions
from archive.accounts.throttle import BASE_LOCK, FREE_FAILURES, MAX_LOCK, lock_seconds
from archive.accounts.tokens import ApiTokens
from archive.accounts.users import Users
from archive.cli import main
from store.state import State
from tests.auth_support import PASSWORD
from tests.support import Cli

NEW_PASSWORD = "another long secret"


@pytest.fixture
def cli(make_cli: Callable[[str], Cli], tmp_path: Path) -> Cli:
    return make_cli(f'data_dir = "{tmp_path / "data"}"\n')


@pytest.fixture
def state(cli: Cli) -> State:
    cli("user", "list")  # the data directory exists
    return State(cli.config.state_path)


def run(cli: Cli, *args: str, input: str, code: int = 0) -> Result:
    """The command with this standard input (``Cli`` gives none)."""
    result = CliRunner().invoke(
        main, ["--config", str(cli.path), *args], input=input, catch_exceptions=False
    )
    assert result.exit_code == code, result.output
    return result


def add(
    cli: Cli, name: str, role: str = "viewer", password: str = PASSWORD, code: int = 0
) -> Result:
    return run(
        cli,
        "user",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        input=password + "\n",
        code=code,
    )


# --------------------------------------------------------------------------- CLI: users


def test_user_add_list_passwd_remove(cli: Cli) -> None:
    assert "No users yet" in cli("user", "list").output
    assert add(cli, "alice", "admin").output.strip() == "User alice added (admin)."
    add(cli, "bob", "editor")
    listing = cli("user", "list").output
    assert "alice" in listing and "admin" in listing and "bob" in listing and "editor" in listing
    state = State(cli.config.state_path)
    assert authenticate(state, "bob", PASSWORD).role == "editor"

    run(cli, "user", "passwd", "bob", "--password-stdin", input=NEW_PASSWORD + "\n")
    with pytest.raises(LoginRefusedError):
        authenticate(state, "bob", PASSWORD)
    assert authenticate(state, "bob", NEW_PASSWORD).name == "bob"

    assert cli("user", "remove", "bob").output.strip() == "User bob removed."
    assert "bob" not in cli("user", "list").output
    with pytest.raises(LoginRefusedError):
        authenticate(state, "bob", NEW_PASSWORD)


def test_password_prompt_asks_twice_and_hides_input(cli: Cli) -> None:
    result = run(
        cli, "user", "add", "carol", "--role", "viewer",
        input=f"{PASSWORD}\nsomething else!\n{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert "do not match" in result.output
    assert PASSWORD not in result.output  # hidden, not echoed
    assert authenticate(State(cli.config.state_path), "carol", PASSWORD).name == "carol"


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("dave", "viewer", "short", "the password is too short: use at least 10 characters"),
        ("x" * 65, "viewer", PASSWORD, "longer than 64 characters"),
        ("bad\tname", "viewer", PASSWORD, "control characters"),
        (" edge", "viewer", PASSWORD, "leading/trailing spaces"),
    ],
)
def test_bad_users_are_refused_with_one_line(
    cli: Cli, name: str, role: str, password: str, message: str
) -> None:
    result = add(cli, name, role, password, code=1)
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "No users yet" in cli("user", "list").output


def test_duplicate_unknown_and_bad_role(cli: Cli) -> None:
    add(cli, "alice")
    assert "there is already a user 'alice'" in add(cli, "alice", code=1).output
    assert "there is no user 'zoe'" in cli("user", "remove", "zoe", code=1).output
    assert (
        "there is no user 'zoe'"
        in run(cli, "user", "passwd", "zoe", "--password-stdin", input="", code=1).output
    )
    assert "'root'" in cli("user", "add", "eve", "--role", "root", code=2).output


# --------------------------------------------------------------------------- hashing


def test_passwords_are_salted_scrypt_hashes_never_stored_in_clear(cli: Cli) -> None:
    add(cli, "alice")
    add(cli, "bob")
    db = sqlite3.connect(cli.config.state_path)
    hashes = [row[0] for row in db.execute("SELECT password FROM account_user ORDER BY name")]
    db.close()
    assert all(h.startswith("scrypt$16384$8$1$") for h in hashes)
    assert hashes[0] != hashes[1]  # same password, different salts
    raw = b"".join(p.read_bytes() for p in cli.config.data_dir.glob("state.sqlite*"))
    assert PASSWORD.encode() not in raw
    assert verify_password(PASSWORD, hashes[0]) and not verify_password(PASSWORD + "x", hashes[0])
    assert not verify_password(PASSWORD, None)  # an unknown user: checked, never a match
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


# --------------------------------------------------------------------------- tokens


def test_token_create_shows_it_once_and_revoke_ends_it(cli: Cli) -> None:
    out = cli("token", "create", "ci", "--role", "editor").output.splitlines()
    assert out[0] == "Token ci (editor) created. It is shown only once:"
    secret = out[1]
    assert secret.startswith("pa_") and len(secret) > 40
    state = State(cli.config.state_path)
    token = ApiTokens(state).check(secret)
    assert token is not None and token.name == "ci" and token.role == "editor"
    listing = cli("token", "list").output
    assert "ci" in listing and "editor" in listing and secret not in listing
    raw = b"".join(p.read_bytes() for p in cli.config.data_dir.glob("state.sqlite*"))
    assert secret.encode() not in raw  # only its digest is kept
    assert "already a token" in cli("token", "create", "ci", code=1).output
    assert cli("token", "create", "reader").output.startswith("Token reader (viewer) created.")
    assert cli("token", "revoke", "ci").output.strip() == "Token ci revoked."
    assert ApiTokens(state).check(secret) is None
    assert "there is no token 'ci'" in cli("token", "revoke", "ci", code=1).output


# --------------------------------------------------------------------------- throttling


def test_lockout_after_five_failures_with_exponential_backoff(
    state: State, caplog: pytest.LogCaptureFixture
) -> None:
    Users(state).add("alice", "admin", PASSWORD)
    now = 1_000_000.0
    caplog.set_level(logging.INFO, logger="archive.accounts")
    for _ in range(FREE_FAILURES - 1):
        with pytest.raises(LoginRefusedError):
            authenticate(state, "alice", "wrong password!", now=now)
    assert authenticate(state, "alice", PASSWORD, now=now).name == "alice"  # not locked yet

    for _ in range(FREE_FAILURES):  # the count restarted at the success
        with pytest.raises(LoginRefusedError):
            authenticate(state, "alice", "wrong password!", now=now)
    locks = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(locks) == 1
    assert "'alice' locked until" in locks[0].getMessage()
    assert "1970-01-12T13:47:10+00:00" in locks[0].getMessage()  # now + 30 s

    with pytest.raises(LoginRefusedError, match="wrong user name or password"):
        authenticate(state, "alice", PASSWORD, now=now + BASE_LOCK - 1)  # right, but locked
    assert authenticate(state, "alice", PASSWORD, now=now + BASE_LOCK + 1).name == "alice"


def test_a_new_password_lifts_the_lock(state: State) -> None:
    Users(state).add("alice", "admin", PASSWORD)
    for _ in range(FREE_FAILURES):
        with pytest.raises(LoginRefusedError):
            authenticate(state, "alice", "wrong password!")
    with pytest.raises(LoginRefusedError):
        authenticate(state, "alice", PASSWORD)
    Users(state).set_password("alice", NEW_PASSWORD)
    assert authenticate(state, "alice", NEW_PASSWORD).name == "alice"


def test_backoff_doubles_and_is_capped() -> None:
    assert [lock_seconds(n) for n in range(1, 9)] == [0, 0, 0, 0, 30, 60, 120, 240]
    assert lock_seconds(40) == MAX_LOCK


def test_each_failure_while_locked_doubles_the_lock(state: State) -> None:
    Users(state).add("alice", "admin", PASSWORD)
    now = 2_000_000.0
    for _ in range(FREE_FAILURES):
        with pytest.raises(LoginRefusedError):
            authenticate(state, "alice", "nope nope nope", now=now)
    later = now + BASE_LOCK + 1  # the lock has ended: one more failure locks for twice as long
    with pytest.raises(LoginRefusedError):
        authenticate(state, "alice", "nope nope nope", now=later)
    with pytest.raises(LoginRefusedError):
        authenticate(state, "alice", PASSWORD, now=later + 2 * BASE_LOCK - 1)
    assert authenticate(state, "alice", PASSWORD, now=later + 2 * BASE_LOCK + 1).name == "alice"


def test_unknown_users_are_refused_with_the_same_message(state: State) -> None:
    Users(state).add("alice", "admin", PASSWORD)
    with pytest.raises(LoginRefusedError) as unknown:
        authenticate(state, "nobody", PASSWORD)
    with pytest.raises(LoginRefusedError) as wrong:
        authenticate(state, "alice", "wrong password!")
    assert str(unknown.value) == str(wrong.value)


# --------------------------------------------------------------------------- sessions


def test_sessions_expire_and_end(state: State) -> None:
    alice = Users(state).add("alice", "admin", PASSWORD)
    now = 3_000_000.0
    sid = Sessions(state).create(alice, hours=12, now=now)
    assert Sessions(state).user(sid, now=now + 12 * 3600 - 1) == alice
    assert Sessions(state).user(sid, now=now + 12 * 3600 + 1) is None
    stored = [r["id_hash"] for r in state.query("SELECT id_hash FROM account_session")]
    assert sid not in stored and len(stored[0]) == 64  # kept as a digest

    other = Sessions(state).create(alice, hours=12, now=now)
    Sessions(state).end(other)
    assert Sessions(state).user(other, now=now) is None
    third = Sessions(state).create(alice, hours=12, now=now)
    Users(state).set_password("alice", NEW_PASSWORD)  # a new password ends every session
    assert Sessions(state).user(third, now=now) is None


# --------------------------------------------------------------------------- audit


def test_audit_log_records_who_when_what_newest_first(state: State) -> None:
    audit.record(state, "alice", "user.add", "bob (editor)")
    audit.record(state, "bob", "policy.edit", "WorkOptima Privacy Policy")
    entries = audit.recent(state)
    assert [(e.user, e.action, e.detail) for e in entries] == [
        ("bob", "policy.edit", "WorkOptima Privacy Policy"),
        ("alice", "user.add", "bob (editor)"),
    ]
    assert entries[0].at.tzinfo is not None
    assert len(audit.recent(state, limit=1)) == 1
