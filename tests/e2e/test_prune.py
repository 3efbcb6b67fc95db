"""`pipgate prune` end to end: what no lock needs goes, what a recent commit's lock needs
stays, and a registry that deletes whole releases never loses a needed file."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.consumers import installed, pip_install, uv_install
from tests.universe import Server, running, start_pypiserver, write_htpasswd

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", message)


def prune(allowlist: AllowlistDir, *args: str) -> tuple[int, dict[str, object], str]:
    result = run_pipgate("prune", "--allowlist", str(allowlist.path), "--format", "json", *args)
    try:
        document = json.loads(result.stdout)
    except ValueError:
        document = {}
    return result.returncode, document, result.stdout + result.stderr


def files(document: dict[str, object], key: str) -> list[str]:
    items = document[key]
    assert isinstance(items, list)
    return sorted(str(i["file"]) for i in items)


@pytest.fixture
def repo_with_history(allowlist: AllowlistDir, upstream: Server) -> AllowlistDir:
    """The embedded registry holding chain-a and cycle-x, whose locks are committed; then
    cycle-x leaves the allowlist and the new locks are not committed yet."""
    repo = allowlist.path.parent
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text(".registry/\n")
    allowlist.write("config.yaml", config_text(upstream.url))
    allowlist.write("team.yaml", entries("chain-a==1.0", "cycle-x==1.0"))
    for command in ("lock", "upload"):
        result = run_pipgate(command, "--allowlist", str(allowlist.path))
        assert result.returncode == 0, result.stdout + result.stderr
    commit_all(repo, "chain-a and cycle-x")
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    return allowlist


def test_prune_keeps_what_a_recent_commit_needs_then_removes_it(
    repo_with_history: AllowlistDir,
) -> None:
    allowlist = repo_with_history
    held = allowlist.path.parent / ".registry" / "files"
    before = sorted(p.name for p in held.iterdir())
    cycle = [n for n in before if n.startswith("cycle_")]
    assert cycle
    code, kept, said = prune(allowlist, "--apply")
    assert code == 0, said
    # The committed locks still name cycle-x: a rollback to them must still install.
    assert files(kept, "retained") == cycle and files(kept, "removed") == []
    assert kept["commits_kept"] == 1
    assert sorted(p.name for p in held.iterdir()) == before
    code, dry, said = prune(allowlist, "--keep-commits", "0")
    assert code == 0, said
    assert files(dry, "would_remove") == cycle
    assert sorted(p.name for p in held.iterdir()) == before  # a dry run by default
    code, applied, said = prune(allowlist, "--keep-commits", "0", "--apply")
    assert code == 0, said
    assert files(applied, "removed") == cycle
    assert sorted(p.name for p in held.iterdir()) == sorted(set(before) - set(cycle))
    root = (allowlist.path.parent / ".registry" / "simple" / "index.html").read_text()
    assert "cycle-x" not in root and "chain-a" in root
    assert not (allowlist.path.parent / ".registry" / "simple" / "cycle-x").exists()
    verify = run_pipgate("verify", "--allowlist", str(allowlist.path))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_prune_refuses_a_history_it_cannot_read(
    repo_with_history: AllowlistDir, tmp_path: Path
) -> None:
    allowlist = repo_with_history
    repo = allowlist.path.parent
    commit_all(repo, "chain-a alone")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", repo.as_uri(), str(shallow)],
        check=True,
        capture_output=True,
    )
    (shallow / ".registry").symlink_to(repo / ".registry")
    held = sorted(p.name for p in (repo / ".registry" / "files").iterdir())
    result = run_pipgate("prune", "--allowlist", str(shallow / "allowlist"), "--apply")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "shallow" in result.stderr and "--unshallow" in result.stderr
    assert "Traceback" not in result.stderr
    outside = tmp_path / "no-git"
    outside.mkdir()
    shutil.copytree(allowlist.path, outside / "allowlist")
    shutil.copytree(repo / "generated", outside / "generated")
    (outside / ".registry").symlink_to(repo / ".registry")
    result = run_pipgate("prune", "--allowlist", str(outside / "allowlist"), "--apply")
    assert result.returncode == 2 and "--keep-commits 0" in result.stderr, result.stderr
    assert sorted(p.name for p in (repo / ".registry" / "files").iterdir()) == held


@pytest.fixture
def open_pypiserver(tmp_path: Path) -> Iterator[Server]:
    """pypiserver as documented for pipgate: no fallback, a password on uploads and
    removals (update), reads open to the consumers."""
    packages = tmp_path / "registry-packages"
    packages.mkdir()
    username, password = "pipgate-ci", "registry-secret-value"
    htpasswd = write_htpasswd(tmp_path / "htpasswd", username, password)
    server = start_pypiserver(
        packages,
        tmp_path / "logs",
        htpasswd=htpasswd,
        username=username,
        password=password,
        authenticate="update",
    )
    with running(server):
        yield server


@pytest.mark.slow
def test_pypiserver_sync_installs_with_pip_and_uv_and_prunes_a_release(
    allowlist: AllowlistDir,
    upstream: Server,
    open_pypiserver: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert open_pypiserver.username and open_pypiserver.password
    monkeypatch.setenv("PIPGATE_REGISTRY_USERNAME", open_pypiserver.username)
    monkeypatch.setenv("PIPGATE_REGISTRY_PASSWORD", open_pypiserver.password)
    registry = f"\n  upload: {open_pypiserver.root}\n  server: pypiserver"
    allowlist.write("config.yaml", config_text(upstream.url, registry=registry))
    allowlist.write("team.yaml", entries("chain-a==1.0", "cycle-x==1.0"))
    common = ("--allowlist", str(allowlist.path), "--cache", str(allowlist.path.parent / "c"))
    synced = run_pipgate(
        "sync", *common, "--database", str(OSV_DATA), "--max-data-age-days", "0", "--format", "json"
    )
    assert synced.returncode == 0, synced.stderr[-3000:]
    generated = allowlist.path.parent / "generated"
    assert f"index-url = {open_pypiserver.url}\n" in (generated / "pip.conf").read_text()
    lock = generated / "py311" / "requirements.txt"
    by_pip = pip_install(tmp_path / "pip-consumer", generated / "pip.conf", lock)
    assert by_pip.returncode == 0, installed(by_pip)
    assert "cycle-x" in installed(by_pip)
    by_uv = uv_install(tmp_path / "uv-consumer", generated / "uv.toml", lock)
    assert by_uv.returncode == 0, installed(by_uv)
    assert "+ cycle-x==1.0" in installed(by_uv)

    before = sorted(p.name for p in open_pypiserver.packages.iterdir())
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    assert run_pipgate("lock", "--allowlist", str(allowlist.path)).returncode == 0
    code, applied, said = prune(allowlist, "--keep-commits", "0", "--apply")
    assert code == 0, said
    assert applied["removal"] == "release"
    gone = files(applied, "removed")
    assert gone and all(n.startswith("cycle_") for n in gone)
    assert sorted(p.name for p in open_pypiserver.packages.iterdir()) == sorted(
        set(before) - set(gone)
    )
    verify = run_pipgate("verify", *common)
    assert verify.returncode == 0, verify.stdout + verify.stderr
