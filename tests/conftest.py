"""Fixtures shared by every test: an isolated environment and allowlist folders."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipgate.pipconfig import pip_sources
from tests.universe import (
    YANKED,
    Server,
    UpstreamFront,
    build_universe,
    running,
    start_pypiserver,
    write_htpasswd,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ALLOWLIST = REPO / "allowlist"

PACKAGES = """\
packages:
  - name: requests
    version: "2.32.3"
    reason: HTTP client
    requested_by: data-platform
"""


@pytest.fixture(scope="session")
def tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pipgate cache (tool environments for other Pythons) for the whole run."""
    return tmp_path_factory.mktemp("pipgate-cache")


@functools.cache
def machine_index() -> str:
    """The index pip on this machine uses (its configuration as the run started): where the
    pinned pip-tools for other Pythons' environments come from, as they would for a user
    whose upstream is pip's own index. The tests' upstreams serve only the test universe."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ORIGINAL_ENVIRONMENT.items():
            patch.setenv(name, value)
        first = next(s for s in pip_sources(sys.executable) if not s.find_links)
    return first.url


ORIGINAL_ENVIRONMENT = dict(os.environ)


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path, tool_cache: Path) -> None:
    """No PIP_*, TWINE_*, PIPGATE_* setting or home-directory file of the developer leaks in."""
    tool_index = machine_index()
    for name in list(os.environ):
        if name.startswith(("PIP_", "TWINE_", "PIPGATE_", "XDG_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PYTHONNOUSERSITE", "1")
    monkeypatch.setenv("PIPGATE_CACHE_DIR", str(tool_cache))
    monkeypatch.setenv("PIPGATE_TOOL_INDEX", tool_index)
    # Retries back off 1 s, 2 s, 4 s... in real use; the fault tests need not wait that long.
    monkeypatch.setenv("PIPGATE_RETRY_BACKOFF", "0.05")


@pytest.fixture(autouse=True)
def isolated_environment(
    tool_cache: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test runs isolated (see ``isolate``)."""
    home = tmp_path_factory.mktemp("home")
    isolate(monkeypatch, home, tool_cache)
    return home


class AllowlistDir:
    """A writable allowlist folder, valid until a test breaks it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.write("config.yaml", CONFIG_TEXT)
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


# -- the test universe: real index servers on 127.0.0.1 -----------------------------------------


@pytest.fixture(scope="session")
def universe_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("universe")
    build_universe(folder)
    return folder


@pytest.fixture(scope="session")
def upstream(universe_index: Server) -> Iterator[Server]:
    """pypiserver serving the test universe, open to anyone, behind a front that makes it
    a modern index (yanked releases, upload times, project statuses): the upstream."""
    front = UpstreamFront(universe_index, YANKED)
    try:
        yield front.server()
    finally:
        front.stop()


@pytest.fixture(scope="session")
def universe_index(
    universe_files: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """pypiserver serving the test universe, without a front (fronts of a test's own go
    before it, as ``upstream``'s does)."""
    with running(start_pypiserver(universe_files, tmp_path_factory.mktemp("logs"))) as server:
        yield server


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[Server]:
    """An empty password-protected pypiserver: the private registry."""
    packages = tmp_path / "registry-packages"
    packages.mkdir()
    username, password = "pipgate-ci", "registry-secret-value"
    htpasswd = write_htpasswd(tmp_path / "htpasswd", username, password)
    server = start_pypiserver(
        packages, tmp_path / "logs", htpasswd=htpasswd, username=username, password=password
    )
    with running(server):
        yield server


def config_text(
    upstream_url: str | None,
    *,
    transitive: str = "auto",
    sdists: str = "deny",
    registry: str = "file://.registry",
    min_release_age_days: int = 0,
) -> str:

    upstream_value = upstream_url if upstream_url is not None else "null"
    return f"""\
registry: {registry}
upstream: {upstream_value}
targets:
  - name: py311
    python: "3.11"
    platforms: [manylinux_2_17_x86_64]
  - name: py312
    python: "3.12"
    platforms: [manylinux_2_17_x86_64]
policy:
  sdists: {sdists}
  transitive: {transitive}
  min_release_age_days: {min_release_age_days}
"""


def entries(*specs: str, **options: str) -> str:
    """A package file: each spec is 'name==version' or 'name[extra]==version'."""
    lines = ["packages:"]
    for spec in specs:
        name, version = spec.split("==")
        extras = ""
        if "[" in name:
            name, extra = name.rstrip("]").split("[")
            extras = f"\n    extras: [{extra}]"
        lines.append(
            f'  - name: {name}\n    version: "{version}"{extras}\n'
            f"    reason: needed by the tests\n    requested_by: tests"
        )
        for key, value in options.items():
            if key.startswith(name.replace("-", "_") + "__"):
                lines.append(f"    {key.split('__', 1)[1]}: {value}")
    return "\n".join(lines) + "\n"


CONFIG_TEXT = config_text(None, min_release_age_days=7)
"""A valid config.yaml for tests that need no index; its line numbers are relied on."""


@contextlib.contextmanager
def osv_serve(database: Path) -> Iterator[str]:
    """``pipgate osv-serve`` on ``database`` in a child process: its first line (``serving N
    OSV records ... at URL``) while it runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipgate", "osv-serve", "--database", str(database)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
