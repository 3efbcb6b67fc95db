"""Downloads: every file of the lock, by its hash, bounded, the same on every machine."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, entries
from tests.hostile import HostileIndex, hostile_index, larger_than_published
from tests.universe import Dist, build_wheel

MULTI = Dist("zq-multi", "1.0")
TAGS = ("py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "cp311-abi3-manylinux_2_28_x86_64")
WINDOWS = "cp311-cp311-win_amd64"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[HostileIndex]:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for tag in (*TAGS, WINDOWS):
        build_wheel(MULTI, tag, folder)
    with hostile_index(folder) as served:
        yield served


def config(upstream: str) -> str:
    return (
        "registry: file://.registry\n"
        f"upstream: {upstream}\n"
        "targets:\n"
        "  - name: py311\n"
        '    python: "3.11"\n'
        "    platforms: [manylinux_2_28_x86_64]\n"
        "policy:\n"
        "  min_release_age_days: 0\n"
    )


def pipgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipgate", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def locked(allowlist: AllowlistDir, index: HostileIndex) -> AllowlistDir:
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-multi==1.0"))
    result = pipgate("lock", "--allowlist", str(allowlist.path))
    assert result.returncode == 0, result.stdout + result.stderr
    return allowlist


def test_the_registry_holds_every_file_the_target_can_install(
    locked: AllowlistDir, tmp_path: Path
) -> None:
    result = pipgate(
        "upload",
        "--allowlist",
        str(locked.path),
        "--cache",
        str(tmp_path / "c"),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    held = sorted(p.name for p in (locked.path.parent / ".registry" / "files").iterdir())
    # All three wheels a manylinux_2_28 CPython 3.11 installs; not the Windows one.
    assert held == sorted(f"zq_multi-1.0-{tag}.whl" for tag in TAGS)
    assert json.loads(result.stdout)["verified"] == 3


def test_the_same_files_and_install_order_from_any_cache(
    locked: AllowlistDir, tmp_path: Path
) -> None:
    outputs = []
    for cache in ("first-cache", "second-cache"):
        result = pipgate(
            "render", "--allowlist", str(locked.path), "--cache", str(tmp_path / cache)
        )
        assert result.returncode == 0, result.stderr
        order = locked.path.parent / "generated" / "py311" / "install-order.txt"
        cached = sorted(p.name for p in (tmp_path / cache).rglob("*.whl"))
        outputs.append((order.read_text(), cached))
    assert outputs[0] == outputs[1]
    order_text, cached = outputs[0]
    assert len(cached) == 3
    # The file the target prefers, as pip ranks tags: the CPython 3.11 wheel for the newest
    # glibc the target has, before abi3, before the pure wheel.
    assert "zq_multi-1.0-cp311-abi3-manylinux_2_28_x86_64.whl" not in order_text
    assert "zq_multi-1.0-cp311-cp311-manylinux_2_17_x86_64.whl" in order_text


def test_a_download_larger_than_published_is_cut_off_and_keeps_nothing(
    locked: AllowlistDir, index: HostileIndex, tmp_path: Path
) -> None:
    name = "zq_multi-1.0-py3-none-any.whl"
    real = index.folder / name
    index.routes[f"/files/{name}"] = larger_than_published(real.read_bytes(), 256 << 20)
    cache = tmp_path / "cache"
    result = pipgate("download", "--allowlist", str(locked.path), "--cache", str(cache))
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"sent more than {real.stat().st_size} bytes for one file" in result.stderr
    assert name not in {p.name for p in cache.rglob("*")}
    assert not [p for p in cache.iterdir() if p.name.startswith(".download-")]


def test_a_file_the_index_replaced_under_its_name_is_refused(
    locked: AllowlistDir, index: HostileIndex, tmp_path: Path
) -> None:
    name = "zq_multi-1.0-py3-none-any.whl"
    tampered = (index.folder / name).read_bytes() + b"tampered"
    (index.folder / name).write_bytes(tampered)
    result = pipgate("download", "--allowlist", str(locked.path), "--cache", str(tmp_path / "c"))
    assert result.returncode == 3
    assert "lists no file of zq-multi==1.0 with the locked sha256" in result.stderr
    cached = {p.name for p in (tmp_path / "c").rglob("*.whl")}
    assert name not in cached  # the other locked files may be there; this one never
    assert hashlib.sha256(tampered).hexdigest() not in {
        p.parent.name for p in (tmp_path / "c").rglob("*.whl")
    }
