"""What protects the admin UI, checked on the real app with every blueprint registered.

The route walk iterates ``app.url_map`` of the real app, so routes added later (policies,
operator views) are checked without being listed here: an admin route without
``require_role``, a mutating route that answers GET, or a POST that skips the CSRF check fails
this file.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import AnyConverter, IntegerConverter, Rule

from archive.accounts import audit as audit_log
from archive.accounts.roles import ROLES
from archive.accounts.users import Users
from archive.alerts import LISTENERS
from archive.app import Archive
from archive.cli import main
from archive.config import Config
from tests.auth_support import PASSWORD, add_user, config_file, csrf, login
from tests.support import serving
from webui import create_app
from webui.auth import CSRF_EXEMPT, MUTATING, require_role

XSS = "<script>alert(1)</script>"
ADMIN_PREFIXES = ("/admin", "/api/admin")


@dataclass
class Site:
    app: Flask
    config: Config
    config_path: Path
    archive: Archive

    def client(self, role: str | None = None) -> FlaskClient:
        """A test client, logged in as the user named after ``role`` (None: anonymous)."""
        client = self.app.test_client()
        if role is not None:
            login(client, role)
        return client

    def token(self, name: str, role: str) -> str:
        result = CliRunner().invoke(
            main,
            ["--config", str(self.config_path), "token", "create", name, "--role", role],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return result.output.splitlines()[1]


@pytest.fixture
def make_site(make_config: Callable[..., Config]) -> Iterator[Callable[..., Site]]:
    """Build the app on a new archive with one user per role (named after it)."""
    opened: list[Archive] = []

    def factory(**sections: object) -> Site:
        config = make_config(**sections)
        arch = Archive.open(config, writer=True, listeners=LISTENERS, create=True)
        opened.append(arch)
        path = config_file(config)
        for role in ROLES:
            add_user(path, role, role)
        return Site(create_app(config, archive=arch), config, path, arch)

    yield factory
    for arch in opened:
        arch.close()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


# --------------------------------------------------------------------------- the route walk


def sample_url(rule: Rule) -> str:
    """A URL the rule matches, with a plausible value for each argument."""
    values: dict[str, object] = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            values[name] = 1
        elif isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        else:
            values[name] = "x"
    url = rule.build(values, append_unknown=False)
    assert url is not None, rule
    return url[1]


def is_admin(rule: Rule) -> bool:
    return rule.rule.startswith(ADMIN_PREFIXES)


def mutating(rule: Rule) -> bool:
    return bool(MUTATING & (rule.methods or set()))


def admin_rules(app: Flask) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules() if is_admin(r)]
    endpoints = {r.endpoint for r in rules}
    # the walk is not vacuous: at least the account pages are in it
    assert {
        "admin_home.index",
        "admin_home.me",
        "admin_users.index",
        "admin_users.add",
    } <= endpoints
    return rules


def send(client: FlaskClient, rule: Rule, **kwargs: object):
    method = "POST" if mutating(rule) else "GET"
    return client.open(sample_url(rule), method=method, **kwargs)


def test_every_admin_route_requires_a_role(site: Site) -> None:
    for rule in admin_rules(site.app):
        view = site.app.view_functions[rule.endpoint]
        assert getattr(view, "required_role", None) in ROLES, (
            f"{rule.endpoint} ({rule.rule}) is not behind webui.auth.require_role"
        )


def test_unauthenticated_admin_requests_go_to_login_or_get_401(site: Site) -> None:
    anonymous = site.client()
    token = csrf(anonymous)  # a valid anonymous token: only the missing login can refuse
    for rule in admin_rules(site.app):
        response = send(anonymous, rule, data={"csrf_token": token})
        url = sample_url(rule)
        if rule.rule.startswith("/api/admin"):
            assert response.status_code == 401, (rule.rule, response.status_code)
            assert response.get_json()["error"]["status"] == 401
        else:
            assert response.status_code == 302, (rule.rule, response.status_code)
            assert response.headers["Location"].startswith("/login?next="), rule.rule
            if not mutating(rule):  # back to the page asked for after the login
                location = urlsplit(response.headers["Location"])
                assert parse_qs(location.query)["next"] == [url], rule.rule


def test_every_post_without_or_with_a_wrong_csrf_token_is_a_400(site: Site) -> None:
    admin = site.client("admin")
    checked = []
    for rule in site.app.url_map.iter_rules():
        if not mutating(rule) or rule.endpoint in CSRF_EXEMPT:
            continue
        url = sample_url(rule)
        for kwargs in ({}, {"data": {"csrf_token": "0" * 64}}, {"headers": {"X-CSRF-Token": "x"}}):
            response = admin.post(url, **kwargs)
            assert response.status_code == 400, (rule.endpoint, kwargs, response.status_code)
            assert "CSRF token" in response.text
        checked.append(rule.endpoint)
    assert {"auth.login_submit", "auth.logout", "admin_users.add"} <= set(checked)
    assert admin.get("/admin/").status_code == 200  # still logged in: nothing ran


def test_no_mutating_route_answers_get(site: Site) -> None:
    admin = site.client("admin")
    adapter = site.app.url_map.bind("localhost")
    for rule in site.app.url_map.iter_rules():
        if not mutating(rule):
            continue
        assert "GET" not in (rule.methods or set()), f"{rule.endpoint} accepts GET"
        url = sample_url(rule)
        try:
            endpoint, _ = adapter.match(url, method="GET")
        except MethodNotAllowed:
            assert admin.get(url).status_code == 405, rule.rule
        else:  # a page at the same address (a form): a different, read-only view
            assert endpoint != rule.endpoint
            assert not any(mutating(r) for r in site.app.url_map.iter_rules(endpoint))


def test_lower_roles_get_403_on_every_admin_route(site: Site) -> None:
    clients = {role: site.client(role) for role in ROLES}
    tokens = {role: csrf(client) for role, client in clients.items()}
    for rule in admin_rules(site.app):
        needed = site.app.view_functions[rule.endpoint].required_role
        for role in ROLES[: ROLES.index(needed)]:
            response = send(clients[role], rule, data={"csrf_token": tokens[role]})
            assert response.status_code == 403, (rule.rule, role, response.status_code)
        if not mutating(rule):  # reads with the role: no refusal, no crash
            response = send(clients[needed], rule)
            assert response.status_code not in (302, 401, 403), (rule.rule, needed)
            assert response.status_code < 500, (rule.rule, response.text[:300])


# --------------------------------------------------------------------------- roles


def test_a_viewer_cannot_post_an_editor_route(make_config: Callable[..., Config]) -> None:
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as arch:
        path = config_file(config)
        add_user(path, "viewer", "viewer")
        add_user(path, "editor", "editor")
        app = create_app(config, archive=arch)
        probe = Blueprint("probe", __name__)
        done: list[str] = []

        @probe.post("/admin/probe")
        @require_role("editor")
        def edit() -> str:
            done.append("edited")
            return "edited"

        app.register_blueprint(probe)
        viewer, editor = app.test_client(), app.test_client()
        login(viewer, "viewer")
        login(editor, "editor")
        assert viewer.post("/admin/probe", data={"csrf_token": csrf(viewer)}).status_code == 403
        assert done == []
        assert editor.post("/admin/probe", data={"csrf_token": csrf(editor)}).text == "edited"


def test_an_editor_cannot_manage_users(site: Site) -> None:
    editor = site.client("editor")
    assert editor.get("/admin/users").status_code == 403
    response = editor.post(
        "/admin/users/add",
        data={"name": "mallory", "role": "admin", "password": PASSWORD, "csrf_token": csrf(editor)},
    )
    assert response.status_code == 403
    assert Users(site.archive.state).find("mallory") is None
    assert "Users" not in editor.get("/admin/").text.split("admin-nav", 1)[1].split("</nav>")[0]


def test_admins_add_change_and_remove_users_and_each_is_audited(site: Site) -> None:
    admin = site.client("admin")
    token = csrf(admin)
    form = {"name": "newbie", "role": "viewer", "password": PASSWORD, "csrf_token": token}
    assert admin.post("/admin/users/add", data=form).status_code == 303
    newbie = Users(site.archive.state).named("newbie")
    admin.post(f"/admin/users/{newbie.id}/role", data={"role": "editor", "csrf_token": token})
    assert Users(site.archive.state).named("newbie").role == "editor"
    admin.post(f"/admin/users/{newbie.id}/remove", data={"csrf_token": token})
    assert Users(site.archive.state).find("newbie") is None
    short = admin.post(
        "/admin/users/add", data={**form, "password": "short"}, follow_redirects=True
    )
    assert "at least 10 characters" in short.text
    me = Users(site.archive.state).named("admin")
    assert admin.post(f"/admin/users/{me.id}/remove", data={"csrf_token": token}).status_code == 403
    entries = [(e.user, e.action, e.detail) for e in audit_log.recent(site.archive.state)]
    assert ("admin", "user.add", "newbie (viewer)") in entries
    assert ("admin", "user.role", "newbie: viewer → editor") in entries
    assert ("admin", "user.remove", "newbie (editor)") in entries


# --------------------------------------------------------------------------- XSS


def test_names_with_markup_are_shown_escaped(site: Site) -> None:
    add_user(site.config_path, XSS, "viewer")
    admin = site.client("admin")
    page = admin.get("/admin/users").text
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    as_xss = site.client()
    login(as_xss, XSS)
    for url in ("/admin/", "/"):
        text = as_xss.get(url).text
        assert XSS not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    failed = site.client()
    response = failed.post(
        "/login", data={"username": XSS, "password": "wrong!", "csrf_token": csrf(failed)}
    )
    assert XSS not in response.text and "&lt;script&gt;" in response.text


# --------------------------------------------------------------------------- login, sessions


def set_cookies(response) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith("pa_session=")]


def login_response(client: FlaskClient, name: str, **kwargs: object):
    token = csrf(client)
    return client.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf_token": token}, **kwargs
    )


def test_session_cookie_flags(make_site: Callable[..., Site]) -> None:
    plain = make_site()
    cookie = set_cookies(login_response(plain.client(), "viewer"))[0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    over_https = set_cookies(
        login_response(plain.client(), "viewer", base_url="https://localhost")
    )[0]
    assert "Secure" in over_https
    web = dataclasses.replace(plain.config.web, base_url="https://archive.example")
    public = create_app(dataclasses.replace(plain.config, web=web), archive=plain.archive)
    assert "Secure" in set_cookies(login_response(public.test_client(), "viewer"))[0]


def test_one_message_for_unknown_user_and_wrong_password(site: Site) -> None:
    client = site.client()
    token = csrf(client)
    unknown = client.post(
        "/login", data={"username": "nobody", "password": PASSWORD, "csrf_token": token}
    )
    wrong = client.post(
        "/login", data={"username": "admin", "password": "wrong!!", "csrf_token": token}
    )
    assert unknown.status_code == wrong.status_code == 200
    message = "Wrong user name or password"
    assert message in unknown.text and message in wrong.text
    assert 'class="site"' in unknown.text  # the site's header and footer are kept


def test_login_lockout_refuses_the_right_password_and_logs_it(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    client = site.client()
    token = csrf(client)
    caplog.set_level(logging.INFO, logger="archive.accounts")
    for _ in range(5):
        client.post(
            "/login", data={"username": "editor", "password": "bad bad bad", "csrf_token": token}
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'editor' locked until" in w for w in warnings), warnings
    right = client.post(
        "/login", data={"username": "editor", "password": PASSWORD, "csrf_token": token}
    )
    assert right.status_code == 200 and "Wrong user name or password" in right.text
    login(site.client(), "viewer")  # other accounts are not locked


def test_login_redirects_only_to_paths_of_this_site(site: Site) -> None:
    for target, expected in [
        ("/policies", "/policies"),
        ("/admin/users?x=1", "/admin/users?x=1"),
        ("//evil.example/", "/admin/"),
        ("https://evil.example/", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("", "/admin/"),
    ]:
        client = site.client()
        token = csrf(client)
        response = client.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert response.headers["Location"] == expected, target


def test_csrf_token_changes_at_login(site: Site) -> None:
    client = site.client()
    before = csrf(client)
    login(client, "admin")
    assert csrf(client) != before


def test_logout_ends_the_session_server_side(site: Site) -> None:
    client = site.client("admin")
    cookie = client.get_cookie("pa_session")
    assert cookie is not None
    assert "Log out" in client.get("/").text
    response = client.post("/logout", data={"csrf_token": csrf(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Log in" in client.get("/").text
    replay = site.app.test_client()
    replay.set_cookie("pa_session", cookie.value)  # the old cookie, copied before logout
    assert replay.get("/admin/").status_code == 302


def test_expired_sessions_need_a_new_login(site: Site) -> None:
    client = site.client("admin")
    assert client.get("/admin/").status_code == 200
    with site.archive.state.connect() as db:
        db.execute("UPDATE account_session SET expires = 0")
    assert client.get("/admin/").headers["Location"] == "/login?next=/admin/"


# --------------------------------------------------------------------------- API tokens


def test_bearer_tokens_work_until_revoked(site: Site) -> None:
    secret = site.token("ci", "admin")
    client = site.app.test_client()
    auth = {"Authorization": f"Bearer {secret}"}
    me = client.get("/api/admin/me", headers=auth)
    assert me.status_code == 200 and me.get_json() == {
        "name": "token:ci",
        "role": "admin",
        "token": True,
    }
    added = client.post(
        "/admin/users/add",
        headers=auth,
        data={"name": "bot", "role": "viewer", "password": PASSWORD},
    )  # no CSRF token: the Bearer header is the authority
    assert added.status_code == 303 and Users(site.archive.state).find("bot") is not None
    assert ("token:ci", "user.add") in [
        (e.user, e.action) for e in audit_log.recent(site.archive.state)
    ]
    assert (
        client.get("/api/admin/me", headers={"Authorization": "Bearer pa_wrong"}).status_code == 401
    )
    CliRunner().invoke(main, ["--config", str(site.config_path), "token", "revoke", "ci"])
    assert client.get("/api/admin/me", headers=auth).status_code == 401


def test_a_viewer_token_cannot_edit_and_a_bad_bearer_overrides_the_cookie(site: Site) -> None:
    secret = site.token("reader", "viewer")
    auth = {"Authorization": f"Bearer {secret}"}
    client = site.app.test_client()
    assert client.get("/api/admin/me", headers=auth).status_code == 200
    assert client.get("/admin/users", headers=auth).status_code == 403
    browser = site.client("admin")
    assert browser.get("/api/admin/me", headers={"Authorization": "Bearer pa_x"}).status_code == 401


# --------------------------------------------------------------------------- private site


def test_a_private_site_needs_a_login_except_for_login_static_and_alert_links(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(web={"private": True})
    anonymous = site.client()
    assert anonymous.get("/").headers["Location"] == "/login?next=/"
    assert anonymous.get("/policies").status_code == 302
    assert anonymous.get("/api/policies").status_code == 401
    assert anonymous.get("/login").status_code == 200
    with anonymous.get("/static/style.css") as static:
        assert static.status_code == 200
    assert (
        anonymous.get("/alerts/unsubscribe/not-a-token").status_code == 400
    )  # the link's own check
    refs = anonymous.get("/archive.git/info/refs?service=git-upload-pack")
    assert refs.status_code == 401 and refs.headers["WWW-Authenticate"].startswith("Basic")
    viewer = site.client("viewer")
    assert viewer.get("/").status_code == 200 and viewer.get("/api/policies").status_code == 200
    secret = site.token("script", "viewer")
    assert (
        anonymous.get("/api/policies", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    basic = base64.b64encode(f"git:{secret}".encode()).decode()
    refs = anonymous.get(
        "/archive.git/info/refs?service=git-upload-pack",
        headers={"Authorization": f"Basic {basic}"},
    )
    assert refs.status_code == 200 and b"git-upload-pack" in refs.data
    refs.close()


def test_a_public_site_stays_public(site: Site) -> None:
    anonymous = site.client()
    assert anonymous.get("/").status_code == 200
    assert anonymous.get("/api/policies").status_code == 200
    assert "Log in" in anonymous.get("/").text


@pytest.mark.slow
def test_git_clone_of_a_private_site_with_a_token_as_password(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site(web={"private": True})
    secret = site.token("git", "viewer")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    with serving(site.app, threads=2) as server:
        host = server.url.removeprefix("http://").rstrip("/")
        refused = subprocess.run(
            ["git", "clone", "-q", f"http://{host}/archive.git", str(tmp_path / "refused")],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        cloned = subprocess.run(
            ["git", "clone", "-q", f"http://git:{secret}@{host}/archive.git", str(tmp_path / "ok")],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert cloned.returncode == 0, cloned.stderr
        assert (tmp_path / "ok" / ".git").is_dir()
