"""Adding and tuning policies in the browser, through HTTP (the Flask test client) over a real
archive, a real declarations git repository and a real fixture site on 127.0.0.1.

The web UI runs as ``serve`` would (a reader): its check requests take the free writer lock and
run on a thread of the UI's own, as they do when no ``run`` is going.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from archive.app import Archive
from archive.config import Config, load_config
from archive.config.declarations import load_declarations_dir, load_history
from tests.auth_support import add_user, csrf, login
from tests.fixture_server import FixtureServer
from tests.support import Cli
from webui import close_app, create_app

POLICY_TEXT = " ".join(f"We keep your data safe, clause {n}." for n in range(60))
PAGE = f"""<!doctype html>
<html><head><title>Acme privacy</title>
<script>document.title = "ran"</script>
<link rel="stylesheet" href="/style.css"><base href="https://elsewhere.example/">
<meta http-equiv="refresh" content="0; url=https://elsewhere.example/">
</head>
<body onload="alert('onload')">
<nav class="menu"><a href="/">Home</a> <a href="/about">About us and our many products</a></nav>
<div id="cookie-banner">We use cookies <button onclick="alert(1)">OK</button></div>
<main><article id="policy"><h1>Privacy policy</h1><p>{POLICY_TEXT}</p>
<section class="extra"><h2>Contact</h2><p>Write to privacy@acme.example for anything.</p></section>
</article></main>
<img src="x" onerror="alert('img')"><iframe src="https://evil.example/"></iframe>
<object data="https://evil.example/x.swf"></object>
<footer>Acme footer text</footer>
</body></html>"""
XSS_NAME = "<img src=x onerror=alert(1)>"


@dataclass
class Env:
    app: Flask
    client: FlaskClient
    config: Config
    config_path: Path
    site: FixtureServer

    @property
    def declarations(self) -> Path:
        return self.config.data_dir / "declarations"

    def token(self) -> str:
        return csrf(self.client)


def write_config(tmp_path: Path, *, allow_private: bool = True, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'data_dir = "data"\n[fetch]\nallow_private_addresses = {str(allow_private).lower()}\n'
        f"per_host_delay = 0.0\ntimeout = 5.0\n{extra}",
        encoding="utf-8",
    )
    return path


def make_env(tmp_path: Path, site: FixtureServer, **options: Any) -> Env:
    path = write_config(tmp_path, **options)
    config = load_config(path, environ={})
    Archive.open(config, writer=True, create=True).close()
    add_user(path, "edith", "editor")
    add_user(path, "vera", "viewer")
    app = create_app(config)
    client = app.test_client()
    login(client, "edith")
    return Env(app, client, config, path, site)


@pytest.fixture
def env(tmp_path: Path, fixture_server: FixtureServer) -> Iterator[Env]:
    fixture_server.set("/privacy", PAGE)
    environment = make_env(tmp_path, fixture_server)
    try:
        yield environment
    finally:
        close_app(environment.app)


def fetch_preview(env: Env, url: str) -> str:
    response = env.client.post(
        "/admin/policies/new/fetch", data={"url": url, "csrf_token": env.token()}
    )
    assert response.status_code == 303, response.text[:2000]
    match = re.search(r"preview=([A-Za-z0-9_-]+)", response.headers["Location"])
    assert match
    return match.group(1)


def extract(env: Env, page_id: str, select: str = "", remove: str = "") -> dict[str, Any]:
    response = env.client.post(
        f"/api/admin/policies/preview/{page_id}/extract",
        json={"select": select, "remove": remove},
        headers={"X-CSRF-Token": env.token()},
    )
    assert response.status_code == 200, response.text[:500]
    return response.get_json()


def save_new(env: Env, page_id: str, **fields: str) -> Any:
    data = {
        "preview": page_id,
        "service": "Acme",
        "type": "Privacy Policy",
        "select": "#policy",
        "remove": "",
        "language": "en",
        "interval": "6h",
        "csrf_token": env.token(),
        **fields,
    }
    return env.client.post("/admin/policies/new", data=data)


def wait_request(env: Env, location: str) -> dict[str, Any]:
    match = re.search(r"request=(\d+)", location)
    assert match, location
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = env.client.get(f"/api/admin/policies/requests/{match.group(1)}").get_json()
        if data["status"] == "done":
            return data
        time.sleep(0.05)
    raise AssertionError(f"request {match.group(1)} did not finish: {data}")


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], check=True, capture_output=True, text=True
    ).stdout


def add_acme(env: Env) -> dict[str, Any]:
    page_id = fetch_preview(env, env.site.url("/privacy"))
    response = save_new(env, page_id)
    assert response.status_code == 303, response.text[:3000]
    return wait_request(env, response.headers["Location"])


# --------------------------------------------------------------------------- add


def test_add_a_policy_with_the_preview_then_save_commit_and_first_check(env: Env) -> None:
    page_id = fetch_preview(env, env.site.url("/privacy"))
    editor = env.client.get(f"/admin/policies/new?preview={page_id}")
    assert editor.status_code == 200
    assert 'sandbox="allow-scripts"' in editor.text
    assert "frame-src 'self'" in editor.headers["Content-Security-Policy"]

    picked = extract(env, page_id, select="#policy", remove="section.extra")
    assert picked["ok"] and picked["words"] > 300
    assert "clause 59" in picked["html"] and "privacy@acme" not in picked["html"]
    assert picked["server_ms"] < 200
    missing = extract(env, page_id, select="#nothing-here")
    assert not missing["ok"] and "no select selector matched" in missing["error"]
    ranged = extract(env, page_id, select='{"startBefore": "#policy h1", "endBefore": ".extra"}')
    assert ranged["ok"] and "clause 0" in ranged["html"] and "Contact" not in ranged["html"]

    response = save_new(env, page_id)
    assert response.status_code == 303
    result = wait_request(env, response.headers["Location"])
    assert result["outcome"] == "first_record", result
    detail = env.client.get(response.headers["Location"])
    assert "first_record" in detail.text

    declaration = json.loads((env.declarations / "Acme.json").read_text(encoding="utf-8"))
    assert declaration == {
        "name": "Acme",
        "terms": {"Privacy Policy": {"fetch": env.site.url("/privacy"), "select": "#policy"}},
    }
    last = git(env.declarations, "log", "-1", "--format=%an|%s")
    assert last == "edith|Add Acme Privacy Policy\n"
    assert "language" not in (env.declarations / "Acme.json").read_text()
    policies = load_declarations_dir(env.declarations)  # the OTA loader the CLI uses
    assert [p.key for p in policies] == [("Acme", "Privacy Policy")]
    reloaded = load_config(env.config_path, environ={})  # data_dir/declarations, no config edit
    acme = reloaded.policy("Acme", "Privacy Policy")
    assert acme is not None and acme.language == "en" and acme.interval is not None
    listed = Cli(env.config_path)("list")
    assert "Acme" in listed.output
    assert "Acme" not in env.config_path.read_text()  # config.toml is never written


def test_a_configured_declarations_folder_becomes_a_repository_and_keeps_its_files(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    folder = tmp_path / "decl"
    folder.mkdir()
    (folder / "Other.json").write_text(
        json.dumps({"name": "Other", "terms": {"Terms": {"fetch": "https://other.example/t"}}}),
        encoding="utf-8",
    )
    fixture_server.set("/privacy", PAGE)
    env = make_env(tmp_path, fixture_server)
    close_app(env.app)
    path = env.config_path
    path.write_text(f'declarations = "{folder}"\n' + path.read_text(), encoding="utf-8")
    config = load_config(path, environ={})
    app = create_app(config)
    try:
        client = app.test_client()
        login(client, "edith")
        env = Env(app, client, config, path, fixture_server)
        add_acme(env)
        assert (folder / ".git").is_dir() and (folder / "Other.json").is_file()
        assert git(folder, "ls-files").split() == ["Acme.json", "policy-archive.toml"]
        keys = {p.key for p in load_config(path, environ={}).policies}
        assert keys == {("Other", "Terms"), ("Acme", "Privacy Policy")}
    finally:
        close_app(app)


# --------------------------------------------------------------------------- tune


def test_tune_records_a_reextract_commit_without_alert_and_shows_the_diff(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    fixture_server.set("/privacy", PAGE)
    alert = '[notify]\nallow_private_addresses = true\n[[alert]]\nchannel = "webhook"\n'
    alert += 'target = "https://hooks.example.org/pa"\nfirst_records = true\n'
    env = make_env(tmp_path, fixture_server, extra=alert)
    try:
        tune_and_check(env)
    finally:
        close_app(env.app)


def tune_and_check(env: Env) -> None:
    add_acme(env)
    edit = env.client.get("/admin/policies/Acme/Privacy%20Policy/edit")
    assert edit.status_code == 200
    page_id = re.search(r'name="preview" value="([^"]+)"', edit.text).group(1)  # type: ignore[union-attr]
    assert "#policy" in edit.text
    before = sum(1 for _ in env.app.extensions["policy_archive"].archive.versions.log())

    response = env.client.post(
        "/admin/policies/Acme/Privacy%20Policy/edit",
        data={
            "preview": page_id,
            "select": "#policy",
            "remove": "section.extra",
            "language": "en",
            "interval": "6h",
            "csrf_token": env.token(),
        },
    )
    assert response.status_code == 303, response.text[:2000]
    result = wait_request(env, response.headers["Location"])
    assert result["outcome"] == "reextracted", result
    assert result["diff_url"] and result["previous"] and result["version"]
    detail = env.client.get(response.headers["Location"])
    assert "the diff this caused" in detail.text and "<del>" in detail.text
    assert env.client.get(result["diff_url"]).status_code == 200

    archive = Archive.open(env.config)
    try:
        versions = archive.versions.history("Acme", "Privacy Policy")
        assert [v.kind for v in versions] == ["first_record", "reextract"]
        text = archive.versions.text("Acme", "Privacy Policy", versions[-1].id)
        assert "privacy@acme" not in text
        assert sum(1 for _ in archive.versions.log()) == before + 1
        outbox = archive.state.query("SELECT event FROM notify_outbox")
        assert [row["event"] for row in outbox] == ["version_recorded"]  # the first record only
    finally:
        archive.close()

    history = load_history(env.declarations / "Acme.history.json")
    (entry,) = history["Privacy Policy"]
    assert entry.sources[0].remove == ()
    raw = json.loads((env.declarations / "Acme.history.json").read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", raw["Privacy Policy"][0]["validUntil"])
    log = git(env.declarations, "log", "--format=%an|%s").splitlines()
    assert log == ["edith|Update Acme Privacy Policy selectors", "edith|Add Acme Privacy Policy"]


def test_recheck_pause_resume_and_remove(env: Env) -> None:
    add_acme(env)
    base = "/admin/policies/Acme/Privacy%20Policy"
    assert env.client.get(f"{base}/pause").status_code == 405
    recheck = env.client.post(f"{base}/recheck", data={"csrf_token": env.token()})
    assert recheck.status_code == 303
    assert wait_request(env, recheck.headers["Location"])["outcome"] == "unchanged"

    assert env.client.post(f"{base}/pause", data={"csrf_token": env.token()}).status_code == 303
    assert 'id="schedule-state">paused' in env.client.get(base).text
    assert env.client.post(f"{base}/resume", data={"csrf_token": env.token()}).status_code == 303
    assert 'id="schedule-state">active' in env.client.get(base).text

    removed = env.client.post(f"{base}/remove", data={"csrf_token": env.token()})
    assert removed.status_code == 303
    assert not (env.declarations / "Acme.json").exists()
    assert env.client.get(base).status_code == 404
    assert "Stop tracking Acme Privacy Policy" in git(env.declarations, "log", "-1", "--format=%s")
    assert load_config(env.config_path, environ={}).policy("Acme", "Privacy Policy") is None
    archive = Archive.open(env.config)
    try:
        assert archive.versions.current("Acme", "Privacy Policy") is not None  # history stays
    finally:
        archive.close()


def test_check_of_all_policies_skips_paused_ones_but_checks_one_named(env: Env) -> None:
    add_acme(env)
    base = "/admin/policies/Acme/Privacy%20Policy"
    assert env.client.post(f"{base}/pause", data={"csrf_token": env.token()}).status_code == 303
    cli = Cli(env.config_path)
    everything = cli("check", "--no-alerts", code=None)
    assert "1 paused policy not checked" in everything.stderr
    assert "Acme" not in everything.stdout
    named = cli("check", "--no-alerts", "Acme")
    assert "Acme" in named.stdout and "paused" not in named.stderr


def test_viewer_sees_but_cannot_edit(env: Env) -> None:
    add_acme(env)
    viewer = env.app.test_client()
    login(viewer, "vera")
    assert viewer.get("/admin/policies").status_code == 200
    assert viewer.get("/admin/policies/Acme/Privacy%20Policy").status_code == 200
    assert viewer.get("/admin/policies/new").status_code == 403
    token = csrf(viewer)
    refused = viewer.post("/admin/policies/Acme/Privacy%20Policy/pause", data={"csrf_token": token})
    assert refused.status_code == 403


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"service": ""}, "service", "non-empty"),
        ({"service": "Acme\u200b"}, "service", "invisible"),
        ({"service": "A/B"}, "service", "file name"),
        ({"select": "###"}, "select", "not a CSS selector"),
        ({"select": '{"startBefore": "#a"}'}, "select", "exactly one of"),
        ({"select": "{not json"}, "select", "not a range selector"),
        ({"language": "English"}, "language", "code such as"),
        ({"interval": "10s"}, "interval", "under a minute"),
        ({"interval": "soon"}, "interval", "not a duration"),
    ],
)
def test_each_field_is_validated_with_a_message_on_the_form(
    env: Env, fields: dict[str, str], field: str, message: str
) -> None:
    page_id = fetch_preview(env, env.site.url("/privacy"))
    response = save_new(env, page_id, **fields)
    assert response.status_code == 422
    error = re.search(rf'id="error-{field}" role="alert">([^<]*)<', response.text)
    assert error and message in error.group(1), response.text[-3000:]
    assert "Traceback" not in response.text
    assert not (env.declarations / "Acme.json").exists()


def test_a_policy_cannot_be_added_twice(env: Env) -> None:
    add_acme(env)
    response = save_new(env, fetch_preview(env, env.site.url("/privacy")))
    assert response.status_code == 422 and "already tracked" in response.text


def test_a_bad_url_and_an_unreachable_page_are_messages(env: Env) -> None:
    token = env.token()
    bad = env.client.post("/admin/policies/new/fetch", data={"url": "ftp://x", "csrf_token": token})
    assert bad.status_code == 422 and "http(s) URL" in bad.text
    env.site.set("/gone", "nope", status=404)
    gone = env.client.post(
        "/admin/policies/new/fetch", data={"url": env.site.url("/gone"), "csrf_token": token}
    )
    assert gone.status_code == 422 and "could not be fetched" in gone.text and "404" in gone.text


def test_the_ssrf_guard_refuses_a_private_address(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    fixture_server.set("/privacy", PAGE)
    env = make_env(tmp_path, fixture_server, allow_private=False)
    try:
        for url in (fixture_server.url("/privacy"), "http://10.0.0.1/", "http://[::1]/x"):
            response = env.client.post(
                "/admin/policies/new/fetch", data={"url": url, "csrf_token": env.token()}
            )
            assert response.status_code == 422, url
            assert "could not be fetched" in response.text
            assert re.search(r"private|loopback|refus|blocked", response.text, re.I), response.text
        assert fixture_server.hits("/privacy") == 0
    finally:
        close_app(env.app)


# --------------------------------------------------------------------------- XSS


def test_the_frame_has_no_page_script_and_its_own_headers(env: Env) -> None:
    page_id = fetch_preview(env, env.site.url("/privacy"))
    frame = env.client.get(f"/admin/policies/preview/{page_id}/frame")
    assert frame.status_code == 200
    csp = frame.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert "frame-ancestors 'self'" in csp and "connect-src 'none'" in csp
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    html = frame.text
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == [f'<script src="/static/picker.js" nonce="{nonce}">']
    for gone in ("onload", "onerror", "onclick", "<iframe", "<object", "<base", "http-equiv"):
        assert gone not in html, gone
    assert 'href="https://elsewhere.example/style.css"' in html  # absolute, by the page's base
    assert "clause 59" in html
    other = env.client.get("/admin/policies")
    assert other.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in other.headers["Content-Security-Policy"]


def test_xss_in_a_page_a_selector_and_a_name_is_escaped(env: Env) -> None:
    env.site.set(
        "/evil",
        f"<html><head><title>x</title></head><body><main><p>{POLICY_TEXT}</p>"
        "<p>&lt;script&gt;alert('text')&lt;/script&gt;</p><p><script>alert(2)</script></p>"
        "</main></body></html>",
    )
    page_id = fetch_preview(env, env.site.url("/evil"))
    shown = extract(env, page_id, select="main")
    assert "<script" not in shown["html"] and "&lt;script&gt;" in shown["html"]
    bad_selector = "</textarea><script>alert(1)</script>"
    response = save_new(env, page_id, service=XSS_NAME, select=bad_selector)
    assert response.status_code == 422
    assert XSS_NAME not in response.text and "<script>alert(1)" not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    editor = env.client.get(f"/admin/policies/new?preview={page_id}")
    assert "<script>alert" not in editor.text
    api = env.client.post(
        f"/api/admin/policies/preview/{page_id}/extract",
        json={"select": bad_selector},
        headers={"X-CSRF-Token": env.token()},
    )
    assert api.get_json()["ok"] is False and b"<" not in api.data  # JSON written HTML-safe


# --------------------------------------------------------------------------- pickup


def test_pickup_reschedules_added_paused_resumed_and_removed_policies(env: Env) -> None:
    from archive.alerts import LISTENERS
    from archive.fetch import Fetcher
    from archive.manage.pickup import Pickup
    from archive.tracking.pipeline import Pipeline
    from archive.tracking.scheduler import Scheduler
    from tests.reliability.harness import wait_for_writer_lock_free

    add_acme(env)
    wait_for_writer_lock_free(env.config.data_dir)
    base = "/admin/policies/Acme/Privacy%20Policy"
    with (
        Archive.open(env.config, writer=True, listeners=LISTENERS) as archive,
        Fetcher(env.config.fetch) as fetcher,
    ):
        scheduler = Scheduler(Pipeline(archive, fetcher))
        pickup = Pickup(scheduler)
        scheduler.start(paused=True, policies=pickup.active())
        try:

            def jobs() -> set[str]:
                pickup.tick()
                return {job for job, _ in scheduler.jobs() if job.startswith("track:")}

            assert jobs() == {"track:Acme/Privacy Policy"}
            env.client.post(f"{base}/pause", data={"csrf_token": env.token()})
            assert jobs() == set()
            env.client.post(f"{base}/resume", data={"csrf_token": env.token()})
            assert jobs() == {"track:Acme/Privacy Policy"}
            response = save_new(env, fetch_preview(env, env.site.url("/privacy")), type="Terms")
            assert response.status_code == 303
            assert jobs() == {"track:Acme/Privacy Policy", "track:Acme/Terms"}
            assert archive.config.policy("Acme", "Terms") is not None  # the live config
            env.client.post(f"{base}/remove", data={"csrf_token": env.token()})
            assert jobs() == {"track:Acme/Terms"}
        finally:
            scheduler.shutdown(wait=False)


def test_a_valid_selector_carrying_markup_is_stored_and_shown_escaped(env: Env) -> None:
    selector = 'main [data-x="<script>alert(1)</script>"], #policy'
    page_id = fetch_preview(env, env.site.url("/privacy"))
    response = save_new(env, page_id, select=selector)
    assert response.status_code == 303, response.text[-2000:]
    assert wait_request(env, response.headers["Location"])["outcome"] == "first_record"
    declaration = json.loads((env.declarations / "Acme.json").read_text(encoding="utf-8"))
    assert declaration["terms"]["Privacy Policy"]["select"] == selector
    for path in ("/admin/policies/Acme/Privacy%20Policy/edit", response.headers["Location"]):
        page = env.client.get(path)
        assert page.status_code == 200 and "<script>alert(1)" not in page.text, path
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;"
        in env.client.get("/admin/policies/Acme/Privacy%20Policy/edit").text
    )
