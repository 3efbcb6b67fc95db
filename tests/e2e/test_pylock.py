"""generated/<target>/pylock.toml (PEP 751): made by the render step from the lock and the
private registry, installed by the real uv and the pinned pip into fresh virtual
environments, and audited by the pinned pip-audit."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from pipgate.lock import read_lock
from pipgate.problems import display_path
from pipgate.runner import uv_binary
from tests.conftest import AllowlistDir, config_text, entries, isolate, osv_serve, run_pipgate
from tests.e2e.test_render import consumer_env, ok, venv
from tests.universe import Server

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"
PACKAGES = (
    "diamond-top==1.0",
    "cycle-x==1.0",
    "marker-pkg==1.0",
    "extra-host[fancy]==1.0",
    "multi-file==1.0",
    "requests==2.30.0",
)


def config(upstream: Server) -> str:
    return f"""\
registry: file://.registry
upstream: {upstream.url}
targets:
  - name: py311
    python: "3.11"
    platforms: [manylinux_2_17_x86_64]
  - name: mixed
    python: "3.11"
    platforms: [manylinux_2_17_x86_64, win_amd64]
policy:
  sdists: deny
  transitive: auto
  min_release_age_days: 0
lock:
  engine: uv
"""


@pytest.fixture(scope="module")
def published(
    upstream: Server, tmp_path_factory: pytest.TempPathFactory, tool_cache: Path
) -> AllowlistDir:
    """The universe locked (a Linux target and a Linux-and-Windows one), uploaded to the
    embedded registry and rendered, once for the module."""
    root = tmp_path_factory.mktemp("pylock")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch, tmp_path_factory.mktemp("home"), tool_cache)
        allowlist = AllowlistDir(root / "repo" / "allowlist")
        allowlist.write("config.yaml", config(upstream))
        # marker-pkg resolves differently on Windows: for the Linux target only
        allowlist.write("team.yaml", entries(*PACKAGES, marker_pkg__targets="[py311]"))
        cache = ("--cache", str(root / "cache"))
        ok(run_pipgate("lock", "--allowlist", str(allowlist.path)))
        ok(run_pipgate("upload", "--allowlist", str(allowlist.path), *cache))
        ok(run_pipgate("render", "--allowlist", str(allowlist.path), *cache))
    return allowlist


def folder(allowlist: AllowlistDir, target: str) -> Path:
    return allowlist.path.parent / "generated" / target


def document(allowlist: AllowlistDir, target: str) -> dict[str, object]:
    return tomllib.loads((folder(allowlist, target) / "pylock.toml").read_text())


def installed(python: Path) -> dict[str, str]:
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        p["name"].lower().replace("_", "-"): p["version"]
        for p in json.loads(listed.stdout)
        if p["name"] not in ("pip", "setuptools")
    }


def pins(allowlist: AllowlistDir, target: str) -> dict[str, str]:
    lock = read_lock(folder(allowlist, target) / "requirements.txt", target)
    assert lock is not None
    return {str(p.name): str(p.version) for p in lock.packages}


def test_pylock_is_pep_751_and_holds_every_locked_file(published: AllowlistDir) -> None:
    for target in ("py311", "mixed"):
        data = document(published, target)
        Pylock.from_dict(data)  # packaging's own validation of PEP 751
        assert data["created-by"] == "pipgate"
        assert data["requires-python"] == "==3.11.*"
        lock = read_lock(folder(published, target) / "requirements.txt", target)
        assert lock is not None
        packages = data["packages"]
        assert isinstance(packages, list)
        assert {p["name"]: p["version"] for p in packages} == pins(published, target)
        for package in packages:
            locked = lock.package(package["name"])
            assert locked is not None
            files = [
                *package.get("wheels", []),
                *([package["sdist"]] if "sdist" in package else []),
            ]
            assert {f["hashes"]["sha256"] for f in files} == set(locked.hashes)
            for item in files:
                # the embedded registry's file, named relative to the lock's folder
                path = (folder(published, target) / item["path"]).resolve()
                assert path.parent == (published.path.parent / ".registry" / "files").resolve()
                data_bytes = path.read_bytes()
                assert hashlib.sha256(data_bytes).hexdigest() == item["hashes"]["sha256"]
                assert len(data_bytes) == item["size"]
                assert path.name == item["name"]
    # Windows and Linux in one lock: an environment each, and each platform's wheel.
    mixed = document(published, "mixed")
    assert mixed["environments"] == [
        "sys_platform == 'linux' and platform_machine == 'x86_64' and "
        "implementation_name == 'cpython' and python_version == '3.11'",
        "sys_platform == 'win32' and platform_machine == 'AMD64' and "
        "implementation_name == 'cpython' and python_version == '3.11'",
    ]
    packages = mixed["packages"]
    assert isinstance(packages, list)
    by_name = {p["name"]: p for p in packages}
    wheels = sorted(w["name"] for w in by_name["multi-file"]["wheels"])
    assert len(wheels) == 2, wheels  # the Linux and the Windows wheel for Python 3.11
    assert any("win_amd64" in w for w in wheels)


def test_pylock_is_rendered_again_byte_for_byte(published: AllowlistDir, tmp_path: Path) -> None:
    path = folder(published, "py311") / "pylock.toml"
    before = path.read_bytes()
    path.unlink()
    result = ok(run_pipgate("render", "--allowlist", str(published.path), "--format", "json"))
    assert path.read_bytes() == before
    written = {Path(w["path"]).resolve(): w["changed"] for w in json.loads(result.stdout)["files"]}
    assert written[path.resolve()] is True
    assert written[(folder(published, "mixed") / "pylock.toml").resolve()] is False


@pytest.mark.slow
@pytest.mark.parametrize("target", ["py311", "mixed"])
def test_uv_pip_sync_installs_the_pylock_into_a_fresh_environment(
    published: AllowlistDir, tmp_path: Path, target: str
) -> None:
    python = venv("3.11", tmp_path / "env")
    env = consumer_env(UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"))
    ok(
        subprocess.run(
            [uv_binary(), "pip", "sync", "--offline", "--python", str(python), "pylock.toml"],
            cwd=folder(published, target),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    )
    assert installed(python) == pins(published, target)
    ok(
        subprocess.run(
            [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
        )
    )


@pytest.mark.slow
def test_the_pinned_pip_installs_the_pylock(published: AllowlistDir, tmp_path: Path) -> None:
    python = venv("3.11", tmp_path / "env")
    pylock = folder(published, "py311") / "pylock.toml"
    # The pinned pip (the tool's own, 26.1 or later reads pylock.toml) installing into the
    # fresh environment, with no index at all.
    result = ok(
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "--python", str(python), "install"),
                *("--no-index", "--disable-pip-version-check", "-r", str(pylock)),
            ],
            capture_output=True,
            text=True,
            env=consumer_env(),
            check=False,
        )
    )
    assert "Looking in indexes" not in result.stdout
    assert installed(python) == pins(published, "py311")
    ok(
        subprocess.run(
            [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
        )
    )


@pytest.mark.slow
def test_the_pinned_pip_audit_audits_the_pylock(published: AllowlistDir) -> None:
    with osv_serve(OSV_DATA) as line:
        url = line.rsplit(" ", 1)[-1].strip()
        audit = subprocess.run(
            [
                str(Path(sys.executable).parent / "pip-audit"),
                "--locked",
                "--vulnerability-service",
                "osv",
                "--osv-url",
                url,
                "--format",
                "json",
                "--progress-spinner",
                "off",
                str(folder(published, "py311")),
            ],
            capture_output=True,
            text=True,
            env=consumer_env(),
            check=False,
        )
    assert audit.returncode == 1, audit.stdout + audit.stderr  # requests 2.30.0 is known bad
    found = {d["name"]: d for d in json.loads(audit.stdout)["dependencies"]}
    assert set(found) == set(pins(published, "py311"))
    assert {d["version"] for d in found.values()} == set(pins(published, "py311").values())
    assert found["requests"]["vulns"], found["requests"]
    assert not found["diamond-top"]["vulns"]


def test_render_before_publishing_writes_no_pylock_and_removes_a_stale_one(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    allowlist.write("config.yaml", config_text(upstream.url))
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    at = ("--allowlist", str(allowlist.path), "--cache", str(tmp_path / "cache"))
    pylock = allowlist.path.parent / "generated" / "py311" / "pylock.toml"
    ok(run_pipgate("lock", *at[:2]))
    early = ok(run_pipgate("render", *at, "--format", "json"))
    assert {"target": "py311", "missing_files": 3} in json.loads(early.stdout)["unpublished"]
    assert not pylock.exists()
    assert (pylock.parent / "install-order.txt").is_file()  # the rest is rendered
    ok(run_pipgate("upload", *at))
    ok(run_pipgate("render", *at))
    assert pylock.is_file()
    # A new lock, not published yet: the pylock.toml of the old one goes, and says so.
    allowlist.write("team.yaml", entries("chain-a==1.0", "diamond-top==1.0"))
    ok(run_pipgate("lock", *at[:2]))
    later = ok(run_pipgate("render", *at))
    assert not pylock.exists()
    assert "py311: pylock.toml not written: the registry does not hold 4 of its" in later.stdout
    removed = [line for line in later.stdout.splitlines() if line.startswith("removed ")]
    assert removed == [f"removed {display_path(p)}" for p in sorted(later_locks(pylock))]


def later_locks(pylock: Path) -> list[Path]:
    """The pylock.toml of each target (py311, py312) beside the one given."""
    return [pylock.parent.parent / target / "pylock.toml" for target in ("py311", "py312")]


def test_a_shared_embedded_registry_is_named_by_absolute_paths_and_its_index(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-registry"
    allowlist.write("config.yaml", config_text(upstream.url, registry=shared.as_uri()))
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    at = ("--allowlist", str(allowlist.path), "--cache", str(tmp_path / "cache"))
    ok(run_pipgate("lock", *at[:2]))
    ok(run_pipgate("upload", *at))
    ok(run_pipgate("render", *at))
    data = document(allowlist, "py311")
    Pylock.from_dict(data)
    packages = data["packages"]
    assert isinstance(packages, list) and len(packages) == 3
    for package in packages:
        assert package["index"] == (shared / "simple").as_uri() + "/"
        [wheel] = package["wheels"]
        assert Path(wheel["path"]).is_absolute()
        assert Path(wheel["path"]) == shared / "files" / wheel["name"]
