"""Hostile text in policy text, names, URLs, errors and queries always comes out escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from store.paths import url_segment
from store.state import PolicyState
from webui import create_app

SCRIPT = '<script>alert("xss")</script>'
ATTR = '"onerror=alert(1) x="'
IMG = "<img src=x onerror=alert(2)>"
JS_LINK = "[click me](javascript:alert(3))"
EVIL = f"Evil {SCRIPT}{ATTR}"
TEXT = f"""# Terms {SCRIPT}

Hello {IMG} and {ATTR} and {JS_LINK} and <a href="javascript:alert(4)">raw</a>.

[ok link](https://example.com/ok) <iframe src="https://evil.example"></iframe>
"""
URL = "https://evil.example/p?<script>alert(5)</script>&x=%22onerror=1"
ALLOWED_SCRIPTS = {"/static/ui.js", "/static/diff.js"}


class Markup(HTMLParser):
    """Collects what a browser would see as markup (not text) in a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src") not in ALLOWED_SCRIPTS:
            self.problems.append(f"script tag {attrs}")
        if tag in ("img", "iframe", "object", "embed", "svg", "style", "base", "meta") and not (
            tag == "meta" and set(values) <= {"charset", "name", "content"}
        ):
            self.problems.append(f"<{tag}> {attrs}")
        for name, value in attrs:
            if name.startswith("on") or name in ("style", "srcdoc", "formaction"):
                self.problems.append(f"attribute {name}={value!r} on <{tag}>")
            if name in ("href", "src", "action") and value:
                scheme = value.strip().lower().split(":", 1)[0]
                if ":" in value and scheme not in ("http", "https", "mailto"):
                    self.problems.append(f"{name}={value!r} on <{tag}>")


def assert_escaped(body: str, where: str) -> None:
    parser = Markup()
    parser.feed(body)
    parser.close()
    assert not parser.problems, f"{where}: {parser.problems}"


@pytest.fixture
def client(make_config: Callable[..., Config]) -> Iterator[tuple[FlaskClient, str, str, str]]:
    config = make_config(policies=[{"service": EVIL, "type": f"Terms {ATTR}", "url": URL}])
    day = datetime(2024, 5, 1, tzinfo=UTC)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        first = archive.versions.record(
            NewVersion(EVIL, f"Terms {ATTR}", TEXT, day, FIRST_RECORD, (URL,))
        )
        second = archive.versions.record(
            NewVersion(EVIL, f"Terms {ATTR}", TEXT.replace("Hello", f"Bye {SCRIPT}"),
                       day + timedelta(days=3), CHANGE, (URL,))
        )  # fmt: skip
        archive.state.put(
            PolicyState(service=EVIL, type=f"Terms {ATTR}", last_check=day, failures=3,
                        last_error=f"HTTP 500 {SCRIPT} {ATTR} {IMG}")
        )  # fmt: skip
        archive.sync_index()
        app = create_app(config, archive=archive)
        service, type_ = first.service, first.type
        yield app.test_client(), service, type_, f"{first.id}:{second.id}"


def test_every_page_and_feed_escapes_hostile_text(
    client: tuple[FlaskClient, str, str, str],
) -> None:
    http, service, type_, ids = client
    first, second = ids.split(":")
    s, t = quote(url_segment(service), safe=""), quote(url_segment(type_), safe="")
    q = quote(f"{SCRIPT} {ATTR} {IMG}", safe="")
    base = f"/policies/{s}/{t}"
    urls = [
        "/", "/policies", base, f"{base}?version={first}", f"{base}?at=2024-05-02",
        f"{base}/diff", f"{base}/diff?view=side", f"{base}/diff?from={first}&to={second}",
        "/changes", f"/changes?service={s}", f"/changes?type={q}",
        f"/search?q={q}", f"/search?q={q}&history=1&service={q}&type={q}&lang={q}",
        "/search?q=xss", f"/when?phrase={q}",
        f"/policies/{q}/{q}", f"{base}?version={q}", f"{base}?at={q}", f"{base}/diff?from={q}",
        f"/changes?page={q}", f"/nothing/{q}",
    ]  # fmt: skip
    for url in urls:
        response = http.get(url)
        assert response.status_code in (200, 400, 404), (url, response.status_code)
        assert response.mimetype == "text/html"
        assert_escaped(response.text, url)
    policy = http.get(base).text
    assert "&lt;script&gt;alert(" in policy  # shown, as text
    assert 'href="https://example.com/ok" rel="nofollow noopener"' in policy
    assert "HTTP 500 &lt;script&gt;" in policy


def test_feeds_escape_and_parse(client: tuple[FlaskClient, str, str, str]) -> None:
    http, service, type_, _ = client
    s, t = quote(url_segment(service), safe=""), quote(url_segment(type_), safe="")
    for url in ("/feeds/changes.atom", f"/feeds/services/{s}.atom",
                f"/feeds/policies/{s}/{t}.atom"):  # fmt: skip
        response = http.get(url)
        assert response.status_code == 200, url
        assert_escaped(response.text, url)
        root = ET.fromstring(response.data)
        titles = [e.text for e in root.iter("{http://www.w3.org/2005/Atom}title")]
        assert any(service in (title or "") for title in titles)


def test_json_never_contains_raw_markup(client: tuple[FlaskClient, str, str, str]) -> None:
    http, service, type_, ids = client
    first, _ = ids.split(":")
    s, t = quote(url_segment(service), safe=""), quote(url_segment(type_), safe="")
    q = quote(f"{SCRIPT} {ATTR}", safe="")
    for url in ("/api/", "/api/policies", f"/api/policies/{s}/{t}",
                f"/api/policies/{s}/{t}/versions", f"/api/policies/{s}/{t}/diff",
                f"/api/policies/{s}/{t}/diff?from={first}", "/api/changes",
                f"/api/search?q={q}", "/api/search?q=xss&history=1", f"/api/when?phrase={q}",
                f"/api/policies/{s}/{t}?version={q}", f"/api/nothing/{q}"):  # fmt: skip
        response = http.get(url)
        assert response.mimetype == "application/json", url
        assert "<" not in response.text and ">" not in response.text, url
        assert response.json is not None
    text = http.get(f"/api/policies/{s}/{t}").json["text"]
    assert SCRIPT in text  # the data itself is intact, only its encoding is safe
