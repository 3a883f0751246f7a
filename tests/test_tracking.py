"""Tracking end to end: a real HTTP server on 127.0.0.1, real git repositories, real state."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.fetch import Fetcher
from archive.tracking.events import PolicyFailing, PolicyRecovered, VersionRecorded
from archive.tracking.pipeline import Pipeline, browser_available
from archive.tracking.reextract import reextract_all
from tests.conftest import SEED_POLICIES, seed_text
from tests.pages import policy_page

SEEDS = list(SEED_POLICIES.items())


def seed_policies(server) -> list[dict]:
    policies = []
    for i, (name, (service, type_, lang)) in enumerate(SEEDS):
        entry = {"service": service, "type": type_, "url": server.url(f"/p{i}"), "language": lang}
        if i != 3:  # the Estonian page is extracted with no selector (main-content detection)
            entry["select"] = "main"
        policies.append(entry)
        server.set(f"/p{i}", policy_page(service, seed_text(name), lang=lang))
    return policies


@pytest.fixture
def tracked(make_config, fixture_server) -> Iterator[tuple[Archive, Pipeline, list]]:
    config = make_config(seed_policies(fixture_server), schedule={"failure_alert_after": 2})
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        events: list = []
        archive.events.subscribe(events.append)
        yield archive, Pipeline(archive, fetcher), events


def statuses(results) -> Counter:
    return Counter(r.status for r in results)


def git(archive: Archive, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(archive.config.archive_dir), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_four_seed_policies_change_unchanged_and_down(tracked, fixture_server):
    archive, pipeline, events = tracked
    policies = archive.config.policies

    first = pipeline.check(policies)
    assert statuses(first) == {"first_record": 4}, [r.reason for r in first]
    assert len(archive.versions.log()) == 4
    text = archive.versions.current_text("WorkOptima", "Privacy Policy")
    assert text.startswith("# Privacy Policy")
    assert "support@workoptima.com" in text
    for chrome in ("Accept all", "Subscribe to our newsletter", "All rights reserved", "Pricing"):
        assert chrome not in text
    estonian = archive.versions.current_text("Backoffice.ee", "General Terms")
    assert "Privaatsuspoliitika" in estonian and "Accept all" not in estonian

    changed = seed_text(SEEDS[0][0]).replace("January, 2020", "March, 2026")
    fixture_server.set("/p0", policy_page("WorkOptima", changed))
    second = pipeline.check(policies)
    assert statuses(second) == {"changed": 1, "unchanged": 3}
    assert len(archive.versions.history("WorkOptima", "Privacy Policy")) == 2
    assert "March, 2026" in archive.versions.current_text("WorkOptima", "Privacy Policy")

    assert statuses(pipeline.check(policies)) == {"unchanged": 4}
    assert len(archive.versions.log()) == 5

    fixture_server.stop()
    down = pipeline.check(policies)
    assert statuses(down) == {"failed": 4}
    assert all(r.reason and r.transient for r in down)
    assert len(archive.versions.log()) == 5
    state = archive.state.get("WorkOptima", "Privacy Policy")
    assert state.failures == 1 and state.last_error

    recorded = [e for e in events if isinstance(e, VersionRecorded)]
    assert len(recorded) == 5 and recorded[-1].previous is not None
    log = git(archive, "log", "--format=%s")
    assert log.count("Start tracking") == 4 and log.count("Record change to") == 1
    snapshot_ids = {v.snapshot for v in archive.versions.log()}
    assert None not in snapshot_ids
    assert all(archive.snapshots.exists(s) for s in snapshot_ids)


def test_failures_are_recorded_never_committed(make_config, fixture_server):
    fixture_server.set("/empty", "")
    fixture_server.set("/tiny", "<html><body><main><p>Hi.</p></main></body></html>")
    fixture_server.redirect("/loop-a", "/loop-b")
    fixture_server.redirect("/loop-b", "/loop-a")
    fixture_server.set("/error", "<h1>Oops</h1>", status=500)
    fixture_server.set("/slow", policy_page("Slow", seed_text(SEEDS[0][0])), delay=3)
    fixture_server.set("/nomatch", policy_page("X", seed_text(SEEDS[0][0])))
    cases = {
        "missing": ("/missing", None),
        "empty": ("/empty", None),
        "tiny": ("/tiny", "main"),
        "loop": ("/loop-a", None),
        "error": ("/error", None),
        "slow": ("/slow", None),
        "nomatch": ("/nomatch", "#does-not-exist"),
    }
    policies = [
        {
            "service": name,
            "type": "Privacy Policy",
            "url": fixture_server.url(path),
            **({"select": select} if select else {}),
        }
        for name, (path, select) in cases.items()
    ]
    config = make_config(policies, fetch={"timeout": 1.0})
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        results = {r.service: r for r in Pipeline(archive, fetcher).check(config.policies)}
        assert {r.status for r in results.values()} == {"failed"}, results
        assert archive.versions.log() == []
        assert "404" in results["missing"].reason and not results["missing"].transient
        assert results["error"].transient and "500" in results["error"].reason
        assert results["slow"].transient
        assert "redirect" in results["loop"].reason.lower()
        assert "#does-not-exist" in results["nomatch"].reason
        assert "minimum" in results["tiny"].reason or "empty" in results["tiny"].reason
        assert (
            archive.state.get("missing", "Privacy Policy").last_error == results["missing"].reason
        )


def test_failing_then_recovered_events(tracked, fixture_server):
    archive, pipeline, events = tracked
    policy = archive.config.policies[0]
    pipeline.track(policy)
    fixture_server.fail("/p0", times=2, status=503)
    assert pipeline.track(policy).status == "failed"
    assert pipeline.track(policy).status == "failed"
    failing = [e for e in events if isinstance(e, PolicyFailing)]
    assert len(failing) == 1 and failing[0].failures == 2 and failing[0].transient
    assert pipeline.track(policy).status == "unchanged"
    assert any(isinstance(e, PolicyRecovered) for e in events)
    assert archive.state.get(policy.service, policy.type).failures == 0


def test_conditional_get_and_identical_bytes_do_no_work(make_config, fixture_server):
    fixture_server.set("/p", policy_page("A", seed_text(SEEDS[0][0])), etag='"v1"')
    config = make_config(
        [{"service": "A", "type": "T", "url": fixture_server.url("/p"), "select": "main"}]
    )
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        pipeline = Pipeline(archive, fetcher)
        assert pipeline.track(config.policies[0]).status == "first_record"
        assert pipeline.track(config.policies[0]).status == "unchanged"
        assert fixture_server.requests[-1].header("If-None-Match") == '"v1"'
        assert len(archive.snapshots.git.log()) == 1


def test_short_text_is_held_back_until_confirmed(tracked, fixture_server):
    archive, pipeline, _ = tracked
    policy = archive.config.policies[0]
    pipeline.track(policy)
    short = "\n".join(seed_text(SEEDS[0][0]).splitlines()[:8])
    fixture_server.set("/p0", policy_page("WorkOptima", short))
    held = pipeline.track(policy)
    assert held.status == "suspect" and "held back" in held.reason
    assert len(archive.versions.history(policy.service, policy.type)) == 1
    assert pipeline.track(policy).status == "changed"
    assert len(archive.versions.history(policy.service, policy.type)) == 2


def test_return_to_an_earlier_text_is_a_change(tracked, fixture_server):
    archive, pipeline, _ = tracked
    policy = archive.config.policies[0]
    original = policy_page("WorkOptima", seed_text(SEEDS[0][0]))
    pipeline.track(policy)
    fixture_server.set("/p0", original.replace("January, 2020", "May, 2026"))
    assert pipeline.track(policy).status == "changed"
    fixture_server.set("/p0", original)
    assert pipeline.track(policy).status == "changed"
    history = archive.versions.history(policy.service, policy.type)
    assert [v.kind for v in history] == ["first_record", "change", "change"]
    texts = [archive.versions.text(policy.service, policy.type, v.id) for v in history]
    assert texts[0] == texts[2] != texts[1]


def test_combined_sources_and_pdf(make_config, fixture_server):
    pdf = _text_pdf(["Refund Policy", "Refunds are given within 30 days of purchase. " * 8])
    fixture_server.set("/terms", policy_page("Terms", seed_text(SEEDS[1][0])))
    fixture_server.set("/refunds.pdf", pdf, content_type="application/pdf")
    config = make_config(
        [
            {
                "service": "Shop",
                "type": "Terms of Service",
                "select": "main",
                "urls": [fixture_server.url("/terms"), fixture_server.url("/refunds.pdf")],
            }
        ]
    )
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        result = Pipeline(archive, fetcher).track(config.policies[0])
        assert result.status == "first_record", result.reason
        text = archive.versions.current_text("Shop", "Terms of Service")
        assert text.index("Privacy Policy") < text.index("Refunds are given within 30 days")
        snap = archive.snapshots.latest("Shop", "Terms of Service")
        assert [p.content_type for p in snap.pages][1] == "application/pdf"


def test_reextract_rebuilds_from_snapshots_without_fetching(make_config, fixture_server):
    fixture_server.set("/p", policy_page("A", seed_text(SEEDS[0][0])))
    policy = {"service": "A", "type": "T", "url": fixture_server.url("/p"), "select": "main"}
    config = make_config([policy])
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        Pipeline(archive, fetcher).track(config.policies[0])
    hits = fixture_server.hits("/p")
    narrower = make_config([{**policy, "select": "main", "remove": "h2"}])
    with Archive.open(narrower, writer=True, listeners=LISTENERS) as archive:
        events: list = []
        archive.events.subscribe(events.append)
        (result,) = reextract_all(archive, narrower.policies)
        assert result.status == "reextracted"
        assert [v.kind for v in archive.versions.history("A", "T")] == ["first_record", "reextract"]
        assert result.version.snapshot == archive.versions.history("A", "T")[0].snapshot
        assert events == []  # re-extraction never alerts
        (again,) = reextract_all(archive, narrower.policies)
        assert again.status == "unchanged"
    assert fixture_server.hits("/p") == hits


def _text_pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF with a text layer (Helvetica, one line per entry)."""
    content = (
        "BT /F1 10 Tf 50 750 Td 12 TL "
        + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
            for line in lines
        )
        + " ET"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return out


