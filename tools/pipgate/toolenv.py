"""pip-compile under each target's own Python.

pip-compile resolves for the interpreter it runs under (``--python-version``
passed to pip is silently ignored), so a lock for Python 3.12 needs pip-tools
running on 3.12. When pipgate itself runs on that version it uses its own
installation; otherwise it finds the interpreter (PATH, then pyenv) and
prepares a virtual environment for it holding the very pip-tools, pip and
helpers pipgate was installed with (all pure Python), copied from pipgate's
own environment: no index is contacted and the versions are the pinned ones.
The environment is cached and rebuilt when those versions change.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

from pipgate.errors import ExternalError
from pipgate.names import normalize
from pipgate.runner import run

ROOT_DIST = "pip-tools"


class ToolEnvError(ExternalError):
    """No Python or no pip-tools could be had for a target."""


def cache_dir() -> Path:
    configured = os.environ.get("PIPGATE_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipgate"


def find_interpreter(version: str) -> Path | None:
    """An interpreter for ``MAJOR.MINOR``: this one, one on PATH, or one pyenv installed."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return Path(sys.executable)
    found = shutil.which(f"python{version}")
    if found and "shims" not in Path(found).parts:
        return Path(found)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if root.is_dir():
        pattern = re.compile(rf"^{re.escape(version)}\.[0-9]+$")
        candidates = sorted(
            (p for p in root.iterdir() if pattern.match(p.name)),
            key=lambda p: [int(x) for x in p.name.split(".")],
        )
        for candidate in reversed(candidates):
            python = candidate / "bin" / "python"
            if python.exists():
                return python
    return None


def _closure(version: str) -> list[metadata.Distribution]:
    """pip-tools and everything it needs on Python ``version``, as installed here."""
    env = {key: str(value) for key, value in default_environment().items()}
    env["python_version"] = version
    env["python_full_version"] = f"{version}.0"
    seen: dict[str, metadata.Distribution] = {}
    pending = [ROOT_DIST]
    while pending:
        name = normalize(pending.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ToolEnvError(
                f"pip-tools needs {name} on Python {version}, and it is not installed here",
                hint=f"run 'pipgate lock' under Python {version} for this target",
            ) from None
        seen[name] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({**env, "extra": ""}):
                pending.append(requirement.name)
    return [seen[k] for k in sorted(seen)]


def pip_compile_command(version: str) -> list[str]:
    """The command that runs pip-compile under Python ``version``."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return [sys.executable, "-m", "piptools", "compile"]
    python = find_interpreter(version)
    if python is None:
        raise ToolEnvError(
            f"no Python {version} interpreter found for this target",
            hint=f"install Python {version} (on PATH as python{version}, or with pyenv), "
            f"or run 'pipgate lock' under Python {version}",
        )
    return [str(_ensure_env(version, python)), "-m", "piptools", "compile"]


def _ensure_env(version: str, python: Path) -> Path:
    dists = _closure(version)
    fingerprint = hashlib.sha256(
        "\n".join([str(python), *(f"{d.metadata['Name']}=={d.version}" for d in dists)]).encode()
    ).hexdigest()[:16]
    home = cache_dir() / "toolenvs" / f"py{version}-{fingerprint}"
    marker = home / ".complete"
    executable = home / "bin" / "python"
    if marker.is_file() and executable.exists():
        return executable
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".py{version}-", dir=home.parent))
    try:
        created = run([python, "-m", "venv", "--without-pip", staging], timeout=300)
        if created.returncode != 0:
            raise ToolEnvError(
                f"cannot create a virtual environment with {python}: "
                f"{created.stderr.strip()[-400:]}"
            )
        site = next((staging / "lib").glob("python*/site-packages"))
        for dist in dists:
            _copy_distribution(dist, site, version)
        (staging / ".complete").write_text(fingerprint + "\n", encoding="utf-8")
        if home.exists():
            shutil.rmtree(home)
        staging.rename(home)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return executable


def _copy_distribution(dist: metadata.Distribution, site: Path, version: str) -> None:
    files = dist.files or []
    base = Path(str(dist.locate_file("")))
    for item in files:
        relative = Path(str(item))
        if relative.is_absolute() or ".." in relative.parts:
            continue  # scripts installed outside site-packages are not needed
        if "__pycache__" in relative.parts:
            continue
        if relative.suffix in (".so", ".pyd", ".dylib"):
            raise ToolEnvError(
                f"{dist.metadata['Name']} is not pure Python and cannot serve Python {version}",
                hint=f"run 'pipgate lock' under Python {version} for this target",
            )
        source = base / relative
        if not source.is_file():
            continue
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
