"""What consumers use, end to end: pip.conf, install-order manifests, offline installers,
bundles and the Composer pip.conf, with real pip in fresh virtual environments."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipgate.toolenv import find_interpreter
from tests.conftest import AllowlistDir, config_text, entries, isolate, run_pipgate
from tests.universe import Server

PACKAGES = (
    "diamond-top==1.0",
    "cycle-x==1.0",
    "marker-pkg==1.0",
    "extra-host[fancy]==1.0",
    "multi-file==1.0",
    "sdist-only==1.0",
)
BOOTSTRAP = """\
bootstrap:
  file: boot.yaml
  targets: [py311]
"""


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def venv(python: str, folder: Path) -> Path:
    """A fresh virtual environment (with pip, offline: ensurepip) for Python ``python``."""
    interpreter = find_interpreter(python)
    assert interpreter is not None, f"Python {python} is needed by this test"
    subprocess.run([str(interpreter), "-m", "venv", str(folder)], check=True)
    return folder / "bin" / "python"


def consumer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def synced(
    upstream: Server, tmp_path_factory: pytest.TempPathFactory, tool_cache: Path
) -> AllowlistDir:
    """The test universe locked, published to the embedded file registry, and rendered:
    once for the module (the tests only read it, or put back what they change)."""
    root = tmp_path_factory.mktemp("render")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch, tmp_path_factory.mktemp("home"), tool_cache)
        allowlist = AllowlistDir(root / "repo" / "allowlist")
        allowlist.write("config.yaml", config_text(upstream.url) + BOOTSTRAP)
        allowlist.write("team.yaml", entries(*PACKAGES, sdist_only__sdist="true"))
        allowlist.write("boot.yaml", entries("chain-a==1.0"))
        ok(run_pipgate("lock", "--allowlist", str(allowlist.path)))
        cache = ("--cache", str(root / "cache"))
        ok(run_pipgate("upload", "--allowlist", str(allowlist.path), *cache))
        ok(run_pipgate("render", "--allowlist", str(allowlist.path), *cache))
    return allowlist


def generated(allowlist: AllowlistDir) -> Path:
    return allowlist.path.parent / "generated"


def make_bundle(allowlist: AllowlistDir, target: str, tmp_path: Path) -> Path:
    """``pipgate bundle`` of one target into a folder."""
    bundle = tmp_path / "bundle"
    ok(
        run_pipgate(
            "bundle",
            "--allowlist",
            str(allowlist.path),
            "--target",
            target,
            "--output",
            str(bundle),
            "--cache",
            str(tmp_path / "cache"),
        )
    )
    return bundle


def manifest_lines(allowlist: AllowlistDir, target: str) -> list[str]:
    text = (generated(allowlist) / target / "install-order.txt").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.slow
def test_pip_conf_alone_installs_every_locked_package_and_nothing_else(
    synced: AllowlistDir, upstream: Server, universe_files: Path, tmp_path: Path
) -> None:
    # A relative file:// registry is each clone's own folder: its pip.conf lies beside it,
    # and generated/ (committed) names no machine's folder.
    pip_conf = synced.path.parent / ".registry" / "pip.conf"
    assert not (generated(synced) / "pip.conf").exists()
    text = pip_conf.read_text()
    registry = (synced.path.parent / ".registry" / "simple").as_uri() + "/"
    assert f"index-url = {registry}\n" in text
    python = venv("3.11", tmp_path / "env")
    # A site-wide pip.conf that adds the upstream index and a find-links folder, as a
    # machine may have: the generated file must shut both out.
    (tmp_path / "env" / "pip.conf").write_text(
        f"[global]\nextra-index-url = {upstream.url}\nfind-links = {universe_files}\n"
    )
    env = consumer_env(PIP_CONFIG_FILE=str(pip_conf))
    lock = generated(synced) / "py311" / "requirements.txt"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-v", "--require-hashes", "-r", str(lock)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert f"Looking in indexes: {registry}\n" in installed.stdout
    assert "Looking in links" not in installed.stdout
    assert upstream.url not in installed.stdout
    check = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout
    # chain-c is upstream, but not approved: not installable.
    refused = subprocess.run(
        [str(python), "-m", "pip", "install", "conflict-shared==1.0"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert refused.returncode != 0
    assert "No matching distribution found for conflict-shared" in refused.stderr


def test_install_order_is_topological_with_cycles_grouped(synced: AllowlistDir) -> None:
    lines = manifest_lines(synced, "py311")
    position = {
        item.split("-", 1)[0]: number
        for number, line in enumerate(lines)
        for item in line.split()
        if not item.startswith("sha256=")
    }
    assert position["diamond_base"] < position["diamond_left"] < position["diamond_top"]
    assert position["diamond_right"] < position["diamond_top"]
    assert position["chain_c"] < position["chain_b"] < position["chain_a"]
    assert position["extra_dep"] < position["extra_host"]  # the extra the entry asks for
    assert position["cycle_x"] == position["cycle_y"]  # one line: one pip call
    assert position["old_py_dep"] < position["marker_pkg"]
    assert "new_py_dep" not in position and "windows_only_dep" not in position
    cycle = next(line for line in lines if "cycle_x" in line).split()
    assert len(cycle) == 4 and cycle[1].startswith("sha256=") and len(cycle[1]) == 71


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        ("py311", "3.11", "old_py_dep", "new_py_dep"),
        ("py312", "3.12", "new_py_dep", "old_py_dep"),
    ],
)
def test_manifest_installs_line_by_line_with_no_index(
    synced: AllowlistDir, tmp_path: Path, case: tuple[str, str, str, str]
) -> None:
    target, python, present, absent = case
    bundle = make_bundle(synced, target, tmp_path)
    lines = manifest_lines(synced, target)
    assert any(present in line for line in lines) and not any(absent in line for line in lines)
    interpreter = venv(python, tmp_path / "env")
    env = consumer_env(PIP_CONFIG_FILE=os.devnull)
    for line in lines:
        files = [str(bundle / "files" / item) for item in line.split()[::2]]
        step = subprocess.run(
            [str(interpreter), "-m", "pip", "install", "--no-deps", "--no-index", *files],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert step.returncode == 0, f"{line}\n{step.stdout[-2000:]}{step.stderr[-2000:]}"
        check = subprocess.run(
            [str(interpreter), "-m", "pip", "check"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        # After each line, everything installed so far has what it needs.
        assert check.returncode == 0, f"after {line}: {check.stdout}"
    # The offline installer of the bundle, in another fresh environment: one pip call
    # for the wheels, the sdist built after them, then pip check.
    other = venv(python, tmp_path / "env2")
    script = ok(
        subprocess.run(
            ["sh", str(bundle / "install-offline.sh")],
            capture_output=True,
            text=True,
            env=consumer_env(PIP_CONFIG_FILE=os.devnull, PYTHON=str(other)),
            check=False,
        )
    )
    assert "No broken requirements found" in script.stdout
    listed = subprocess.run(
        [str(other), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    names = {p["name"].replace("-", "_") for p in json.loads(listed.stdout)}
    assert {present, "sdist_only", "cycle_x", "cycle_y"} <= names and absent not in names


@pytest.mark.slow
def test_offline_installer_refuses_a_tampered_file(synced: AllowlistDir, tmp_path: Path) -> None:
    bundle = make_bundle(synced, "py311", tmp_path)
    victim = next((bundle / "files").glob("chain_c-*.whl"))
    victim.write_bytes(victim.read_bytes() + b"\0")
    interpreter = venv("3.11", tmp_path / "env")
    result = subprocess.run(
        ["sh", str(bundle / "install-offline.sh")],
        capture_output=True,
        text=True,
        env=consumer_env(PIP_CONFIG_FILE=os.devnull, PYTHON=str(interpreter)),
        check=False,
    )
    assert result.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stderr


@pytest.mark.slow
def test_bootstrap_bundle_is_the_closure_and_deterministic(
    synced: AllowlistDir, tmp_path: Path
) -> None:
    out = tmp_path / "boot.tar.gz"
    args = (
        "bundle",
        "--allowlist",
        str(synced.path),
        "--bootstrap",
        "--cache",
        str(tmp_path / "c"),
    )
    ok(run_pipgate(*args, "--output", str(out)))
    first = out.read_bytes()
    ok(run_pipgate(*args, "--output", str(out)))
    assert out.read_bytes() == first
    with tarfile.open(out) as archive:
        names = sorted(archive.getnames())
        script = archive.getmember("boot/install-offline.sh")
        assert script.mode == 0o755
        archive.extractall(tmp_path / "x", filter="data")
    assert [n.split("/")[-1].split("-")[0] for n in names if "/files/" in n] == [
        "chain_a",
        "chain_b",
        "chain_c",
    ]
    interpreter = venv("3.11", tmp_path / "env")
    ok(
        subprocess.run(
            ["sh", str(tmp_path / "x" / "boot" / "install-offline.sh")],
            capture_output=True,
            text=True,
            env=consumer_env(PIP_CONFIG_FILE=os.devnull, PYTHON=str(interpreter)),
            check=False,
        )
    )
    # py312 is not a bootstrap target.
    refused = run_pipgate(*args, "--target", "py312")
    assert refused.returncode == 2 and "enabled for none" in refused.stderr


def test_render_is_deterministic_and_a_dry_run_writes_nothing(
    synced: AllowlistDir, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    folder = generated(synced)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = ok(
        run_pipgate(
            "render",
            "--allowlist",
            str(synced.path),
            "--cache",
            str(tmp_path / "cache"),
            "--format",
            "json",
        )
    )
    assert not any(f["changed"] for f in json.loads(again.stdout)["files"])
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    script = folder / "py311" / "install-offline.sh"
    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/bin/sh\n# This file is generated by pipgate")
    order = folder / "py311" / "install-order.txt"
    rendered = order.read_bytes()
    order.write_text("edited by hand\n")
    request.addfinalizer(lambda: order.write_bytes(rendered))  # the module shares the tree
    dry = ok(
        run_pipgate(
            "render",
            "--allowlist",
            str(synced.path),
            "--cache",
            str(tmp_path / "cache"),
            "--dry-run",
        )
    )
    assert "would write" in dry.stdout and "install-order.txt" in dry.stdout
    assert order.read_text() == "edited by hand\n"
    # With an empty cache, a dry run fetches nothing and writes nothing, and says so.
    empty = tmp_path / "empty-cache"
    nothing = ok(
        run_pipgate("render", "--allowlist", str(synced.path), "--cache", str(empty), "--dry-run")
    )
    assert "are not in the cache" in nothing.stdout and "fetches nothing" in nothing.stdout
    assert not empty.exists() or not any(p.is_file() for p in empty.rglob("*"))
    assert order.read_text() == "edited by hand\n"


def printed_into(
    target: Path, allowlist: AllowlistDir, key: Path
) -> subprocess.CompletedProcess[str]:
    """``pipgate pip-conf`` with its standard output redirected into ``target``."""
    with target.open("w") as handle:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pipgate",
                "pip-conf",
                "--allowlist",
                str(allowlist.path),
                "--json-key",
                str(key),
            ],
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )


SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "test-project",
    "private_key_id": "0123",
    "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n",
    "client_email": "composer@test-project.iam.gserviceaccount.com",
}


def test_composer_pip_conf_goes_to_stdout_and_never_into_the_repository(
    allowlist: AllowlistDir, tmp_path: Path
) -> None:
    allowlist.write(
        "config.yaml",
        config_text(None, registry="artifact-registry://europe-west1/test-project/approved"),
    )
    key = tmp_path / "key.json"
    key.write_text(json.dumps(SERVICE_ACCOUNT))
    encoded = base64.b64encode(key.read_bytes()).decode()
    printed = ok(
        run_pipgate("pip-conf", "--allowlist", str(allowlist.path), "--json-key", str(key))
    )
    assert (
        f"index-url = https://_json_key_base64:{encoded}@europe-west1-python.pkg.dev/"
        "test-project/approved/simple/\n"
    ) in printed.stdout
    assert "holds a service-account key" in printed.stderr
    assert encoded not in printed.stderr
    repo = allowlist.path.parent
    inside = repo / "generated" / "composer-pip.conf"
    refused = run_pipgate(
        "pip-conf",
        "--allowlist",
        str(allowlist.path),
        "--json-key",
        str(key),
        "--output",
        str(inside),
    )
    assert refused.returncode == 2 and "inside the repository" in refused.stderr
    assert not inside.exists()
    # Standard output redirected to a file in the repository is refused too.
    (repo / "generated").mkdir(exist_ok=True)
    assert printed_into(inside, allowlist, key).returncode == 2 and inside.read_text() == ""
    outside = tmp_path / "composer" / "pip.conf"
    outside.parent.mkdir()
    ok(
        run_pipgate(
            "pip-conf",
            "--allowlist",
            str(allowlist.path),
            "--json-key",
            str(key),
            "--output",
            str(outside),
        )
    )
    assert encoded in outside.read_text() and outside.stat().st_mode & 0o777 == 0o600
    # Onto a file that exists, readable by all: the key never sits in a readable file.
    existing = tmp_path / "composer" / "existing.conf"
    existing.write_text("old")
    existing.chmod(0o644)
    ok(
        run_pipgate(
            "pip-conf",
            "--allowlist",
            str(allowlist.path),
            "--json-key",
            str(key),
            "--output",
            str(existing),
        )
    )
    assert encoded in existing.read_text() and existing.stat().st_mode & 0o777 == 0o600
    for path in repo.rglob("*"):
        if path.is_file():
            assert encoded not in path.read_text(errors="replace"), path
            assert "not-a-real-key" not in path.read_text(errors="replace"), path
    # Another git work tree than the allowlist's: refused too, named or redirected into.
    other = tmp_path / "other-repo"
    (other / "generated").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    leak = other / "generated" / "leak.conf"
    named = run_pipgate(
        "pip-conf",
        "--allowlist",
        str(allowlist.path),
        "--json-key",
        str(key),
        "--output",
        str(leak),
    )
    assert named.returncode == 2 and "inside the repository" in named.stderr
    assert printed_into(leak, allowlist, key).returncode == 2 and leak.read_text() == ""
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "authorized_user", "refresh_token": "1//secret-refresh"}')
    wrong = run_pipgate("pip-conf", "--allowlist", str(allowlist.path), "--json-key", str(bad))
    assert wrong.returncode == 2 and "not a service-account key" in wrong.stderr
    assert "secret-refresh" not in wrong.stdout + wrong.stderr
