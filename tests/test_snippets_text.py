"""Search snippets are the text a reader sees, not Markdown source (issue 10, item 5).

Real policy-shaped Markdown (bold, setext headings, anchor links, images, tables with ``<br>``)
is recorded and indexed; snippets are read back through ``policy-archive search --json`` and
``/api/search``, which must agree, and cut from the reading text with the match marked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from store.git.versions import FIRST_RECORD, NewVersion
from store.index.highlight import reading_text
from tests.support import Cli
from webui import create_app

T0 = datetime(2024, 3, 1, tzinfo=UTC)

STREAMLY = """\
**Streamly Privacy Policy**
==========================

Effective as of July 1, 2026

[1\\. About this Policy](#_kfosu7ttf89l)

[2\\. Your rights](#_f3cluvljekbi)

1\\. About this Policy
---------------------

This Privacy Policy describes how we at Streamly process personal data. We keep your listening
history for ninety days. Read our [cookie notice](https://streamly.example/legal/zeppelin-notice)
for the details of how cookies work on the Streamly website and in the Streamly apps.

![](/static/quokka-banner.png)

Visit https://help.streamly.example/wombat-guide to learn how to download a copy of your data.

2\\. Your rights
---------------

| **It’s your right to...** |     | **How?** |
| --- | --- | --- |
| **Deletion** | **Request that we delete your data.** | You can ask us:<br><br>*   through \
the app settings<br>*   by [contacting us](#_l8q1yc21jzme)<br><br>We answer within a month. |
| **Correction\\*** | Request that we amend your data. | Edit your profile. |

## Children ##

Streamly is not for children under 13 &amp; we do not knowingly collect their data.
"""

MARKDOWN_SYNTAX = ("](", "**", "![", "|", "<br", "===", "---", "\\.", "#_")


@dataclass
class Searches:
    cli: Cli
    client: FlaskClient

    def both(self, query: str) -> list[dict]:
        """The hits of ``query`` from the CLI's JSON and from /api/search (asserted equal)."""
        cli = json.loads(self.cli("search", query, "--json").output)["hits"]
        response = self.client.get("/api/search?" + urlencode({"q": query}))
        assert response.status_code == 200, response.text
        api = response.json["hits"]
        assert [h["snippet"] for h in cli] == [h["snippet"] for h in api]
        return api


@pytest.fixture
def searches(
    make_config: Callable[..., Config], make_cli: Callable[[str], Cli]
) -> Iterator[Searches]:
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        archive.versions.record(
            NewVersion("Streamly", "Privacy Policy", STREAMLY, T0, FIRST_RECORD)
        )
        archive.sync_index()
    cli = make_cli(f'data_dir = "{config.data_dir}"\n')
    with Archive.open(config) as reader:
        yield Searches(cli, create_app(config, archive=reader).test_client())


def visible(snippet: str) -> str:
    return re.sub(r"</?mark>", "", snippet)


def assert_reading_text(snippet: str) -> None:
    assert snippet, "a hit always has a snippet"
    for syntax in MARKDOWN_SYNTAX:
        assert syntax not in snippet, (syntax, snippet)
    assert "<" not in visible(snippet), snippet  # only our <mark> tags


@pytest.mark.parametrize(
    ("query", "marked"),
    [
        ("Streamly", "<mark>Streamly</mark> Privacy Policy"),
        ("ninety", "<mark>ninety</mark> days"),
        ("cookie notice", "Read our <mark>cookie</mark> <mark>notice</mark> for the details"),
        ("deletion", "How? · <mark>Deletion</mark> · Request that we <mark>delete</mark> your"),
        ("contacting", "by <mark>contacting</mark> us"),
        ("correction", "<mark>Correction</mark>* · Request that we amend"),
        ("children", "<mark>Children</mark> · Streamly is not for"),
    ],
)
def test_snippets_are_reading_text_with_the_visible_match_marked(
    searches: Searches, query: str, marked: str
) -> None:
    hits = searches.both(query)
    assert [h["service"] for h in hits] == ["Streamly"]
    assert_reading_text(hits[0]["snippet"])
    assert marked in hits[0]["snippet"]


@pytest.mark.parametrize("word", ["zeppelin", "quokka", "kfosu7ttf89l", "wombat"])
def test_a_word_only_in_a_url_or_an_image_is_never_highlighted(
    searches: Searches, word: str
) -> None:
    # The index reads the stored Markdown, so the policy may still be found; its snippet shows
    # the visible text (a link target, an anchor and an image are not), and marks nothing.
    for hit in searches.both(word):
        assert_reading_text(hit["snippet"])
        assert "<mark>" not in hit["snippet"], hit["snippet"]
        if word != "wombat":  # a bare URL is visible text: shown, but never marked
            assert word not in hit["snippet"].casefold()


def test_a_filter_only_query_shows_the_start_as_text(searches: Searches) -> None:
    (hit,) = searches.both("service:Streamly")
    assert_reading_text(hit["snippet"])
    assert hit["snippet"].startswith("Streamly Privacy Policy · Effective as of July 1, 2026")


def test_the_web_page_shows_the_same_snippet(searches: Searches) -> None:
    page = searches.client.get("/search?q=contacting").text
    assert "by <mark>contacting</mark> us" in page
    assert "#_l8q1yc21jzme" not in page


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("**Bold** and __strong__, *em* and _em_ ~~gone~~", "Bold and strong, em and em gone"),
        ("Title\n=====\n\nBody.", "Title · Body."),
        ("Sub\n---\nBody.", "Sub · Body."),
        ("### Heading ###\nBody.", "Heading · Body."),
        ("[1\\. About](#_kfosu7ttf89l)", "1. About"),
        ("See [the notice](https://a.example/x_(y) 'Title') now.", "See the notice now."),
        ("A ![logo of cookies](/static/cookies.png) B", "A B"),
        ("[![](/img.png)](https://a.example) text", "text"),
        ("| a | b |\n| --- | :-: |\n| c |     |", "a · b · c"),
        ("one<br><br>two<br/>three", "one · two · three"),
        ("*   first item\n*   second item", "first item · second item"),
        ("> quoted", "quoted"),
        ("Correct\\* 5\\*3 \\[sic\\] user_id", "Correct* 5*3 [sic] user_id"),
        ("us](#_l8q1yc21jzme) and [half", "us and half"),
        ("&lt;b&gt; &amp; <span class='x'>kept</span>", "<b> & kept"),
        ('We keep <script>alert("x")</script> logs.', 'We keep <script>alert("x")</script> logs.'),
        ("wrapped\nline", "wrapped line"),
        ("<https://a.example/p>", "https://a.example/p"),
        ("[ref link][1]\n\n[1]: https://a.example/zeppelin", "ref link"),
    ],
)
def test_reading_text(markdown: str, text: str) -> None:
    assert reading_text(markdown) == text