@pytest.mark.browser
@pytest.mark.skipif(not browser_available(""), reason="Debian's chromium is not installed")
def test_javascript_page_is_rendered_before_extraction(make_config, fixture_server):
    text = seed_text(SEEDS[0][0]).replace("\\", "\\\\").replace("`", "\\`")
    fixture_server.set(
        "/js",
        f"""<!DOCTYPE html><html><head><title>Privacy</title></head>
<body><nav>Home</nav><main id="app">Loading…</main>
<script>const t = `{text}`;
document.getElementById("app").innerHTML = t.split("\\n").filter(Boolean)
  .map((l, i) => i ? "<p>" + l + "</p>" : "<h1>" + l + "</h1>").join("");</script>
</body></html>""",
    )
    config = make_config(
        [
            {
                "service": "JS",
                "type": "Privacy Policy",
                "js": True,
                "url": fixture_server.url("/js"),
                "select": "main",
            }
        ]
    )
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        result = Pipeline(archive, fetcher).track(config.policies[0])
        assert result.status == "first_record", result.reason
        recorded = archive.versions.current_text("JS", "Privacy Policy")
        assert recorded.startswith("# Privacy Policy") and "Loading" not in recorded
        assert "support@workoptima.com" in recorded


def test_javascript_page_without_a_browser_is_skipped(make_config, fixture_server):
    fixture_server.set("/js", "<p>x</p>")
    config = make_config(
        [{"service": "JS", "type": "T", "js": True, "url": fixture_server.url("/js")}],
        fetch={"browser_path": "/nonexistent/chromium"},
    )
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        result = Pipeline(archive, fetcher).track(config.policies[0])
        assert result.status == "skipped" and "apt-get install chromium" in result.reason
        assert fixture_server.hits("/js") == 0
