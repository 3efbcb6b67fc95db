"""``pipgate osv-sync``: clones, all.zip files and URLs merged into one export folder.

The PYSEC records are the real ones in tests/data/osv; the GHSA-shaped and npm records
are written here (each says so in its ``details``), since the PyPA snapshot holds PYSEC
records only.
"""

from __future__ import annotations

import datetime
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipgate.audit.osv import META_NAME, StaleDatabaseError, check_fresh, load_database
from pipgate.audit.osvsync import merge_records, sync_export
from pipgate.cli import main
from pipgate.errors import InputError

DATA = Path(__file__).resolve().parent.parent / "data" / "osv"
NOW = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC)
COMMITTED = "2026-11-30T08:00:00+00:00"
Routes = dict[str, tuple[int, bytes, dict[str, str]]]
"""What the local server answers: path -> (status, body, headers)."""

GHSA: dict[str, Any] = {
    "id": "GHSA-j8r2-6x86-q33q",
    "aliases": ["CVE-2023-32681"],
    "modified": "2024-11-01T00:00:00Z",
    "published": "2023-05-22T20:36:32Z",
    "details": "Synthetic, for pipgate's tests: a GHSA-shaped twin of PYSEC-2023-74.",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}
            ],
        },
        {
            # A range only this twin has: the merged record keeps it (fail closed).
            "package": {"ecosystem": "PyPI", "name": "requests"},
            "versions": ["1.2.3"],
        },
    ],
}
NPM: dict[str, Any] = {
    "id": "MAL-2000-2",
    "modified": "2024-10-01T00:00:00Z",
    "details": "Synthetic, for pipgate's tests: a malicious npm package, not PyPI's.",
    "affected": [{"package": {"ecosystem": "npm", "name": "left-pad-evil"}, "versions": ["1.0"]}],
}


def _git(folder: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_DATE": COMMITTED,
        "GIT_AUTHOR_DATE": COMMITTED,
    }
    subprocess.run(["git", "-C", str(folder), *args], check=True, env=env, capture_output=True)


@pytest.fixture
def advisory_clone(tmp_path: Path) -> Path:
    """The real PYSEC records, laid out as a clone of the PyPA advisory database."""
    clone = tmp_path / "advisory-database"
    for record in DATA.rglob("PYSEC-*.yaml"):
        target = clone / "vulns" / record.parent.name / record.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(record, target)
    _git(clone, "init", "-q")
    _git(clone, "add", ".")
    _git(clone, "commit", "-q", "-m", "snapshot")
    return clone


@pytest.fixture
def malicious_clone(tmp_path: Path) -> Path:
    """The malicious-packages layout: a PyPI report and another ecosystem's."""
    clone = tmp_path / "malicious-packages"
    pypi = clone / "osv" / "malicious" / "pypi" / "evil-pkg"
    pypi.mkdir(parents=True)
    shutil.copy(DATA / "synthetic" / "MAL-2000-1.json", pypi)
    npm = clone / "osv" / "malicious" / "npm" / "left-pad-evil"
    npm.mkdir(parents=True)
    (npm / "MAL-2000-2.json").write_text(json.dumps(NPM))
    return clone


