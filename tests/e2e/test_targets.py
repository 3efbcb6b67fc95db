"""Targets older than the tool's own Python: their pip-tools environments are installed by
hash, and their locks, bundles and offline installs work on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipgate.toolenv import find_interpreter
from tests.conftest import EXAMPLE_ALLOWLIST, AllowlistDir, run_pipgate

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
