"""`pipgate sync` end to end: every step against real servers, with an offline OSV export."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.universe import YANKED, Server, UpstreamFront, running, start_pypiserver

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"
PACKAGES = ("diamond-top==1.0", "cycle-x==1.0", "chain-a==1.0")


@pytest.fixture
def own_upstream(universe_files: Path, tmp_path: Path) -> Iterator[Server]:
    """A modern upstream of this test's own, so that the test can stop it."""
    with running(start_pypiserver(universe_files, tmp_path / "logs")) as backend:
        front = UpstreamFront(backend, YANKED)
        try:
            yield front.server()
        finally:
            front.stop()


def sync(allowlist: AllowlistDir, *args: str) -> subprocess.CompletedProcess[str]:
    cache = allowlist.path.parent / "file-cache"
    return run_pipgate(
        "sync",
        "--allowlist",
        str(allowlist.path),
        "--cache",
        str(cache),
        "--format",
        "json",
        *args,
    )


def steps(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    document = json.loads(result.stdout)
    return {str(s["step"]): str(s["status"]) for s in document["steps"]}


def test_sync_end_to_end_then_nothing_to_do(allowlist: AllowlistDir, own_upstream: Server) -> None:
    allowlist.write("config.yaml", config_text(own_upstream.url))
    allowlist.write("team.yaml", entries(*PACKAGES))
    first = sync(allowlist, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    assert steps(first) == {
        "validate": "ran",
        "lock": "ran",
        "check": "ran",
        "audit": "ran",
        "publish": "ran",
        "render": "ran",
    }
    repo = allowlist.path.parent
    generated = repo / "generated"
    assert (generated / "sync-state.json").is_file()
    for name in ("pip.conf", "uv.toml"):  # beside the clone's own registry folder
        assert (repo / ".registry" / name).is_file(), name
        assert not (generated / name).exists(), name
    for target in ("py311", "py312"):
        for name in ("requirements.txt", "audit.json", "install-order.txt", "install-offline.sh"):
            assert (generated / target / name).is_file(), (target, name)
    registry_files = sorted(p.name for p in (repo / ".registry" / "files").iterdir())
    assert len(registry_files) == 9  # diamond 4, cycle 2, chain 3: pure wheels, both targets
    before = {p: p.read_bytes() for p in generated.rglob("*") if p.is_file()}
    # Nothing changed: no step runs, and the upstream is not even needed.
    own_upstream.stop()
    second = sync(allowlist, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert second.returncode == 0, second.stderr[-3000:]
    assert steps(second) == {
        "validate": "ran",
        "lock": "ran",
        "check": "skipped",
        "audit": "skipped",
        "publish": "skipped",
        "render": "skipped",
    }
    assert "nothing changed (inputs unchanged)" in second.stderr
    assert {p: p.read_bytes() for p in generated.rglob("*") if p.is_file()} == before
    # The embedded registry is local and not committed; a clone without it publishes again.
    shutil.rmtree(repo / ".registry")
    third = sync(allowlist, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert third.returncode == 0, third.stderr[-3000:]
    # Publish again, and render the pip.conf and uv.toml that lived beside the folder;
    # generated/ (committed) comes out byte for byte the same.
    assert steps(third)["publish"] == "ran" and steps(third)["render"] == "ran"
    assert (repo / ".registry" / "pip.conf").is_file()
    assert {
        p: p.read_bytes()
        for p in generated.rglob("*")
        if p.is_file() and p.name != "sync-state.json"
    } == {p: b for p, b in before.items() if p.name != "sync-state.json"}
    # ...from the file cache: the upstream is still stopped.
    assert sorted(p.name for p in (repo / ".registry" / "files").iterdir()) == registry_files


def test_sync_fails_closed_at_the_audit_without_a_vulnerability_service(
    allowlist: AllowlistDir, own_upstream: Server, tmp_path: Path
) -> None:
    allowlist.write(
        "config.yaml",
        config_text(own_upstream.url)
        + "  audit:\n    service: osv\n    url: http://127.0.0.1:9/v1/query\n",
    )
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    result = sync(allowlist)
    assert result.returncode == 3
    assert steps(result) == {
        "validate": "ran",
        "lock": "ran",
        "check": "ran",
        "audit": "failed",
    }
    assert "sync stopped at audit" in result.stderr
    assert "offline OSV export" in result.stderr and "--database" in result.stderr
    assert not (allowlist.path.parent / ".registry").exists()  # nothing published
    # Given an offline export, the next run takes up after the steps already done.
    resumed = sync(allowlist, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert steps(resumed)["check"] == "skipped"
    assert steps(resumed)["audit"] == "ran" and steps(resumed)["publish"] == "ran"


def test_sync_stops_at_the_policy_and_publishes_nothing(
    allowlist: AllowlistDir, own_upstream: Server
) -> None:
    allowlist.write("config.yaml", config_text(own_upstream.url, min_release_age_days=7))
    allowlist.write("team.yaml", entries("fresh-pkg==1.0"))
    result = sync(allowlist, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert result.returncode == 1
    assert steps(result)["check"] == "failed" and "audit" not in steps(result)
    assert "fresh-pkg==1.0 [cooldown]" in result.stderr
    assert not (allowlist.path.parent / ".registry").exists()


def test_sync_stops_at_a_known_vulnerability(allowlist: AllowlistDir, own_upstream: Server) -> None:
    allowlist.write("config.yaml", config_text(own_upstream.url))
    allowlist.write("team.yaml", entries("requests==2.30.0"))
    result = sync(allowlist, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert result.returncode == 1
    assert steps(result)["audit"] == "failed"
    assert "PYSEC-2023-74" in result.stderr
    assert not (allowlist.path.parent / ".registry").exists()


def test_text_output_names_each_step(allowlist: AllowlistDir, own_upstream: Server) -> None:
    allowlist.write("config.yaml", config_text(own_upstream.url))
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    cache = allowlist.path.parent / "file-cache"
    result = run_pipgate(
        "sync",
        "--allowlist",
        str(allowlist.path),
        "--cache",
        str(cache),
        "--database",
        str(OSV_DATA),
        "--max-data-age-days",
        "0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for step in ("validate", "lock", "check", "audit", "publish", "render"):
        assert f"sync: {step}" in result.stderr
    assert "verified by hash" in result.stdout
