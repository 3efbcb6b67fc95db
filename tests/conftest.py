"""Fixtures shared by every test: an isolated environment and allowlist folders."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ALLOWLIST = REPO / "allowlist"

CONFIG = """\
registry: file://.registry
upstream: null
targets:
  - name: py311
    python: "3.11"
    platforms: [manylinux_2_17_x86_64]
  - name: py312
    python: "3.12"
    platforms: [manylinux_2_17_x86_64]
policy:
  sdists: deny
  transitive: auto
  min_release_age_days: 7
"""

PACKAGES = """\
packages:
  - name: requests
    version: "2.32.3"
    reason: HTTP client
    requested_by: data-platform
"""


@pytest.fixture(autouse=True)
def isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No PIP_*, TWINE_*, PIPGATE_* setting or home-directory file of the developer leaks in."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(("PIP_", "TWINE_", "PIPGATE_", "XDG_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PYTHONNOUSERSITE", "1")
    return home


class AllowlistDir:
    """A writable allowlist folder, valid until a test breaks it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.write("config.yaml", CONFIG)
        self.write("team.yaml", PACKAGES)

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.write_text(textwrap.dedent(text), encoding="utf-8")
        return target

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.path / name
        target.write_bytes(data)
        return target


@pytest.fixture
def allowlist(tmp_path: Path) -> AllowlistDir:
    return AllowlistDir(tmp_path / "repo" / "allowlist")


def run_pipgate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "pipgate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=120,
    )
