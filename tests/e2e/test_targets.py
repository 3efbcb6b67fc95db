"""Targets older than the tool's own Python: their pip-tools environments are installed by
hash, and their locks, bundles and offline installs work on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipgate.toolenv import TOOLENVS, find_interpreter
from tests.conftest import EXAMPLE_ALLOWLIST, AllowlistDir, entries, run_pipgate
from tests.universe import Server

CONFIG = """\
registry: file://.registry
upstream: null
targets:
  - name: py39
    python: "3.9"
    platforms: [manylinux_2_28_x86_64]
  - name: py310
    python: "3.10"
    platforms: [manylinux_2_28_x86_64]
policy:
  min_release_age_days: 7
bootstrap:
  file: bootstrap.yaml
"""


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("python", ["3.9", "3.10"])
def test_an_older_python_locks_bundles_and_installs_the_bootstrap_set_offline(
    allowlist: AllowlistDir, tmp_path: Path, python: str
) -> None:
    # The seed scenario: keyring and its Artifact Registry backend for an older Python,
    # locked from pip's own index, installed on a machine with no index at all.
    interpreter = find_interpreter(python)
    assert interpreter is not None, f"Python {python} is needed by this test"
    allowlist.write("config.yaml", CONFIG)
    (allowlist.path / "team.yaml").unlink()
    shutil.copy(EXAMPLE_ALLOWLIST / "bootstrap.yaml", allowlist.path / "bootstrap.yaml")
    target = "py" + python.replace(".", "")
    ok(run_pipgate("lock", "--allowlist", str(allowlist.path), "--target", target))
    lock = (allowlist.path.parent / "generated" / target / "requirements.txt").read_text()
    assert "keyrings-google-artifactregistry-auth==1.1.2" in lock
    bundle = tmp_path / "bundle"
    ok(
        run_pipgate(
            "bundle",
            "--allowlist",
            str(allowlist.path),
            "--bootstrap",
            "--target",
            target,
            "--output",
            str(bundle),
            "--cache",
            str(tmp_path / "cache"),
        )
    )
    consumer = tmp_path / "consumer"
    subprocess.run([str(interpreter), "-m", "venv", str(consumer)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHON=str(consumer / "bin" / "python"))
    installed = ok(
        subprocess.run(
            ["sh", str(bundle / "install-offline.sh")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    )
    assert "No broken requirements found" in installed.stdout
    backends = ok(
        subprocess.run(
            [str(consumer / "bin" / "keyring"), "--list-backends"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    )
    assert "GooglePythonAuth" in backends.stdout, backends.stdout


def test_a_tool_index_serving_another_pip_tools_is_refused(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tool index is as untrusted as any: it serves files under the pinned names with
    # other bytes. Every file is pinned by hash, so nothing of it is installed or run.
    import sys

    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    other = "3.12" if here != "3.12" else "3.11"
    pinned = (TOOLENVS / f"py{other}.txt").read_text()
    folder = tmp_path / "tool-wheels"
    folder.mkdir()
    for name, version in re.findall(r"^([a-z0-9-]+)==(\S+)", pinned, re.MULTILINE):
        wheel = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: not the pinned file
    monkeypatch.setenv("PIPGATE_TOOL_INDEX", str(folder))
    monkeypatch.setenv("PIPGATE_CACHE_DIR", str(tmp_path / "fresh-cache"))
    target = "py" + other.replace(".", "")
    allowlist.write(
        "config.yaml",
        f"""\
registry: file://.registry
upstream: {upstream.url}
targets:
  - name: {target}
    python: "{other}"
    platforms: [manylinux_2_17_x86_64]
policy:
  min_release_age_days: 0
""",
    )
    allowlist.write("team.yaml", entries("chain-c==1.0"))
    result = run_pipgate("lock", "--allowlist", str(allowlist.path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"cannot install pip-tools for Python {other}" in result.stderr
    assert "hash" in result.stderr.lower() and "Traceback" not in result.stderr
    assert not list((tmp_path / "fresh-cache" / "toolenvs").glob(f"py{other}-*/.complete"))
