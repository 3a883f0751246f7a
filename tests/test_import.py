"""Bulk import of the real Open Terms Archive corpus: every history reproduced, idempotently."""

from __future__ import annotations

import itertools
import json
import subprocess
from datetime import datetime

import pytest

from archive.tracking.importer import ImportFormatError, import_histories
from tests.conftest import OTA_JSONL


def expected_histories():
    for line in OTA_JSONL.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        obj = json.loads(line)
        versions, last = [], None
        for v in obj["versions"]:
            if v["text"] != last:
                versions.append(v)
            last = v["text"]
        yield obj, versions


@pytest.mark.slow
def test_import_reproduces_the_ota_corpus(archive):
    report = import_histories(archive, OTA_JSONL)
    assert report.histories == 301 and report.versions_read == 1510
    assert report.commits == 1510
    for checked, (obj, versions) in enumerate(expected_histories()):
        history = archive.versions.history(obj["service"], obj["document_type"])
        assert len(history) == len(versions), obj["service"]
        for got, want in zip(history, versions, strict=True):
            assert got.date == datetime.fromisoformat(want["date"])
            want_kind = "reextract" if want["kind"] == "technical_upgrade" else "change"
            assert got.kind == (want_kind if got is not history[0] else "first_record")
        if checked < 40:  # texts: a sample (reading all 1,510 costs seconds, not coverage)
            for got, want in zip(history, versions, strict=True):
                text = archive.versions.text(obj["service"], obj["document_type"], got.id)
                assert text == want["text"]
        assert (
            archive.state.get_meta(f"lang:{obj['service']}/{obj['document_type']}")
            == obj["language"]
        )
    log = subprocess.run(
        ["git", "-C", str(archive.config.archive_dir), "log", "--format=%aI %s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(log) == 1510
    assert log[-1].split(" ", 1)[1].startswith("Start tracking ")
    dates = [datetime.fromisoformat(line.split(" ", 1)[0]) for line in log]
    out_of_order = sum(1 for a, b in itertools.pairwise(dates) if a < b)
    assert out_of_order < 20  # a timeline, newest first (a few histories go back in time)

    again = import_histories(archive, OTA_JSONL)
    assert again.commits == 0
    assert len(archive.versions.log()) == 1510


def test_import_errors_name_the_line(archive, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"service": "A", "document_type": "T", "versions": []}\nnot json\n', encoding="utf-8"
    )
    with pytest.raises(ImportFormatError, match=r"bad\.jsonl:2: not valid JSON"):
        import_histories(archive, bad)
    bad.write_text('{"service": "", "document_type": "T", "versions": []}\n', encoding="utf-8")
    with pytest.raises(ImportFormatError, match="'service' must be a non-empty string"):
        import_histories(archive, bad)
    assert archive.versions.log() == []


def test_an_imported_history_is_indexed_in_its_language_at_once(archive, tmp_path):
    """The history's ``language`` reaches the index on import (no `reindex` needed)."""
    from archive.search import search
    from tests.conftest import seed_text

    text = seed_text("backoffice-ee-uldtingimused-et.txt")
    path = tmp_path / "et.jsonl"
    line = {
        "service": "Backoffice.ee",
        "document_type": "General Terms",
        "language": "et",
        "versions": [{"date": "2024-01-01T00:00:00+00:00", "text": text}],
    }
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert import_histories(archive, path).commits == 1
    found = search(archive, "lang:et tingimused")
    assert [h.service for h in found.hits] == ["Backoffice.ee"]
    assert [h.lang for h in found.hits] == ["et"]
