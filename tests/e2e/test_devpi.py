"""devpi-server as the private registry, by its own URL shape (upload and simple apart)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.devpi import PASSWORD, USER, Devpi, start_devpi
from tests.universe import Server


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
    # pip in a fresh environment installs the lock from devpi with the generated pip.conf
    # alone: devpi serves its index to anyone, and holds every file.
    venv = tmp_path / "consumer"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = str(pip_conf)
    installed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--require-hashes",
            "-r",
            str(generated / "py311" / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    assert "Successfully installed" in installed.stdout and "cycle-x" in installed.stdout.replace(
        "_", "-"
    )
