"""The scheduled OSV refresh (pipelines/osv-sync.cloudbuild.yaml) run on this machine
(tests/cloudbuild.py): it clones the two projects (local clones here), merges them with
`pipgate osv-sync`, publishes to a bucket (a folder, through the gsutil stand-in), and
the other pipelines' osv-data step copies what LATEST names to /workspace/.osv."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from pipgate.audit.osv import META_NAME, check_fresh, load_database
from tests.cloudbuild import bucket, run_build
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "osv"
OSV_SYNC = REPO / "pipelines" / "osv-sync.cloudbuild.yaml"
READERS = [
    REPO / "cloudbuild.yaml",
    REPO / "pipelines" / "pr-check.cloudbuild.yaml",
    REPO / "pipelines" / "reaudit.cloudbuild.yaml",
]


def _repository(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "x"],
    ):
        subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)
    return folder


def _sources(root: Path) -> tuple[Path, Path]:
    advisories = _repository(
        root / "advisory-database",
        {f"vulns/{p.parent.name}/{p.name}": p.read_bytes() for p in DATA.rglob("PYSEC-*.yaml")},
    )
    npm = {"id": "MAL-2000-2", "affected": [{"package": {"ecosystem": "npm", "name": "x"}}]}
    malicious = _repository(
        root / "malicious-packages",
        {
            "osv/malicious/pypi/evil-pkg/MAL-2000-1.json": (
                DATA / "synthetic" / "MAL-2000-1.json"
            ).read_bytes(),
            "osv/malicious/npm/x/MAL-2000-2.json": json.dumps(npm).encode(),
            "README.md": b"not a record\n",
        },
    )
    return advisories, malicious


def _refresh(root: Path, build: str, advisories: Path, malicious: Path) -> None:
    workspace = root / f"workspace-{build}"
    workspace.mkdir()
    values = {
        "PROJECT_ID": "test-project",
        "BUILD_ID": build,
        "_OSV_BUCKET": "org-osv",
        "_ADVISORY_REPO": advisories.as_uri(),
        "_MALICIOUS_REPO": malicious.as_uri(),
    }
    runs = run_build(OSV_SYNC, workspace, root, values)
    assert [r.id for r in runs] == ["clone-advisories", "clone-malicious", "osv-sync", "publish"]
    failed = [r for r in runs if r.returncode != 0]
    assert not failed, [(r.id, r.stdout[-1500:], r.stderr[-1500:]) for r in failed]


def test_the_refresh_publishes_an_export_the_other_pipelines_read(tmp_path: Path) -> None:
    advisories, malicious = _sources(tmp_path)
    _refresh(tmp_path, "build-1", advisories, malicious)
    gcs = bucket(tmp_path, "org-osv")
    assert (gcs / "osv" / "LATEST").read_text().strip() == "gs://org-osv/osv/build-1"
    published = gcs / "osv" / "build-1"
    meta = json.loads((published / META_NAME).read_text())
    # The malicious-packages clone gave its PyPI report only (its sparse checkout, and
    # osv-sync's filter); the export's time is the clones' newest commits (just now).
    assert meta["records"] == 8 and meta["malicious"] == 1
    assert {s["kind"] for s in meta["sources"]} == {"git clone"} and meta["fetched"]

    for reader in READERS:
        workspace = tmp_path / f"reader-{reader.stem}"
        workspace.mkdir()
        values = {"PROJECT_ID": "test-project", "BUILD_ID": "b", "_OSV_BUCKET": "org-osv"}
        [run] = run_build(reader, workspace, tmp_path, values, only={"osv-data"})
        assert run.returncode == 0, run.stderr
        database = load_database(workspace / ".osv")
        check_fresh(database, workspace / ".osv", 2)  # the default limit: fresh
        assert [r["id"] for r in database.query("evil-pkg", "1.0")] == ["MAL-2000-1"]
        assert [r["id"] for r in database.query("requests", "2.30.0")] == ["PYSEC-2023-74"]

    # A later refresh moves LATEST; a reader then gets the new export.
    shutil.rmtree(advisories / "vulns" / "requests")
    subprocess.run(
        ["git", "-C", str(advisories), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
         "commit", "-q", "-am", "withdraw"],
        check=True, capture_output=True,
    )  # fmt: skip
    _refresh(tmp_path, "build-2", advisories, malicious)
    workspace = tmp_path / "reader-later"
    workspace.mkdir()
    values = {"PROJECT_ID": "test-project", "BUILD_ID": "c", "_OSV_BUCKET": "org-osv"}
    [run] = run_build(READERS[-1], workspace, tmp_path, values, only={"osv-data"})
    assert run.returncode == 0, run.stderr
    assert load_database(workspace / ".osv").query("requests", "2.30.0") == []


def test_without_a_bucket_the_readers_copy_nothing(tmp_path: Path) -> None:
    for reader in READERS:
        workspace = tmp_path / reader.stem
        workspace.mkdir()
        [run] = run_build(reader, workspace, tmp_path, {"PROJECT_ID": "p"}, only={"osv-data"})
        assert run.returncode == 0 and "no _OSV_BUCKET" in run.stdout
        assert not (workspace / ".osv").exists()


def test_a_bucket_with_no_export_fails_the_step(tmp_path: Path) -> None:
    values = {"PROJECT_ID": "p", "_OSV_BUCKET": "empty-bucket"}
    [run] = run_build(READERS[-1], tmp_path, tmp_path, values, only={"osv-data"})
    assert run.returncode != 0 and "No URLs matched" in run.stderr
