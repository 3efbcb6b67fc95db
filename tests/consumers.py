"""What a consumer machine does with the generated files: pip and uv, each in a fresh
virtual environment, with the generated ``pip.conf`` or ``uv.toml`` as their only
configuration, installing a hashed lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment; its Python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder / "bin" / "python"


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}


def pip_install(folder: Path, pip_conf: Path, lock: Path) -> subprocess.CompletedProcess[str]:
    """pip, configured by ``pip_conf`` alone, installs ``lock`` into a fresh environment."""
    python = fresh_venv(folder)
    env = _clean_environment()
    env["PIP_CONFIG_FILE"] = str(pip_conf)
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--require-hashes", "-r", str(lock)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def uv_install(folder: Path, uv_toml: Path, lock: Path) -> subprocess.CompletedProcess[str]:
    """uv, configured by ``uv_toml`` alone, installs ``lock`` into a fresh environment."""
    python = fresh_venv(folder)
    env = _clean_environment()
    env["UV_CONFIG_FILE"] = str(uv_toml)
    env["UV_CACHE_DIR"] = str(folder.parent / f"{folder.name}-uv-cache")
    uv = Path(sys.executable).parent / "uv"
    return subprocess.run(
        [str(uv), "pip", "install", "--python", str(python), "--require-hashes", "-r", str(lock)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def installed(result: subprocess.CompletedProcess[str]) -> str:
    """What the install said, for an assertion's message."""
    return (result.stdout[-2000:] + result.stderr[-2000:]).replace("_", "-")
