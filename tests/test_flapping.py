"""A page that flaps (A→B→A→B within a day, an A/B test) is recorded every time, but alerts
after the first flip are held and the operator is told once, with the lines that differ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from archive.alerts import LISTENERS, deliver_pending
from archive.alerts.listener import differing_lines, find_flap
from archive.app import Archive
from archive.fetch import Fetcher
from archive.tracking.pipeline import Pipeline
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, Version
from tests.conftest import seed_text
from tests.pages import policy_page

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
A = seed_text("workoptima-privacy-policy.txt")
B = A.replace("Analytics", "Analytics (variant B: personalised offers)")
assert A != B
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def versions(*spec: tuple[str, timedelta]) -> tuple[list[Version], dict[str, str]]:
    """A history from (text, time since T0) pairs, and the texts by version id."""
    history, texts = [], {}
    for i, (text, at) in enumerate(spec):
        kind = FIRST_RECORD if i == 0 else CHANGE
        version = Version(f"{i:040x}", "S", "T", T0 + at, kind)
        history.append(version)
        texts[version.id] = text
    return history, texts


def flap_at(history: list[Version], texts: dict[str, str], index: int):
    return find_flap(history, index, lambda v: texts[v.id])


def test_a_return_to_the_text_before_within_a_day_is_a_flap_and_a_spell_is_told_once():
    history, texts = versions(("A", 0 * HOUR), ("B", HOUR), ("A", 2 * HOUR), ("B", 3 * HOUR))
    assert flap_at(history, texts, 1) is None  # the first flip alerts as a change
    second = flap_at(history, texts, 2)
    assert second is not None and second.new_spell and second.returned_to is history[0]
    third = flap_at(history, texts, 3)
    assert third is not None and not third.new_spell  # held, the operator was already told


def test_a_return_after_a_day_or_to_an_older_text_is_a_change():
    history, texts = versions(("A", 0 * HOUR), ("B", HOUR), ("A", 26 * HOUR))
    assert flap_at(history, texts, 2) is None
    history, texts = versions(("A", 0 * HOUR), ("B", HOUR), ("C", 2 * HOUR), ("A", 3 * HOUR))
    assert flap_at(history, texts, 3) is None  # A→B→C→A: a revert, not an A/B test
    history, texts = versions(("A", 0 * HOUR), ("B", HOUR), ("A", 2 * HOUR))
    history[1] = Version(history[1].id, "S", "T", history[1].date, REEXTRACT)
    assert flap_at(history, texts, 2) is None  # texts across a re-extraction differ anyway


def test_the_lines_that_differ_are_listed_once_each_and_capped():
    removed, added = differing_lines("a\nsame\nb\nb\n", "same\nc\n\n")
    assert (removed, added) == (["a", "b"], ["c"])
    removed, added = differing_lines("\n".join(f"x{i}" for i in range(50)), "y" * 1000)
    assert len(removed) == 20 and len(added[0]) == 300 and added[0].endswith("…")


def test_a_flapping_page_is_recorded_and_the_operator_told_once(
    make_config, fixture_server, webhook_receiver
):
    url = fixture_server.set("/privacy", policy_page("WorkOptima", A))
    config = make_config(
        [{"service": "WorkOptima", "type": "Privacy Policy", "url": url, "select": "main"}],
        alert=[{"channel": "webhook", "target": webhook_receiver.url("/ops"), "secret": SECRET}],
    )
    served = [A, B, A, B, A]
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        pipeline = Pipeline(archive, fetcher)
        for text in served:
            fixture_server.set("/privacy", policy_page("WorkOptima", text))
            [result] = pipeline.check(config.policies)
            assert result.recorded, result
        history = archive.versions.history("WorkOptima", "Privacy Policy")
        assert [v.kind for v in history] == ["first_record"] + ["change"] * 4  # all recorded
        assert deliver_pending(archive).delivered == 2
    first_flip, notice = webhook_receiver.wait_for(2)
    assert first_flip.verify(SECRET) and notice.verify(SECRET)
    change = first_flip.json()
    assert (change["type"], change["data"]["version"]) == ("version.recorded", history[1].id)
    told = notice.json()
    assert told["type"] == "policy.flapping"
    data = told["data"]
    assert (data["version"], data["returned_to"]) == (history[2].id, history[0].id)
    removed, added = data["lines_removed"], data["lines_added"]  # B → A
    assert removed and all("Analytics (variant B: personalised offers)" in x for x in removed)
    assert len(added) == len(removed)
    assert all("Analytics" in x and "variant B" not in x for x in added)
    assert data["urls"]["policy"].endswith("/policies/WorkOptima/Privacy%20Policy")
    assert len(webhook_receiver.calls) == 2  # the later flips are held
