"""Exports for researchers: JSONL round trip, the archive as of a date, zip dataset, CSV, web."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.cli import main
from archive.config import config_from_mapping
from archive.dates import parse_when
from archive.research.export import (
    CSV_COLUMNS,
    ExportError,
    ExportQuery,
    export_stream,
    select,
)
from archive.tracking.importer import (
    ImportReport,
    import_histories,
    merge_by_date,
    plan_history,
    read_histories,
)
from store.git.snapshots import Page
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, NewVersion
from tests.conftest import OTA_JSONL, seed_text
from webui import create_app

LICENCE = "ODC-BY 1.0: attribute Open Terms Archive and its contributors."


def corpus() -> list[dict]:
    # split on "\n" only: the texts hold U+2028 and other characters splitlines() breaks at
    text = OTA_JSONL.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


@pytest.fixture(scope="module")
def ota_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """The whole OTA corpus (301 histories, 1,510 versions), imported once for this module.

    With the importer's own steps but without its search-index catch-up (a minute for the
    corpus): exports read git and state only. The round trip below runs the full importer.
    """
    root = tmp_path_factory.mktemp("ota")
    config = config_from_mapping(
        {"data_dir": str(root / "data"), "export": {"licence": LICENCE}},
        path=root / "config.toml",
    )
    with Archive(config, writer=True, create=True) as archive:
        report = ImportReport()
        plans = []
        for history in read_histories(OTA_JSONL):
            plans.append(plan_history(archive, history, OTA_JSONL.name, report))
            archive.state.set_meta(f"lang:{history.service}/{history.type}", history.language)
        assert archive.versions.bulk_import(list(merge_by_date(plans))) == 1510
        yield archive


def run(archive: Archive, fmt: str, query: ExportQuery | None = None) -> bytes:
    _, chunks = export_stream(archive, fmt, query or ExportQuery())
    return b"".join(chunks)


# --------------------------------------------------------------------------- corpus


@pytest.mark.slow
def test_jsonl_round_trip_on_the_corpus(ota_archive: Archive, tmp_path: Path, make_config):
    exported = tmp_path / "export.jsonl"
    exported.write_bytes(run(ota_archive, "jsonl"))
    lines = [line for line in exported.read_text(encoding="utf-8").split("\n") if line]
    assert len(lines) == 301
    # U+2028 and friends in the texts are escaped: line-splitting readers see 301 lines too.
    assert len(exported.read_text(encoding="utf-8").splitlines()) == 301
    first = json.loads(lines[0])
    assert set(first) == {"service", "document_type", "language", "url", "versions"}
    assert set(first["versions"][0]) == {
        "date",
        "text",
        "kind",
        "version",
        "snapshot",
        "source_url",
    }

    with Archive.open(make_config(), writer=True, listeners=LISTENERS, create=True) as copy:
        report = import_histories(copy, exported)
        assert report.commits == 1510
        assert copy.versions.policies() == ota_archive.versions.policies()
        again = run(copy, "jsonl").decode("utf-8").split("\n")

    def content(line: str) -> tuple:
        history = json.loads(line)
        versions = [(v["date"], v["kind"], v["text"]) for v in history.pop("versions")]
        return history, versions

    # Same policies, languages, dates, kinds and texts (read back from the copy's git).
    assert [content(line) for line in again if line] == [content(line) for line in lines]
    # And against the published corpus itself: same dates, kinds and texts.
    by_key = {(o["service"], o["document_type"]): o for o in map(json.loads, lines)}
    for source in corpus():
        ours = by_key[(source["service"], source["document_type"])]
        assert [(v["date"], v["text"]) for v in ours["versions"]] == [
            (v["date"], v["text"]) for v in source["versions"]
        ]
        kinds = [v["kind"] for v in source["versions"]]
        assert [v["kind"] for v in ours["versions"]] == [
            "first_record",
            *["technical_upgrade" if k == "technical_upgrade" else "change" for k in kinds[1:]],
        ]


def in_force(history: dict, when: datetime) -> dict | None:
    """Independent of the store: the latest observed at or before ``when`` (a tie: the later
    record), straight from the corpus file."""
    best = None
    for v in history["versions"]:
        if datetime.fromisoformat(v["date"]) <= when and (
            best is None or v["date"] >= best["date"]
        ):
            best = v
    return best


@pytest.mark.slow
def test_at_gives_one_version_per_policy_in_force(ota_archive: Archive):
    when = parse_when("2024-01-01")
    rows = list(
        csv.DictReader(io.StringIO(run(ota_archive, "csv", ExportQuery(at=when)).decode("utf-8")))
    )
    got = {(r["service"], r["type"]): r for r in rows}
    assert len(got) == len(rows)  # exactly one version per policy
    expected = {}
    for history in corpus():
        version = in_force(history, when)
        if version is not None:
            expected[(history["service"], history["document_type"])] = version["date"]
    assert {k: r["date"] for k, r in got.items()} == expected
    assert len(rows) == 121

    # By hand, from the dates in the corpus file:
    assert got[("GitHub", "Terms of Service")]["date"] == "2023-11-17T12:30:03+00:00"
    assert got[("GitHub", "Terms of Service")]["valid_to"] == "2024-01-02T12:30:03+00:00"
    assert got[("npm Public Registry", "Privacy Policy")]["date"] == "2023-12-19T10:14:19+00:00"
    assert ("UptimeRobot", "Privacy Policy") not in got  # first recorded in 2026

    def one(service: str, type_: str, day: str) -> dict:
        lines = run(
            ota_archive, "jsonl", ExportQuery(at=parse_when(day), service=service, type=type_)
        ).splitlines()
        assert len(lines) == 1
        versions = json.loads(lines[0])["versions"]
        assert len(versions) == 1
        return versions[0]

    # LEX: a technical upgrade dated 2024-05-02, recorded after a change of 2025-07-27.
    lex = one("LEX", "Terms of Service", "2024-06-01")
    assert (lex["date"], lex["kind"]) == ("2024-05-02T12:32:57+00:00", "technical_upgrade")
    # Deezer on 2022-09-19: the upgrade dated that morning (5th record), not the 2nd one.
    deezer = one("Deezer", "Privacy Policy", "2022-09-19")
    assert deezer["date"] == "2022-09-19T12:33:38+00:00"
    # OCS: a change and a later upgrade share 2022-08-03T12:35:11; the later record wins.
    ocs = one("OCS", "Terms of Service", "2022-08-03")
    assert (ocs["date"], ocs["kind"]) == ("2022-08-03T12:35:11+00:00", "technical_upgrade")
    ocs_history = next(h for h in corpus() if h["service"] == "OCS")["versions"]
    assert ocs["text"] == ocs_history[5]["text"] != ocs_history[3]["text"]


@pytest.mark.slow
def test_zip_dataset_of_the_corpus(ota_archive: Archive, tmp_path: Path):
    data = run(ota_archive, "zip")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert len(names) == 1510 + 2
        readme = zf.read("README.md").decode("utf-8")
        assert "1510 versions of 301 documents from 215 services" in readme
        assert "between 2020-06-02 and 2026-08-22" in readme
        assert LICENCE in readme
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["versions"] == 1510 and manifest["licence"] == LICENCE
        assert manifest["archive_head"] == ota_archive.versions.head()
        assert len(manifest["files"]) == 1510
        entry = next(
            f
            for f in manifest["files"]
            if f["path"] == "GitHub/Terms of Service/2023-11-17T12-30-03Z.md"
        )
        assert entry["valid_to"] == "2024-01-02T12:30:03+00:00"
        assert zf.read(entry["path"]).decode("utf-8") == ota_archive.versions.text(
            "GitHub", "Terms of Service", entry["version"]
        )
        # Two OCS versions observed in the same second: both kept, the second named by its id.
        ocs = sorted(n for n in names if n.startswith("OCS/Terms of Service/2022-08-03T12-35-11Z"))
        assert len(ocs) == 2 and ocs[1].endswith("Z.md")
        assert re.fullmatch(r".*Z-[0-9a-f]{8}\.md", ocs[0])
        for info in zf.infolist()[2:5]:
            assert info.date_time[:3] == tuple(
                int(x) for x in info.filename.split("/")[-1][:10].split("-")
            )


# --------------------------------------------------------------------------- small archive


URL = "https://workoptima.example/privacy"
TEXT = seed_text("workoptima-privacy-policy.txt")


@pytest.fixture
def small(archive: Archive) -> Archive:
    """Three versions with their snapshots, as the pipeline records them."""
    for when, kind, text in [
        ("2023-01-02T03:04:05+00:00", FIRST_RECORD, TEXT),
        ("2024-02-03T04:05:06+00:00", CHANGE, TEXT.replace("personal data", "data")),
        ("2024-02-10T00:00:00+00:00", REEXTRACT, TEXT.replace("personal data", "data ")),
    ]:
        date = datetime.fromisoformat(when)
        snapshot = archive.snapshots.record(
            "WorkOptima", "Privacy Policy", [Page(URL, text.encode(), "text/html")], date
        )
        archive.versions.record(
            NewVersion(
                service="WorkOptima",
                type="Privacy Policy",
                text=text,
                date=date,
                kind=kind,
                urls=(URL,),
                snapshot=snapshot,
            )
        )
    archive.versions.record(
        NewVersion(
            service="Backoffice.ee",
            type="General Terms",
            kind=FIRST_RECORD,
            text=seed_text("backoffice-ee-uldtingimused-et.txt"),
            date=datetime.fromisoformat("2024-01-01T00:00:00+02:00"),
        )
    )
    return archive


def test_csv_rows_link_each_version_to_its_snapshot_and_source(small: Archive):
    rows = list(csv.reader(io.StringIO(run(small, "csv").decode("utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]]
    assert [(r["service"], r["kind"]) for r in body] == [
        ("Backoffice.ee", "first_record"),
        ("WorkOptima", "first_record"),
        ("WorkOptima", "change"),
        ("WorkOptima", "technical_upgrade"),
    ]
    work = body[1:]
    history = small.versions.history("WorkOptima", "Privacy Policy")
    assert [r["version"] for r in work] == [v.id for v in history]
    assert [r["valid_to"] for r in work] == [
        "2024-02-03T04:05:06+00:00",
        "2024-02-10T00:00:00+00:00",
        "",
    ]
    assert work[0]["words"] == str(len(TEXT.split()))
    for row in work:
        assert row["url"] == URL
        snapshot = small.snapshots.get(row["snapshot"], "WorkOptima", "Privacy Policy")
        assert snapshot is not None and snapshot.pages[0].url == URL
    assert body[0]["snapshot"] == "" and body[0]["url"] == ""


def test_exports_stream_one_text_at_a_time(small: Archive):
    calls: list[tuple[int, int]] = []
    _, chunks = export_stream(small, "jsonl", ExportQuery(), lambda d, t: calls.append((d, t)))
    assert calls == []  # nothing read before the first chunk is asked for
    next(chunks)  # the first history's opening, once its first text is read
    assert calls == [(1, 4)]
    next(chunks)  # that text, as JSON
    assert calls == [(1, 4)]
    rest = list(chunks)
    assert calls[-1] == (4, 4) and rest[-1] == b"]}\n"


def test_filters_and_bad_options(small: Archive):
    only = select(small, ExportQuery(service="WorkOptima"))
    assert [(p.service, p.type, len(p.items)) for p in only.policies] == [
        ("WorkOptima", "Privacy Policy", 3)
    ]
    assert select(small, ExportQuery(type="General Terms")).versions == 1
    before = select(small, ExportQuery(at=parse_when("2022-12-31")))
    assert before.versions == 0 and run(small, "jsonl", before.query) == b""
    with pytest.raises(ExportError, match="no policy of service 'Nobody'"):
        select(small, ExportQuery(service="Nobody"))
    with pytest.raises(ExportError, match="no 'Cookie Policy' document"):
        select(small, ExportQuery(service="WorkOptima", type="Cookie Policy"))
    with pytest.raises(ExportError, match="unknown export format 'xml'"):
        export_stream(small, "xml", ExportQuery())


def test_zip_as_of_a_date(small: Archive):
    data = run(small, "zip", ExportQuery(at=parse_when("2024-02-05")))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == [
            "Backoffice.ee/General Terms/2023-12-31T22-00-00Z.md",
            "README.md",
            "WorkOptima/Privacy Policy/2024-02-03T04-05-06Z.md",
            "manifest.json",
        ]
        assert "as it stood on 2024-02-05T23:59:59.999999+00:00" in zf.read("README.md").decode()
        manifest = json.loads(zf.read("manifest.json"))
        work = next(f for f in manifest["files"] if f["service"] == "WorkOptima")
        assert work["snapshot"] and work["source_url"] == URL
        assert work["valid_to"] == "2024-02-10T00:00:00+00:00"


# --------------------------------------------------------------------------- CLI and web


def cli(small: Archive, *args: str) -> tuple[int, str, str]:
    config = Path(small.config.data_dir).parent / "config.toml"
    config.write_text(f'data_dir = "{small.config.data_dir}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_export(small: Archive, tmp_path: Path):
    code, out, err = cli(small, "export", "--format", "csv", "--service", "WorkOptima")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 4 and "Exported 3 versions of 1 documents" in err

    target = tmp_path / "dataset.zip"
    code, _, err = cli(small, "export", "--format", "zip", "--at", "2024-01-15", "-o", str(target))
    assert code == 0, err
    with zipfile.ZipFile(target) as zf:
        assert len(zf.namelist()) == 4
    assert not list(tmp_path.glob(".*partial"))

    code, _, err = cli(small, "export", "--format", "zip")
    assert code == 2 and "needs --output" in err
    code, _, err = cli(small, "export", "--format", "csv", "--at", "last week")
    assert code == 1 and "'last week' is not a date" in err
    code, _, err = cli(small, "export", "--format", "jsonl", "--service", "Nobody")
    assert code == 1 and "no policy of service 'Nobody'" in err


def test_web_export_streams_with_the_right_headers(small: Archive):
    app = create_app(small.config, archive=small)
    client = app.test_client()

    response = client.get("/export?format=csv&service=WorkOptima")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["Content-Disposition"]
        == 'attachment; filename="policy-archive-full-WorkOptima.csv"'
    )
    assert len(response.get_data(as_text=True).strip().splitlines()) == 4

    zipped = client.get("/export?format=zip&at=2024-01-15")
    assert zipped.headers["Content-Type"] == "application/zip"
    assert 'filename="policy-archive-2024-01-15.zip"' in zipped.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(zipped.get_data())) as zf:
        assert len(zf.namelist()) == 4

    lines = client.get("/export?format=jsonl").get_data(as_text=True).splitlines()
    assert [json.loads(line)["service"] for line in lines] == ["Backoffice.ee", "WorkOptima"]

    assert client.get("/export?format=xml").status_code == 400
    assert client.get("/export?format=csv&at=yesterday").status_code == 400
    missing = client.get("/export?format=csv&service=Nobody")
    assert missing.status_code == 404 and b"Nobody" in missing.data


OUT_OF_RANGE = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59")


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_dates_out_of_range_are_400_not_500(small: Archive, when: str):
    client = create_app(small.config, archive=small).test_client()
    at = when.replace("+", "%2B")
    for path in (
        f"/export?format=csv&at={at}",
        f"/policies/WorkOptima/Privacy%20Policy?at={at}",
        f"/search?q=data&from={at}",
        f"/search?q=data&to={at}",
    ):
        response = client.get(path)
        assert response.status_code == 400, (path, response.status_code)
        assert b"out of range" in response.data, path
    code, out, err = cli(small, "export", "--format", "csv", "--at", when)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        f"Error: {when!r} is out of range: dates run from 0001-01-01 to 9999-12-31 (UTC)"
    ]


def test_the_last_day_there_is_still_answers(small: Archive):
    client = create_app(small.config, archive=small).test_client()
    response = client.get("/export?format=jsonl&at=9999-12-31")
    assert response.status_code == 200
    assert [
        json.loads(line)["service"] for line in response.get_data(as_text=True).split("\n")[:-1]
    ] == [
        "Backoffice.ee",
        "WorkOptima",
    ]
    assert client.get("/export?format=jsonl&at=9999-12-31T23:59:59%2B00:00").status_code == 200
