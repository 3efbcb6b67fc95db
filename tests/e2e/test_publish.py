"""`pipgate download` and `pipgate upload` end to end, against real registries on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.universe import FaultyFront, Server, running, start_pypiserver

PACKAGES = ("diamond-top==1.0", "cycle-x==1.0", "multi-file==1.0")


def upload(allowlist: AllowlistDir, *args: str) -> subprocess.CompletedProcess[str]:
    # Each test its own file cache: what another test fetched must not count here.
    cache = allowlist.path.parent / "file-cache"
    return run_pipgate(
        "upload",
        "--allowlist",
        str(allowlist.path),
        "--format",
        "json",
        "--cache",
        str(cache),
        *args,
    )


def report(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def fetched(document: dict[str, object]) -> int:
    targets = document["downloaded"]
    assert isinstance(targets, list)
    return sum(int(t["fetched"]) for t in targets)


@pytest.fixture
def own_upstream(universe_files: Path, tmp_path: Path) -> Iterator[Server]:
    """An upstream of this test's own, so that a test can stop it."""
    with running(start_pypiserver(universe_files, tmp_path / "upstream-logs")) as server:
        yield server


@pytest.fixture
def to_registry(
    allowlist: AllowlistDir,
    own_upstream: Server,
    private_registry: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> AllowlistDir:
    assert private_registry.username and private_registry.password
    monkeypatch.setenv("PIPGATE_REGISTRY_USERNAME", private_registry.username)
    monkeypatch.setenv("PIPGATE_REGISTRY_PASSWORD", private_registry.password)
    allowlist.write("config.yaml", config_text(own_upstream.url, registry=private_registry.root))
    allowlist.write("team.yaml", entries(*PACKAGES))
    locked = run_pipgate("lock", "--allowlist", str(allowlist.path))
    assert locked.returncode == 0, locked.stdout + locked.stderr
    return allowlist


def test_first_sync_uploads_everything_then_nothing(
    to_registry: AllowlistDir, own_upstream: Server, private_registry: Server
) -> None:
    first = report(upload(to_registry))
    # diamond (4) + cycle (2) + one multi-file wheel per target (2)
    assert (first["files"], first["uploaded"], first["already_present"]) == (8, 8, 0)
    assert first["verified"] == 8
    assert sorted(p.name for p in private_registry.packages.iterdir()) == sorted(
        p.name for p in private_registry.packages.iterdir() if not p.name.startswith(".")
    )
    assert len(list(private_registry.packages.iterdir())) == 8
    # With nothing new, nothing moves, and upstream is not even asked: stop it.
    own_upstream.stop()
    second = report(upload(to_registry))
    assert (second["uploaded"], second["already_present"], fetched(second)) == (0, 8, 0)
    assert second["verified"] == 8


def test_one_new_package_moves_only_its_files(
    to_registry: AllowlistDir, private_registry: Server
) -> None:
    report(upload(to_registry))
    to_registry.write("more.yaml", entries("chain-a==1.0"))
    assert run_pipgate("lock", "--allowlist", str(to_registry.path)).returncode == 0
    after = report(upload(to_registry))
    # chain-a, chain-b, chain-c: pure wheels shared by both targets.
    assert after["uploaded"] == 3 and after["already_present"] == 8
    assert fetched(after) == 3  # the second target finds them in the cache by hash
    assert after["verified"] == 11


def test_wrong_hash_in_registry_fails_and_changes_nothing(
    to_registry: AllowlistDir, private_registry: Server
) -> None:
    report(upload(to_registry))
    victim = next(private_registry.packages.glob("cycle_x-*.whl"))
    victim.write_bytes(victim.read_bytes() + b"tampered")
    before = {p.name: p.read_bytes() for p in private_registry.packages.iterdir()}
    result = upload(to_registry)
    assert result.returncode == 3
    assert "holds cycle_x-1.0-py3-none-any.whl with sha256" in result.stdout + result.stderr
    assert {p.name: p.read_bytes() for p in private_registry.packages.iterdir()} == before


def test_verify_finds_a_deleted_file_and_sync_verify_restores_it(
    to_registry: AllowlistDir, private_registry: Server
) -> None:
    osv = Path(__file__).resolve().parent.parent / "data" / "osv"
    common = ("--allowlist", str(to_registry.path), "--cache", str(to_registry.path.parent / "c"))
    synced = run_pipgate("sync", *common, "--database", str(osv), "--max-data-age-days", "0")
    assert synced.returncode == 0, synced.stderr[-3000:]
    clean = run_pipgate("verify", *common, "--format", "json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["missing"] == []
    victim = next(private_registry.packages.glob("cycle_y-*.whl"))
    victim.unlink()  # deleted on the server, behind pipgate's back
    drift = run_pipgate("verify", *common, "--format", "json")
    assert drift.returncode == 1, drift.stderr
    assert [m["file"] for m in json.loads(drift.stdout)["missing"]] == [victim.name]
    # A plain sync trusts its record and skips publish; --verify asks the registry.
    restored = run_pipgate(
        "sync",
        *common,
        "--database",
        str(osv),
        "--max-data-age-days",
        "0",
        "--verify",
        "--format",
        "json",
    )
    assert restored.returncode == 0, restored.stderr[-3000:]
    steps = {s["step"]: s["status"] for s in json.loads(restored.stdout)["steps"]}
    assert steps["verify"] == "ran" and steps["publish"] == "ran"
    assert victim.is_file()
    assert run_pipgate("verify", *common).returncode == 0


def test_a_partial_file_left_in_the_registry_is_named_as_such(
    to_registry: AllowlistDir, private_registry: Server
) -> None:
    report(upload(to_registry))
    victim = next(private_registry.packages.glob("cycle_x-*.whl"))
    whole = victim.read_bytes()
    victim.write_bytes(whole[: len(whole) // 2])  # what a killed upload can leave
    result = upload(to_registry)
    assert result.returncode == 3
    said = result.stdout + result.stderr
    assert f"with {len(whole) // 2} bytes, but the locked file has {len(whole)}" in said
    assert "partial file" in said and "devpi remove" in said and "Traceback" not in said
    assert victim.read_bytes() == whole[: len(whole) // 2]  # never overwritten


@pytest.mark.slow
def test_faults_still_end_verified(
    to_registry: AllowlistDir, private_registry: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = FaultyFront(private_registry, ["503", "cut", "drop", "slow", "503"], delay=20)
    try:
        config = (to_registry.path / "config.yaml").read_text()
        to_registry.write("config.yaml", config.replace(private_registry.root, front.root))
        monkeypatch.setenv("PIPGATE_UPLOAD_TIMEOUT", "5")
        result = upload(to_registry, "--jobs", "2")
    finally:
        front.stop()
    document = report(result)
    assert document["verified"] == 8 and document["uploaded"] == 8
    assert {"503", "cut", "drop", "slow"} <= set(front.seen)
    assert len(list(private_registry.packages.iterdir())) == 8


@pytest.mark.slow
def test_killed_midway_then_finished_by_running_again(
    to_registry: AllowlistDir, private_registry: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = FaultyFront(private_registry, ["pass", "pass", "slow", "slow"], delay=60)
    try:
        config = (to_registry.path / "config.yaml").read_text()
        to_registry.write("config.yaml", config.replace(private_registry.root, front.root))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipgate",
                "upload",
                "--allowlist",
                str(to_registry.path),
                "--jobs",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while len(front.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(front.seen) >= 3, "the upload never got going"
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        partial = len(list(private_registry.packages.iterdir()))
        assert 2 <= partial < 8
        front.schedule.clear()
        document = report(upload(to_registry))
    finally:
        front.stop()
    assert document["verified"] == 8
    assert document["uploaded"] == 8 - int(document["already_present"])  # type: ignore[call-overload]
    assert int(document["already_present"]) >= 2  # type: ignore[call-overload]


def test_file_registry_serves_pip(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    allowlist.write("config.yaml", config_text(upstream.url))
    allowlist.write("team.yaml", entries(*PACKAGES))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    document = report(upload(allowlist))
    assert document["verified"] == 8
    registry = allowlist.path.parent / ".registry"
    page = (registry / "simple" / "multi-file" / "index.html").read_text()
    assert page.count("#sha256=") == 2
    assert (registry / "simple" / "index.html").read_text().count("<a href") == 8 - 1
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--dest",
            str(tmp_path / "d"),
            "--index-url",
            (registry / "simple").as_uri() + "/",
            "diamond-top==1.0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_download_hash_mismatch_keeps_nothing(
    allowlist: AllowlistDir, upstream: Server, universe_files: Path, tmp_path: Path
) -> None:
    allowlist.write("config.yaml", config_text(upstream.url))
    allowlist.write("team.yaml", entries("chain-c==1.0"))
    assert (
        run_pipgate("lock", "--allowlist", str(allowlist.path), "--target", "py311").returncode == 0
    )
    lock = allowlist.path.parent / "generated" / "py311" / "requirements.txt"
    text = lock.read_text()
    lock.write_text(text.replace(text.split("--hash=sha256:")[1][:64], "0" * 64))
    cache = tmp_path / "cache"
    result = run_pipgate(
        "download", "--allowlist", str(allowlist.path), "--target", "py311", "--cache", str(cache)
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    kept = [p for p in cache.rglob("*") if p.is_file() and "manifests" not in p.parts]
    assert kept == []
    shutil.rmtree(cache, ignore_errors=True)


def test_wheel_twine_refuses_still_reaches_the_registry(
    allowlist: AllowlistDir,
    own_upstream: Server,
    private_registry: Server,
    universe_files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheel = universe_files / "old_metadata-1.0-py3-none-any.whl"
    refused = subprocess.run(
        [sys.executable, "-m", "twine", "check", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0, "this twine accepts Metadata-Version 2.0: test is moot"
    assert private_registry.username and private_registry.password
    monkeypatch.setenv("PIPGATE_REGISTRY_USERNAME", private_registry.username)
    monkeypatch.setenv("PIPGATE_REGISTRY_PASSWORD", private_registry.password)
    allowlist.write("config.yaml", config_text(own_upstream.url, registry=private_registry.root))
    allowlist.write("team.yaml", entries("old-metadata==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    document = report(upload(allowlist))
    assert (document["uploaded"], document["verified"]) == (1, 1)
    stored = private_registry.packages / wheel.name
    assert stored.read_bytes() == wheel.read_bytes()


KEYRING_BACKEND = '''
import keyring.backend
import keyring.credentials


class Keyring(keyring.backend.KeyringBackend):
    """A keyring that knows one registry's credential, for the tests."""

    priority = 10

    def get_credential(self, service, username):
        if service.startswith({root!r}) or service == {netloc!r}:
            return keyring.credentials.SimpleCredential({username!r}, {password!r})
        return None

    def get_password(self, service, username):
        found = self.get_credential(service, username)
        return found.password if found is not None else None

    def set_password(self, service, username, password):
        raise NotImplementedError

    def delete_password(self, service, username):
        raise NotImplementedError
'''


def test_registry_credentials_from_keyring(
    allowlist: AllowlistDir,
    own_upstream: Server,
    private_registry: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowlist.write("config.yaml", config_text(own_upstream.url, registry=private_registry.root))
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    # No credential anywhere: the registry refuses, and the message says where they go.
    refused = upload(allowlist, "--target", "py311")
    assert refused.returncode == 3
    assert "keyring" in refused.stderr and "Traceback" not in refused.stderr
    folder = tmp_path / "keyring-backend"
    folder.mkdir()
    (folder / "testkeyring.py").write_text(
        KEYRING_BACKEND.format(
            root=private_registry.root,
            netloc=private_registry.root.split("/")[2],
            username=private_registry.username,
            password=private_registry.password,
        )
    )
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "testkeyring.Keyring")
    document = report(upload(allowlist, "--target", "py311"))
    assert (document["uploaded"], document["verified"]) == (3, 3)
    assert len(list(private_registry.packages.iterdir())) == 3


def test_download_counts_files_then_needs_no_index(
    allowlist: AllowlistDir, own_upstream: Server, tmp_path: Path
) -> None:
    allowlist.write("config.yaml", config_text(own_upstream.url))
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    args = ("download", "--allowlist", str(allowlist.path), "--cache", str(tmp_path / "c"))
    first = run_pipgate(*args, "--target", "py311")
    assert first.returncode == 0, first.stderr
    assert "py311: [3/3] chain_" in first.stderr  # a counter per file pip fetches
    assert "py311: 3 files, 3 fetched" in first.stdout
    own_upstream.stop()
    second = run_pipgate(*args)  # both targets; py312 needs the same pure wheels
    assert second.returncode == 0, second.stderr
    assert "py311: 3 files, 0 fetched (0.0 MB), 3 already cached" in second.stdout
    assert "py312: 3 files, 0 fetched (0.0 MB), 3 already cached" in second.stdout


def test_download_takes_wheels_for_older_glibc_too(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    # A manylinux_2_28 machine installs manylinux_2_17 wheels; the lock knows it, and pip
    # download must be told, since pip expands only the legacy manylinux aliases itself.
    config = config_text(upstream.url).replace("manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
    allowlist.write("config.yaml", config)
    allowlist.write("team.yaml", entries("multi-file==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    result = run_pipgate(
        "download", "--allowlist", str(allowlist.path), "--cache", str(tmp_path / "c")
    )
    assert result.returncode == 0, result.stderr
    cached = sorted(p.name for p in (tmp_path / "c").rglob("*.whl"))
    assert cached == [
        "multi_file-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "multi_file-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
    ]