def _zip(records: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return buffer.getvalue()


@pytest.fixture
def served() -> Iterator[Routes]:
    """A local HTTP server: path -> (status, body, headers)."""
    routes: Routes = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            status, body, headers = routes.get(self.path, (404, b"", {}))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    routes["base"] = (0, f"http://127.0.0.1:{server.server_address[1]}".encode(), {})
    try:
        yield routes
    finally:
        server.shutdown()
        server.server_close()


def _base(routes: Routes) -> str:
    return routes["base"][1].decode()


def _records(export: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in (export / "records").glob("*.json")}


def test_clones_a_zip_and_a_url_become_one_export(
    tmp_path: Path, advisory_clone: Path, malicious_clone: Path, served: Routes
) -> None:
    older_twin = dict(GHSA, modified="2023-06-01T00:00:00Z", affected=GHSA["affected"][:1])
    archive = tmp_path / "all.zip"
    archive.write_bytes(_zip([older_twin]))
    served["/PyPI/all.zip"] = (200, _zip([GHSA]), {"Content-Type": "application/zip"})
    export = tmp_path / "export"
    result = sync_export(
        [str(advisory_clone), str(malicious_clone), str(archive), _base(served) + "/PyPI/all.zip"],
        export,
        now=NOW,
    )
    records = _records(export)
    # PYSEC-2023-74 and its GHSA twin are one record (the PYSEC one), with every id as an
    # alias and the twin's extra range; the twin's two copies are one id (the newer kept).
    assert "GHSA-j8r2-6x86-q33q" not in records
    merged = records["PYSEC-2023-74"]
    assert {"GHSA-j8r2-6x86-q33q", "CVE-2023-32681"} <= set(merged["aliases"])
    assert any(a.get("versions") == ["1.2.3"] for a in merged["affected"])
    assert merged["modified"] == GHSA["modified"]
    assert (result.same_id, result.merged) == (1, 1)
    # The PyPI malicious report is kept; the npm one is not PyPI's.
    assert "MAL-2000-1" in records and "MAL-2000-2" not in records
    # Seven PYSEC records (one with its twin folded in) and the malicious report.
    assert result.malicious == 1 and result.records == len(records) == 8
    # The export's time is its oldest source's: the zip on disk tells none, so none.
    meta = json.loads((export / META_NAME).read_text())
    assert meta["fetched"] is None and result.fetched is None
    kinds = {s["kind"]: s for s in meta["sources"]}
    assert kinds["git clone"]["fetched"] == "2026-11-30T08:00:00Z"
    assert kinds["url"]["fetched"] == "2026-12-02T12:00:00Z"
    assert set(kinds) == {"git clone", "folder", "zip", "url"}
    # The audit reads it: a vulnerable pin is found by the merged record's twin range too.
    database = load_database(export)
    assert [r["id"] for r in database.query("requests", "1.2.3")] == ["PYSEC-2023-74"]
    assert [r["id"] for r in database.query("evil-pkg", "1.0")] == ["MAL-2000-1"]


def test_the_fetch_time_is_the_oldest_sources(
    tmp_path: Path, advisory_clone: Path, served: Routes
) -> None:
    served["/all.zip"] = (200, _zip([GHSA]), {})
    export = tmp_path / "export"
    result = sync_export([str(advisory_clone), _base(served) + "/all.zip"], export, now=NOW)
    assert result.fetched == "2026-11-30T08:00:00Z"  # the clone's HEAD, older than the URL's
    database = load_database(export)
    assert database.fetched == result.fetched
    # Two days and four hours old at NOW: over a limit of 2 days, though GHSA is newer.
    with pytest.raises(StaleDatabaseError, match="2 days old"):
        check_fresh(database, export, 2, NOW)
    check_fresh(database, export, 3, NOW)


def test_a_merged_malicious_report_is_never_hidden_behind_its_alias(tmp_path: Path) -> None:
    mal = json.loads((DATA / "synthetic" / "MAL-2000-1.json").read_text())
    ghsa = {
        "id": "GHSA-0000-0000-0001",
        "aliases": [mal["id"]],
        "modified": "2030-01-01T00:00:00Z",
        "details": "Synthetic: a GHSA malware advisory naming the same release.",
        "affected": mal["affected"],
    }
    records, _, merged = merge_records([ghsa, mal])
    assert [r["id"] for r in records] == ["MAL-2000-1"] and merged == 1
    assert records[0]["aliases"] == ["GHSA-0000-0000-0001"]


def test_a_withdrawn_twin_adds_nothing(tmp_path: Path) -> None:
    pysec = {"id": "PYSEC-1", "aliases": ["CVE-1"], "affected": GHSA["affected"][:1]}
    withdrawn = dict(GHSA, aliases=["CVE-1"], withdrawn="2024-01-01T00:00:00Z")
    records, _, _ = merge_records([withdrawn, pysec])
    assert [r["id"] for r in records] == ["PYSEC-1"]
    assert len(records[0]["affected"]) == 1 and "withdrawn" not in records[0]


def test_a_new_sync_replaces_an_earlier_export_whole(tmp_path: Path, advisory_clone: Path) -> None:
    export = tmp_path / "export"
    sync_export([str(advisory_clone)], export, now=NOW)
    assert (export / "records" / "PYSEC-2023-74.json").is_file()
    (advisory_clone / "vulns" / "requests" / "PYSEC-2023-74.yaml").unlink()
    sync_export([str(advisory_clone)], export, now=NOW)
    assert not (export / "records" / "PYSEC-2023-74.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_that_is_not_an_export_is_never_replaced(
    tmp_path: Path, advisory_clone: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="is not an export osv-sync made"):
        sync_export([str(advisory_clone)], precious, now=NOW)
    assert (precious / "notes.txt").read_text() == "keep me"


class TestHostileSources:
    def test_an_id_that_would_leave_the_folder_is_refused(self, tmp_path: Path) -> None:
        source = tmp_path / "source"
        source.mkdir()
        (source / "x.json").write_text(json.dumps(dict(GHSA, id="../../escaped")))
        with pytest.raises(InputError, match="is not an OSV id") as caught:
            sync_export([str(source)], tmp_path / "export", now=NOW)
        assert "x.json" in str(caught.value)
        assert not (tmp_path / "escaped.json").exists() and not (tmp_path / "export").exists()

    def test_a_url_that_redirects_elsewhere_is_refused(
        self, tmp_path: Path, served: Routes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        served["/all.zip"] = (302, b"", {"Location": "http://127.0.0.2:9/all.zip"})
        code = main(["osv-sync", "--output", str(tmp_path / "e"), _base(served) + "/all.zip"])
        assert code == 3 and not (tmp_path / "e").exists()
        assert "127.0.0.2" in capsys.readouterr().err

    @pytest.mark.parametrize(
        "answer",
        [(404, b"", "answered HTTP 404"), (200, b"<html>not a zip</html>", "zip archive")],
    )
    def test_a_url_that_sends_no_zip_fails(
        self,
        tmp_path: Path,
        served: Routes,
        capsys: pytest.CaptureFixture[str],
        answer: tuple[int, bytes, str],
    ) -> None:
        status, body, said = answer
        served["/all.zip"] = (status, body, {})
        code = main(["osv-sync", "--output", str(tmp_path / "e"), _base(served) + "/all.zip"])
        assert code == 3 and said in capsys.readouterr().err
        assert not (tmp_path / "e").exists()

    def test_credentials_in_a_url_are_never_printed(
        self, tmp_path: Path, served: Routes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        url = _base(served).replace("http://", "http://user:s3cret@") + "/missing.zip"
        assert main(["osv-sync", "--output", str(tmp_path / "e"), url]) == 3
        captured = capsys.readouterr()
        assert "s3cret" not in captured.err + captured.out

    def test_sources_with_no_pypi_record_make_no_export(
        self, tmp_path: Path, malicious_clone: Path
    ) -> None:
        shutil.rmtree(malicious_clone / "osv" / "malicious" / "pypi")
        with pytest.raises(InputError, match="no source holds a record naming a PyPI package"):
            sync_export([str(malicious_clone)], tmp_path / "export", now=NOW)


def test_the_command_reports_in_json(
    tmp_path: Path, advisory_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export"
    assert main(["osv-sync", "--format", "json", "--output", str(export), str(advisory_clone)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["records"] == 7 and document["fetched"] == "2026-11-30T08:00:00Z"
    assert document["sources"][0]["kind"] == "git clone"
    assert main(["osv-sync", "--output", str(tmp_path / "x"), str(tmp_path / "absent")]) == 2


def test_two_packages_records_of_one_cve_stay_two() -> None:
    def record(identifier: str, package: str) -> dict[str, Any]:
        return {
            "id": identifier,
            "aliases": ["CVE-2021-0001"],
            "affected": [{"package": {"ecosystem": "PyPI", "name": package}, "versions": ["1"]}],
        }

    reads = [record("PYSEC-1", "tensorflow"), record("PYSEC-2", "tf-gpu")]
    records, _, merged = merge_records(reads)
    assert [r["id"] for r in records] == ["PYSEC-1", "PYSEC-2"] and merged == 0
