"""A saved search means what the search box means: same parser, same analysers.

Every query here runs twice over the same texts: through the search box (``archive.search.search``
over the real index of a real archive) and through the saved-search matcher on each policy's
text; both must give the expected policies. The queries include the four on which the old
saved-search parser differed, and one runs end to end: a subscription alerts a webhook.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from archive.alerts import LISTENERS
from archive.alerts.errors import NotifyError
from archive.alerts.listener import parse_saved_search
from archive.app import Archive
from archive.config import config_from_mapping
from archive.search import language_resolver, search
from archive.search.matching import PolicyText, index_language, matches
from tests.support import Cli, record_change

TYPE = "Privacy Policy"
FRENCH = (
    "Nous conservons vos données pendant la durée de votre abonnement. À la fin de "
    "celui-ci, vous pouvez nous demander de supprimer votre compte et les données qui "
    "sont liées à votre utilisation du service, dans un délai de trente jours. Les "
    "informations que nous avons sur vous ne sont pas vendues."
)
# English texts long enough for the index to tell their language (and stem them)
ABOUT = (
    "This notice is for all of you who use the site; it tells you what we do and how to reach us."
)
TEXTS = {
    "Sharers": f"{ABOUT} We share your data with our partners.",
    "Sellers": f"{ABOUT} We may sell it.",
    "Brokers": f"{ABOUT} We sell data to brokers.",
    "Keepers": f"{ABOUT} The retention period is thirty days.",
    "Acme": f"{ABOUT} Acme keeps your data for a year.",
    # the old parser read service:Acme as the words "service acme"
    "Other": f"{ABOUT} The service Acme offers keeps no data.",
    "Erasers": f"{ABOUT} Accounts are deleted after a year of silence.",
    "Cafe": f"{ABOUT} Our café serves cookies, including third-party cookies.",
    "Personal": f"{ABOUT} We never sell your personal information.",
    "Francais": FRENCH,
    # French, with an English word of a contract in it
    "Dates": (
        "Nous vous indiquons la date de chaque mise à jour de ces conditions. Les litiges sont "
        "soumis aux arbitres (« Arbitrators ») nommés par vous et par nous, à la date du "
        "dépôt, pour une durée de trente jours. Vous pouvez nous écrire au sujet de votre "
        "compte."
    ),
    "Backoffice.ee": "Isikuandmete töötlemine. Andmeid ei kasutata MÜÜGIKS.",
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """One archive holding every text above, indexed (each service one Privacy Policy)."""
    data = tmp_path_factory.mktemp("saved-search") / "data"
    config = config_from_mapping({"data_dir": str(data)})
    with Archive.open(config, writer=True, create=True) as archive:
        for service, text in TEXTS.items():
            record_change(archive, text, service=service, type_=TYPE)
        yield archive


def saved_search_hits(archive: Archive, query: str) -> set[str]:
    """The services whose current text the saved search ``query`` matches."""
    tree = parse_saved_search(query)
    language_of = language_resolver(archive)
    found = set()
    for service, text in TEXTS.items():
        first = archive.versions.history(service, TYPE)[0]
        lang = index_language(
            language_of(service, TYPE), archive.versions.text(service, TYPE, first.id)
        )
        if matches(tree, PolicyText(service, TYPE, text, lang)):
            found.add(service)
    return found


def search_box_hits(archive: Archive, query: str) -> set[str]:
    results = search(archive, query, limit=100)
    assert results.total == len(results.hits)
    return {hit.service for hit in results.hits}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # the four divergences of the old parser
        ("(sell OR share) data", {"Sharers", "Brokers"}),  # not "We may sell it."
        ("retent*", {"Keepers"}),  # a prefix, not the word "retent"
        ("service:Acme data", {"Acme"}),  # a filter, not the words "service acme"
        ("deleting", {"Erasers"}),  # stemmed: finds "deleted"
        # the rest of the language, and the analysers per language
        ("cafe", {"Cafe"}),  # accents folded
        ('cookies NOT "third-party"', set()),
        ('"sell your personal information"', {"Personal"}),
        ('"personal information sell"', set()),  # a phrase: words in order
        ("sell information", {"Personal"}),
        ("sell -never", {"Sellers", "Brokers"}),
        ('"never sell" OR "do not sell"', {"Personal"}),
        ("supprimées", {"Francais"}),  # French stemming in a French text
        ("lang:fr données", {"Francais"}),
        ("müügiks", {"Backoffice.ee"}),  # no stemmer: words as written, case folded
        ("isikuandmed", {"Backoffice.ee"}),  # ... and their inflections (isikuandmete)
        ("type:priv* partners", {"Sharers"}),
        # proximity phrases: at most N words between, in order
        ('"retention days"~3', {"Keepers"}),  # "period is thirty": three between
        ('"retention days"~2', set()),
        ('"days retention"~5', set()),
        ('"nous conservons durée"~6', {"Francais"}),
        # the query's language: English words are not French stems in a French text...
        ("data", {"Sharers", "Brokers", "Acme", "Other"}),  # French "date" stems as "data"
        ("date", {"Dates"}),
        # ... and English words in a French text are found by their English stem
        ("arbitration", {"Dates"}),
        ('"arbitres arbitration"', {"Dates"}),
        ("lang:fr arbitrators", {"Dates"}),
        ('"à la date du dépôt"', {"Dates"}),  # a French query (stop words) in a French text
    ],
)
def test_a_saved_search_finds_what_the_search_box_finds(archive, query, expected):
    assert search_box_hits(archive, query) == expected
    assert saved_search_hits(archive, query) == expected


def test_a_saved_search_is_read_by_the_search_box_parser():
    assert parse_saved_search("(sell OR share) data") == parse_saved_search(
        "(sell OR share) AND data"
    )
    for query, message in [
        ("-cookies", "no word to look for"),
        ("service:Acme", "no word to look for"),
        ('""', "no word to search for"),
        ("r*", "at least two letters"),
        ("colour:red", "unknown field 'colour'"),
    ]:
        with pytest.raises(NotifyError, match=message):
            parse_saved_search(query)


def test_no_version_matches_nothing():
    assert not matches(parse_saved_search("anything"), None)
    assert matches(parse_saved_search("anything"), PolicyText("A", TYPE, "Anything goes."))


def test_a_subscription_alerts_when_a_change_makes_the_policy_match(make_cli, webhook_receiver):
    cli: Cli = make_cli('data_dir = "data"\n[notify]\nallow_private_addresses = true\n')
    cli("init")
    query = "(sell OR share) data"
    cli("subscribe", "--webhook", webhook_receiver.url("/saved"), "--query", query)
    base = f"{ABOUT}\n\nWe keep your files safe."
    with Archive.open(cli.config, writer=True, listeners=LISTENERS) as archive:
        record_change(archive, base)  # a first record: this subscription is not told
        record_change(archive, base + "\n\nWe may sell it.")  # sell, but not sell data
        assert search_box_hits(archive, query) == set()
        shared = record_change(archive, base + "\n\nWe may sell it.\n\nWe share your data.")
        assert search_box_hits(archive, query) == {"WorkOptima"}
        gone = record_change(archive, base)
        assert search_box_hits(archive, query) == set()
    assert "2 delivered" in cli("deliver").output
    calls = webhook_receiver.wait_for(2)
    assert [(c.json()["type"], c.json()["data"]["version"]) for c in calls] == [
        ("search.matched", shared.id),
        ("search.unmatched", gone.id),
    ]
    assert all(c.json()["data"]["query"] == query for c in calls)
