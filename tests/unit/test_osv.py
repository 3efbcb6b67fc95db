"""OSV matching against real records: ranges, versions lists, prereleases, withdrawn."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import shutil
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from pipgate.audit import osv
from pipgate.audit.osv import Database, OsvDatabaseError, Server, load_database

DATA = Path(__file__).resolve().parent.parent / "data" / "osv"


@pytest.fixture(scope="module")
def database() -> Database:
    return load_database(DATA)


def ids(database: Database, name: str, version: str) -> list[str]:
    return sorted(r["id"] for r in database.query(name, version))


def test_loads_every_record(database: Database) -> None:
    assert database.count == 9
    assert database.newest is not None and database.newest.startswith("2024")


@pytest.mark.parametrize(
    ("version", "affected"),
    [("2.2.0", False), ("2.3.0", True), ("2.30.0", True), ("2.31.0", False), ("2.32.3", False)],
)
def test_simple_range(database: Database, version: str, affected: bool) -> None:
    assert ("PYSEC-2023-74" in ids(database, "requests", version)) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("2022.12.07", True),
        ("2022.12.7", True),
        ("2023.07.22", False),
        ("2023.7.22", False),
        ("2015.04.28", True),
        ("2015.4.27", False),
    ],
)
def test_non_canonical_spellings(database: Database, version: str, affected: bool) -> None:
    assert ("PYSEC-2023-135" in ids(database, "certifi", version)) is affected


def test_withdrawn_advisory_is_never_reported(database: Database) -> None:
    # PYSEC-2023-73 lists redis 1.34 and every version from 0, but was withdrawn.
    assert ids(database, "redis", "1.34") == []
    assert ids(database, "redis", "4.5.4") == []


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("2.1.1", True),
        ("3.1.1", True),
        ("3.1.3", True),
        ("3.2.0", True),
        ("3.2.1", True),
        ("3.2.2", False),
        ("3.3.0", False),
    ],
)
def test_several_pairs_out_of_order(database: Database, version: str, affected: bool) -> None:
    assert ("PYSEC-2023-72" in ids(database, "pyspark", version)) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("0.9", False),
        ("1.1", True),
        ("1.0", True),
        ("1.1.9", True),
        ("1.2", False),
        ("1.9", False),
        ("2.0", True),
        ("2.0.5", True),
        ("2.1", False),
        ("3.0", False),
    ],
)
def test_separate_ranges_out_of_order(database: Database, version: str, affected: bool) -> None:
    # Synthetic: [1.0, 1.2) and [2.0, 2.1), listed backwards; 0.9 is below both...
    expected = affected and version != "0.9"
    assert ("PIPGATE-TEST-1" in ids(database, "gap-ranges", version)) is expected


@pytest.mark.parametrize(
    ("version", "affected"),
    [("1.11.0", True), ("1.10.0", True), ("1.11.1", False), ("1.12.0", False)],
)
def test_last_affected(database: Database, version: str, affected: bool) -> None:
    assert ("PYSEC-2022-42969" in ids(database, "py", version)) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("1.0.9", False),
        ("1.1.0a1", False),
        ("1.1.0b1", True),
        ("1.1.0rc1", True),
        ("1.1.0", True),
        ("1.1.3", False),
    ],
)
def test_prereleases(database: Database, version: str, affected: bool) -> None:
    assert ("PYSEC-2018-105" in ids(database, "borgbackup", version)) is affected


@pytest.mark.parametrize(("version", "affected"), [("0.5", True), ("0.5.0", True), ("0.6", False)])
def test_explicit_versions(database: Database, version: str, affected: bool) -> None:
    assert ("PYSEC-2024-1" in ids(database, "gratient", version)) is affected


def test_names_are_normalised(database: Database) -> None:
    assert ids(database, "Gap_Ranges", "1.0") == ["PIPGATE-TEST-1"]
    assert ids(database, "REQUESTS", "2.30.0") == ["PYSEC-2023-74"]


def test_zip_export(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(DATA / "synthetic" / "PIPGATE-TEST-1.json", "PIPGATE-TEST-1.json")
    database = load_database(archive)
    assert database.count == 1
    assert [r["id"] for r in database.query("gap-ranges", "1.1")] == ["PIPGATE-TEST-1"]


def test_empty_or_missing_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OsvDatabaseError, match="no OSV record"):
        load_database(tmp_path)
    with pytest.raises(OsvDatabaseError, match="no OSV export"):
        load_database(tmp_path / "absent")


def test_query_api(database: Database) -> None:
    with Server(database) as server:

        def post(path: str, body: object) -> object:
            request = urllib.request.Request(
                server.url.replace("/v1/query", path),
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        found = post(
            "/v1/query", {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.30.0"}
        )
        assert isinstance(found, dict)
        assert [v["id"] for v in found["vulns"]] == ["PYSEC-2023-74"]
        assert (
            post(
                "/v1/query",
                {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.31.0"},
            )
            == {}
        )
        batch = post(
            "/v1/querybatch",
            {
                "queries": [
                    {"package": {"name": "certifi", "ecosystem": "PyPI"}, "version": "2022.12.7"},
                    {"package": {"name": "certifi", "ecosystem": "PyPI"}, "version": "2023.7.22"},
                ]
            },
        )
        assert isinstance(batch, dict)
        assert [[v["id"] for v in r["vulns"]] for r in batch["results"]] == [["PYSEC-2023-135"], []]


def test_freshness_is_the_fetch_time_where_recorded_else_the_newest_record() -> None:
    from pipgate.audit.osv import StaleDatabaseError, check_fresh

    now = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC)
    old = Database("x", {}, 1, "2026-11-20T00:00:00Z")
    with pytest.raises(StaleDatabaseError, match="is 12 days old"):
        check_fresh(old, Path("x"), 2, now)
    check_fresh(old, Path("x"), 0, now)  # 0: no limit
    check_fresh(old, Path("x"), 13, now)
    fetched = dataclasses.replace(old, fetched="2026-12-01T12:00:00+00:00")
    check_fresh(fetched, Path("x"), 2, now)  # fetched a day ago: the records are current
    # A recorded fetch time is the export's age, even where a record is newer: a merged
    # export records its oldest source's time, and one fresh source must not hide it.
    merged = Database("x", {}, 1, "2026-12-02T00:00:00Z", "2026-11-25T00:00:00Z")
    with pytest.raises(StaleDatabaseError, match="is 7 days old"):
        check_fresh(merged, Path("x"), 2, now)
    undated = Database("x", {}, 1, None)
    with pytest.raises(StaleDatabaseError, match="tells no time"):
        check_fresh(undated, Path("x"), 2, now)


def _indexes(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sqlite"))


def _set_count(index: Path, count: int) -> None:
    with contextlib.closing(sqlite3.connect(index)) as connection:
        connection.execute("UPDATE meta SET value = ? WHERE key = 'count'", (str(count),))
        connection.commit()


def test_the_index_is_read_for_the_same_content_and_made_again_for_other_content(
    tmp_path: Path,
) -> None:
    export, index = tmp_path / "osv", tmp_path / "index"
    shutil.copytree(DATA, export)
    first = load_database(export, index)
    (kept,) = _indexes(index)
    again = load_database(export, index)
    assert again.count == first.count and again.newest == first.newest
    assert ids(again, "requests", "2.30.0") == ids(first, "requests", "2.30.0") != []
    assert again.by_id("PIPGATE-TEST-1") == first.by_id("PIPGATE-TEST-1") is not None
    assert sorted(again.records) == sorted(first.records)
    # The index answers by itself: what it holds, not the files, is what the read returns.
    _set_count(kept, 12345)
    assert load_database(export, index).count == 12345
    # A record changed: another digest, another index, read from the files.
    record = export / "synthetic" / "PIPGATE-TEST-1.json"
    record.write_text(record.read_text().replace("Synthetic record", "A synthetic record"))
    fresh = load_database(export, index)
    assert fresh.count == first.count and len(_indexes(index)) == 2
    assert "A synthetic record" in json.dumps(fresh.by_id("PIPGATE-TEST-1"))


def test_the_files_stat_stands_for_their_digest_only_when_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, index = tmp_path / "osv", tmp_path / "index"
    shutil.copytree(DATA, export)
    # The copies were made just now: inside the racy window nothing is taken on its stat.
    load_database(export, index)
    assert not (index / "stat").exists()
    monkeypatch.setattr(osv, "RACY_SECONDS", 0.0)
    load_database(export, index)
    (kept,) = _indexes(index)
    _set_count(kept, 777)

    def no_digest(path: Path) -> str:
        raise AssertionError("the record files were read for their digest")

    with monkeypatch.context() as patched:
        patched.setattr(osv, "_export_digest", no_digest)
        # Same files, same stat: the witness names the index, no record file is read.
        assert load_database(export, index).count == 777
        # A record rewritten with bytes of the same length: its stat changed, so the
        # witness does not stand for it and its content is read.
        record = export / "synthetic" / "PIPGATE-TEST-1.json"
        text = record.read_text()
        record.write_text(text.replace("Synthetic record", "Synthetic RECORD"))
        with pytest.raises(AssertionError, match="read for their digest"):
            load_database(export, index)
    assert load_database(export, index).count == 9
    assert len(_indexes(index)) == 2
    # Put back byte for byte (another mtime): the first index, found by its content digest.
    record.write_text(text)
    assert load_database(export, index).count == 777


def test_a_damaged_index_is_made_again(tmp_path: Path) -> None:
    export, index = tmp_path / "osv", tmp_path / "index"
    shutil.copytree(DATA, export)
    load_database(export, index)
    (kept,) = _indexes(index)
    kept.write_bytes(b"not an sqlite file" * 100)
    again = load_database(export, index)
    assert again.count == 9 and ids(again, "requests", "2.30.0") != []
    assert load_database(export, index).count == 9
