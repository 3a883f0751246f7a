"""Finding a service, the export form, clone URLs, search errors and facets (issue 10, items
6, 8 and 9), with the Flask test client on a real archive."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from flask import url_for

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from store.git.versions import FIRST_RECORD, NewVersion
from tests.test_web import DAY, EE, POLICIES, WO, Web, record_history
from tests.test_web_server import CLI, fetch, free_port
from webui import create_app

IMPORTED = ("Spotify", "Privacy Policy")
HOSTILE = "<b>Evil & Co</b>"


def names_in_order(page: str, names: list[str]) -> list[str]:
    return sorted(names, key=lambda name: page.index(name))


@pytest.fixture
def web(make_config: Callable[..., Config]) -> Iterator[Web]:
    """test_web's archive, plus an imported Spotify policy and a service with markup."""
    config = make_config(policies=POLICIES)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        wo, ee = record_history(archive)
        for service, type_, text, days in (
            (*IMPORTED, "Spotify privacy, first words.", 2),
            ("Spotify", "Terms of Use", "Spotify terms.", 3),
            (HOSTILE, "Terms", "Evil terms.", 4),
        ):
            trailers = (("Imported-From", "Open Terms Archive"),) if service == "Spotify" else ()
            archive.versions.record(
                NewVersion(
                    service, type_, text, DAY + timedelta(days=days), FIRST_RECORD,
                    extra_trailers=trailers,
                )
            )  # fmt: skip
        archive.sync_index()
        app = create_app(config, archive=archive)
        yield Web(app, app.test_client(), archive, wo, ee)


# --------------------------------------------------------------------------- services


def test_a_service_page_lists_its_documents_with_last_change_and_status(web: Web) -> None:
    page = web.get("/services/Spotify")
    assert "<h1>Spotify</h1>" in page
    assert page.count('class="document-link"') == 2
    assert 'href="/policies/Spotify/Privacy%20Policy"' in page
    assert "imported from Open Terms Archive" in page
    assert "not checked" in page
    backoffice = web.get("/services/Backoffice.ee")
    assert "failing ×4" in backoffice and "HTTP 503 from" in backoffice
    assert "ok" in web.get("/services/WorkOptima")
    assert "no service" in web.get("/services/Nobody", 404)


def test_service_names_are_escaped_and_linked_from_the_list(web: Web) -> None:
    listing = web.get("/policies")
    assert 'href="/services/Spotify"' in listing and HOSTILE not in listing
    with web.app.test_request_context():
        url = url_for("policies.service", service=HOSTILE)
    assert f'href="{url.replace("&", "&amp;")}"' in listing
    page = web.get(url)
    assert HOSTILE not in page and "<h1>&lt;b&gt;Evil &amp; Co&lt;/b&gt;</h1>" in page


def test_the_policy_list_filters_by_service_or_type(web: Web) -> None:
    everything = web.get("/policies")
    assert everything.count('class="service-link"') == 6
    spotify = web.get("/policies?q=spot")
    assert spotify.count('class="service-link"') == 2 and 'value="spot"' in spotify
    terms = web.get("/policies?q=TERMS")  # any case, service or type
    assert terms.count('class="service-link"') == 4
    nothing = web.get("/policies?" + urlencode({"q": '"><script>x'}))
    assert "<script>x" not in nothing and "No service or document type contains" in nothing
    web.get("/policies?q=" + "x" * 201, 400)


def test_the_policy_list_sorts_by_name_change_or_status(web: Web) -> None:
    by_name = web.get("/policies")
    assert names_in_order(by_name, ["Backoffice.ee", "Never Fetched", "WorkOptima"]) == [
        "Backoffice.ee",
        "Never Fetched",
        "WorkOptima",
    ]
    by_change = web.get("/policies?sort=change")
    services = re.findall(r'class="service-link"[^>]*>([^<]+)<', by_change)
    assert services[:2] == ["WorkOptima", "&lt;b&gt;Evil &amp; Co&lt;/b&gt;"]
    assert services[-1] == "Never Fetched"  # never recorded: last
    by_status = web.get("/policies?sort=status")
    services = re.findall(r'class="service-link"[^>]*>([^<]+)<', by_status)
    assert services[0] == EE[0] and services.index(WO[0]) < services.index("Never Fetched")
    assert '<option value="status" selected>' in by_status
    web.get("/policies?sort=size", 400)


def test_search_offers_a_matching_service_first(web: Web) -> None:
    page = web.get("/search?q=spotify")
    assert 'class="service-match" href="/services/Spotify">Spotify</a> — 2 documents' in page
    assert page.index("service-match") < page.index('class="hit-link"')
    assert "service-match" not in web.get("/search?q=privacy")
    assert "service-match" not in web.get("/search?q=spotify&page=2")  # page 1 only


# --------------------------------------------------------------------------- search page


def test_an_invalid_query_is_explained_on_the_search_page(web: Web) -> None:
    response = web.client.get("/search?q=NOT")
    assert response.status_code == 400
    page = response.text
    assert "The query could not be read" in page and 'role="alert"' in page
    assert 'name="q" value="NOT"' in page and "<h1>" in page  # the form keeps the query
    hostile = web.client.get("/search?" + urlencode({"q": '"<script>'}))
    assert "<script>" not in hostile.text


