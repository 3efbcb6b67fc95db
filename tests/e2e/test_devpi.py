"""devpi-server as the private registry, by its own URL shape (upload and simple apart)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.consumers import installed, pip_install, uv_install
from tests.devpi import PASSWORD, USER, Devpi, delete_file, file_urls, set_volatile, start_devpi
from tests.universe import Server

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"


@pytest.fixture
def devpi(tmp_path: Path) -> Iterator[Devpi]:
    server = start_devpi(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def upload(allowlist: AllowlistDir) -> dict[str, object]:
    result = run_pipgate(
        "upload",
        "--allowlist",
        str(allowlist.path),
        "--cache",
        str(allowlist.path.parent / "cache"),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.mark.slow
def test_devpi_by_its_own_urls_sync_noop_one_more_and_pip_installs(
    allowlist: AllowlistDir,
    upstream: Server,
    devpi: Devpi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPGATE_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("PIPGATE_REGISTRY_PASSWORD", PASSWORD)
    registry = f"\n  upload: {devpi.upload}\n  simple: {devpi.simple}"
    allowlist.write("config.yaml", config_text(upstream.url, registry=registry))
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0

    first = upload(allowlist)
    assert (first["uploaded"], first["already_present"], first["verified"]) == (3, 0, 3)
    again = upload(allowlist)
    assert (again["uploaded"], again["already_present"], again["verified"]) == (0, 3, 3)

    allowlist.write("team.yaml", entries("chain-a==1.0", "cycle-x==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    more = upload(allowlist)
    assert (more["uploaded"], more["already_present"]) == (2, 3)  # only cycle-x and cycle-y

    rendered = run_pipgate(
        "render",
        "--allowlist",
        str(allowlist.path),
        "--cache",
        str(allowlist.path.parent / "cache"),
    )
    assert rendered.returncode == 0, rendered.stderr
    generated = allowlist.path.parent / "generated"
    pip_conf = generated / "pip.conf"
    assert f"index-url = {devpi.simple}\n" in pip_conf.read_text()
    assert f"{devpi.simple}" in (generated / "uv.toml").read_text()
    # pip and uv, each in a fresh environment, install the lock from devpi with the
    # generated pip.conf or uv.toml alone: devpi serves its index to anyone.
    lock = generated / "py311" / "requirements.txt"
    by_pip = pip_install(tmp_path / "pip-consumer", pip_conf, lock)
    assert by_pip.returncode == 0, installed(by_pip)
    assert "Successfully installed" in by_pip.stdout and "cycle-x" in installed(by_pip)
    by_uv = uv_install(tmp_path / "uv-consumer", generated / "uv.toml", lock)
    assert by_uv.returncode == 0, installed(by_uv)
    assert "+ cycle-x==1.0" in installed(by_uv)


@pytest.mark.slow
def test_devpi_verify_finds_a_deleted_file_sync_verify_restores_it_prune_removes(
    allowlist: AllowlistDir,
    upstream: Server,
    devpi: Devpi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPGATE_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("PIPGATE_REGISTRY_PASSWORD", PASSWORD)
    registry = f"\n  upload: {devpi.upload}\n  simple: {devpi.simple}\n  server: devpi"
    allowlist.write("config.yaml", config_text(upstream.url, registry=registry))
    allowlist.write("team.yaml", entries("chain-a==1.0", "cycle-x==1.0"))
    common = ("--allowlist", str(allowlist.path), "--cache", str(allowlist.path.parent / "c"))
    synced = run_pipgate("sync", *common, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert synced.returncode == 0, synced.stderr[-3000:]

    victim_name, victim_url = next(iter(file_urls(devpi, "chain-c").items()))
    delete_file(devpi, victim_url)  # behind pipgate's back, with devpi's own API
    drift = run_pipgate("verify", *common, "--format", "json")
    assert drift.returncode == 1, drift.stderr
    assert [m["file"] for m in json.loads(drift.stdout)["missing"]] == [victim_name]
    restored = run_pipgate(
        "sync",
        *common,
        "--database",
        str(OSV_DATA),
        "--max-data-age-days",
        "0",
        "--verify",
        "--format",
        "json",
    )
    assert restored.returncode == 0, restored.stderr[-3000:]
    assert victim_name in file_urls(devpi, "chain-c")
    assert run_pipgate("verify", *common).returncode == 0

    # cycle-x leaves the allowlist: its files are extra, and prune removes them alone.
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    extra = run_pipgate("verify", *common, "--format", "json")
    assert extra.returncode == 1
    unneeded = sorted(e["file"] for e in json.loads(extra.stdout)["extra"])
    assert unneeded and all(n.startswith("cycle_") for n in unneeded)
    prune = ("prune", *common, "--keep-commits", "0", "--format", "json")
    refused = run_pipgate(*prune, "--apply")  # the index is not volatile: devpi says no
    assert refused.returncode == 3 and "not volatile" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(file_urls(devpi, "cycle-x")) + sorted(file_urls(devpi, "cycle-y"))
    set_volatile(devpi, True)
    applied = run_pipgate(*prune, "--apply")
    assert applied.returncode == 0, applied.stderr
    assert sorted(r["file"] for r in json.loads(applied.stdout)["removed"]) == unneeded
    assert file_urls(devpi, "cycle-x") == {} and file_urls(devpi, "cycle-y") == {}
    assert victim_name in file_urls(devpi, "chain-c")
    assert run_pipgate("verify", *common).returncode == 0