def test_long_facets_open_behind_and_n_more(web: Web, monkeypatch) -> None:
    from webui import search

    monkeypatch.setattr(search, "FACET_VALUES", 2)
    page = web.get("/search?q=privacy+OR+terms")
    more = re.search(r'<details class="more">\s*<summary>and (\d+) more</summary>(.*?)</details>',
                     page, re.S)  # fmt: skip
    assert more, page
    assert int(more.group(1)) >= 1 and "/search?" in more.group(2)
    assert '<details class="facets-box">' in page  # collapsed behind "Filters" on phones


def test_every_page_has_one_h1(web: Web) -> None:
    policy = f"/policies/{quote(WO[0])}/{quote(WO[1])}"
    for url in ("/", "/policies", "/changes", "/when", "/when?phrase=x", "/search",
                "/search?q=privacy", policy, policy + "/diff", "/services/Spotify", "/export",
                "/nothing-here"):  # fmt: skip
        response = web.client.get(url)
        assert response.text.count("<h1") == 1, url


# --------------------------------------------------------------------------- researchers


def test_bare_export_is_a_form_with_a_size_estimate(web: Web) -> None:
    response = web.client.get("/export")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.text
    assert "<h1>Export the dataset</h1>" in page
    for name in ('name="format"', 'name="at"', 'name="service"', 'name="type"'):
        assert name in page
    assert re.search(r"This selection: 7 versions of 5 documents from 4 services", page)
    assert re.search(r'id="size-jsonl">\(about [\d.]+ (bytes|kB)\)', page)
    one = web.get("/export?service=Spotify&format=csv&preview=1")
    assert "2 versions of 2 documents from 1 service;" in one and "as csv" in one
    assert '<option value="Spotify" selected>' in one
    assert "no policy of service" in web.get("/export?service=Nobody", 404)
    web.get("/export?at=yesterday", 400)


def test_export_downloads_only_with_an_explicit_format(web: Web) -> None:
    response = web.client.get("/export?format=csv&service=Spotify")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert len(response.text.strip().splitlines()) == 3


def test_the_clone_url_is_on_the_home_page_and_the_export_page(web: Web) -> None:
    for url in ("/", "/export"):
        assert '<code class="clone-url">git clone http://localhost/archive.git</code>' in web.get(
            url
        )
    partial = web.app.jinja_env.get_template("_clone.html")
    with web.app.test_request_context("/policies/x/y", base_url="http://archive.example:8123"):
        assert "git clone http://archive.example:8123/archive.git" in partial.render()
    assert "export" in web.get("/")  # the header links to the export page


def test_imported_versions_are_labelled_with_their_source(web: Web) -> None:
    assert "imported from Open Terms Archive" in web.get("/")
    assert "imported from Open Terms Archive" in web.get("/services/Spotify")


# --------------------------------------------------------------------------- run, first run


def write_run_config(folder: Path, site_port: int) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'data_dir = "{folder / "data"}"\n'
        "[fetch]\nallow_private_addresses = true\ntimeout = 5\n"
        '[[policy]]\nservice = "Gone"\ntype = "Privacy Policy"\n'
        f'url = "http://127.0.0.1:{site_port}/privacy"\n',
        encoding="utf-8",
    )
    return config


def test_run_prints_each_check_and_what_to_do_when_every_first_check_fails(
    tmp_path: Path,
) -> None:
    closed = free_port()  # nothing listens there: every check fails
    port = free_port()
    config = write_run_config(tmp_path, closed)
    proc = subprocess.Popen(
        [*CLI, "--config", str(config), "run", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "policy-archive demo" in line:
                done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert done.wait(60), ("".join(lines), proc.poll())
        out = "".join(lines)
        assert f"web UI at http://127.0.0.1:{port}/" in out
        assert re.search(r"Gone · Privacy Policy: FAILED: could not connect to 127\.0\.0\.1", out)
        assert "The first check failed. Check that this machine can reach" in out
        status, _, feed = fetch(f"http://127.0.0.1:{port}/feeds/changes.atom")
        assert status == 200 and f'href="http://127.0.0.1:{port}/feeds/changes.atom"' in feed
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        reader.join(10)
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr


def test_run_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    config = write_run_config(tmp_path, free_port())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*CLI, "--config", str(config), "run", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )  # not PYTHONWARNINGS=error: waitress leaves its trigger pipe open when bind fails
    assert done.returncode == 1, done
    errors = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
    assert errors == [
        f"Error: cannot serve on 127.0.0.1:{port}: the address is in use "
        "(another `run` or `serve`?): stop that one or pick --port"
    ], done.stderr
    assert "Traceback" not in done.stderr and "FAILED" not in done.stdout  # nothing checked


def test_links_follow_the_served_address_unless_base_url_is_set(
    make_config: Callable[..., Config],
) -> None:
    from archive.cli.web import served_config

    default = make_config()
    assert default.web.base_url == "http://127.0.0.1:8000"
    assert served_config(default, "0.0.0.0", 9000).web.base_url == "http://0.0.0.0:9000"
    assert served_config(default, "::1", None).web.base_url == "http://[::1]:8000"
    public = make_config(web={"base_url": "https://archive.example/"})
    assert served_config(public, None, 9000).web.base_url == "https://archive.example/"
    assert make_config(web={"port": 8123}).web.base_url == "http://127.0.0.1:8123"
