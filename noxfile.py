"""The sessions people and pipelines run. Logic lives in the pipgate package, not here.

    nox -s sync         the main job: lock, check, audit, publish, verify, render
    nox -s validate     check the allowlist
    nox -s lock         write one hashed lock per target under generated/
    nox -s check        the supply-chain policy on every lock (cooldown, typosquats, ...)
    nox -s audit        audit the locks with pip-audit, failing closed
    nox -s download     fetch each target's files into the cache, hash-checked
    nox -s upload       upload what the registry lacks, then verify it by hash
    nox -s verify       what the registry holds against every lock (drift)
    nox -s prune        remove what no recent lock needs (dry run unless -- --apply)
    nox -s render       write pip.conf, uv.toml, install orders and offline installers
    nox -s review       the pull request's review report (-- --base REF)

    nox -s bench        benchmarks against the plain tools (locking uses the package index)
    nox -s tests        the test suite, on every supported Python
    nox -s lint         ruff and mypy, strict
    nox -s schemas      regenerate the JSON Schemas of the allowlist files
    nox -s toolenvs     regenerate the hashed pip-tools sets for other target Pythons

Every session installs the tool with requirements/constraints.txt, so the
versions tested are the versions pinned. Missing interpreters are an error,
never a silent skip.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import nox

nox.options.error_on_missing_interpreters = True
# uv when it is there (.ci/run and the pipelines install it with nox): environments in
# seconds instead of a minute each; venv and pip otherwise. The pins are the same.
nox.options.default_venv_backend = "uv|venv"
# Sessions keep their environment between runs; _install reinstalls only when the inputs
# change, so a session whose work is a no-op is about as fast as the command itself.
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

SUPPORTED_PYTHONS = ["3.11", "3.12", "3.13"]  # 3.10 reached its end of life in October 2026
TOOL_PYTHON = "3.11"
CONSTRAINTS = "requirements/constraints.txt"
TOOL_HASHES = "requirements/tool.txt"
"""pipgate's runtime dependencies and build backend, every file by hash (nox -s constraints)."""
PIPELINE_HASHES = "requirements/pipeline.txt"
"""nox, every file by hash: what the pipelines and .ci/run install first."""


def _add_pyenv_interpreters(versions: list[str]) -> None:
    """Put pyenv's interpreters on PATH where ``pythonX.Y`` is not there already.

    pyenv's shims answer only for the active version, so nox would not find
    the others; a machine without pyenv or without a version still fails.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not root.is_dir():
        return
    extra = []
    for version in versions:
        found = shutil.which(f"python{version}")
        if found and "shims" not in found:
            continue
        pattern = re.compile(rf"^{re.escape(version)}\.[0-9]+$")
        installed = sorted(
            (p for p in root.iterdir() if pattern.match(p.name)),
            key=lambda p: [int(part) for part in p.name.split(".")],
        )
        if installed:
            extra.append(str(installed[-1] / "bin"))
    if extra:
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_add_pyenv_interpreters(SUPPORTED_PYTHONS)


def _install(session: nox.Session, *extras: str) -> None:
    """Install pipgate (editable) with ``extras``, pinned by the constraints, once.

    The environment is kept between runs (``reuse_venv``) and installed again only when
    pyproject.toml, the constraints or the extras change: a stamp in the environment
    records what it was installed from. So a no-op ``nox -s sync`` costs about what
    ``pipgate sync`` does, not a reinstall.
    """
    target = f".[{','.join(extras)}]" if extras else "."
    digest = hashlib.sha256(
        b"\0".join(
            [
                Path("pyproject.toml").read_bytes(),
                Path(CONSTRAINTS).read_bytes(),
                Path(TOOL_HASHES).read_bytes(),
                target.encode(),
            ]
        )
    ).hexdigest()
    location = getattr(session.virtualenv, "location", None)
    stamp = Path(location) / ".pipgate-installed" if location else None
    if stamp is not None and stamp.is_file() and stamp.read_text(encoding="utf-8") == digest:
        session.log(f"environment current for {target} (pyproject.toml and constraints unchanged)")
        return
    if extras:
        session.install("-c", CONSTRAINTS, "-e", target)
    else:
        # What the pipelines run: every dependency by hash, then pipgate itself from this
        # checkout, built with the hashed build backend already installed.
        session.install("--require-hashes", "-r", TOOL_HASHES)
        session.install("--no-deps", "--no-build-isolation", "-e", ".")
    if stamp is not None:
        stamp.write_text(digest, encoding="utf-8")


@nox.session(python=SUPPORTED_PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest arguments after --).

    The end-to-end tests (tests/e2e) drive other tools (pip, pip-compile, uv, pip-audit,
    twine, real servers, git and the pipelines); what they check does not depend on the
    Python pipgate itself runs on, so they run under TOOL_PYTHON only; the other sessions
    run the unit and command-line tests, which exercise pipgate's own code on each Python.
    Tests marked live (the README's set-up and main job, which need the package index) run
    where CI is set, as .ci/run sets it. The whole run stays within the 20 minutes CI
    allows on two cores.
    """
    _install(session, "test")
    excluded = []
    ignored = []
    if session.python != TOOL_PYTHON:
        excluded.append("slow")
        ignored = ["--ignore", "tests/e2e"]
        session.log(f"the end-to-end tests run in the {TOOL_PYTHON} session only: not here")
    if not os.environ.get("CI"):
        excluded.append("live")
        session.log("tests marked live need the package index and run in CI (CI=true): deselected")
    selection = ["-m", " and ".join(f"not {mark}" for mark in excluded)] if excluded else []
    # Two workers: the machines have two cores, and most tests wait on subprocesses.
    session.run("pytest", "-n", "2", *selection, *ignored, *session.posargs)


@nox.session(python=TOOL_PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) and mypy in strict mode; the schemas must be current."""
    _install(session, "test", "lint", "dev")  # dev: nox, so mypy checks this file too
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("pipgate", "schema", "--check", "tools/pipgate/schemas")


@nox.session(python=TOOL_PYTHON)
def validate(session: nox.Session) -> None:
    """Validate the allowlist (pass --allowlist DIR or --format json after --)."""
    _install(session)
    session.run("pipgate", "validate", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Write one hashed lock per target under generated/ (pass --upgrade etc. after --)."""
    _install(session)
    session.run("pipgate", "lock", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def check(session: nox.Session) -> None:
    """The supply-chain policy on every lock: cooldown, yanked, typosquats, licences..."""
    _install(session)
    session.run("pipgate", "check", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def audit(session: nox.Session) -> None:
    """Audit every lock with pip-audit (pass --database PATH for an offline OSV export)."""
    _install(session)
    session.run("pipgate", "audit", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def outdated(session: nox.Session) -> None:
    """Each entry's newest release that passes the policy, and why newer ones do not."""
    _install(session)
    session.run("pipgate", "outdated", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def bump(session: nox.Session) -> None:
    """Write a newer version into an entry's YAML in place (NAME [VERSION], --all...)."""
    _install(session)
    session.run("pipgate", "bump", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def download(session: nox.Session) -> None:
    """Fetch every target's locked files into the cache, checked against the lock."""
    _install(session)
    session.run("pipgate", "download", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def upload(session: nox.Session) -> None:
    """Upload what the registry lacks and verify it by hash (credentials from the environment)."""
    _install(session)
    session.run("pipgate", "upload", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def verify(session: nox.Session) -> None:
    """Compare what the registry holds with every lock: missing, conflicting, extra files."""
    _install(session)
    session.run("pipgate", "verify", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def prune(session: nox.Session) -> None:
    """Remove what no lock of the last commits needs (a dry run unless -- --apply)."""
    _install(session)
    session.run("pipgate", "prune", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def render(session: nox.Session) -> None:
    """Write pip.conf, uv.toml and each target's install order and offline installers."""
    _install(session)
    session.run("pipgate", "render", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def sync(session: nox.Session) -> None:
    """The main job: validate, lock, check, audit, publish, verify, render (unchanged steps
    are skipped). Pass --database PATH after -- for an offline OSV export."""
    _install(session)
    session.run("pipgate", "sync", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False, name="osv-sync")
def osv_sync(session: nox.Session) -> None:
    """Merge OSV sources (clones, all.zip files or URLs) into one export folder (pass
    --output DIR and the sources after --)."""
    _install(session)
    session.run("pipgate", "osv-sync", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def review(session: nox.Session) -> None:
    """The pull request's review report (pass --base REF after --)."""
    _install(session)
    session.run("pipgate", "review", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks against the plain tools: publishing (local servers), then locking the
    example allowlist and benchmarks/large/allowlist with both engines, and reviewing a
    one-package change to each (needs the package index), and the offline OSV database's
    index at 20,000 records. Pass --check after -- to fail on a miss."""
    _install(session, "test")  # pypiserver and the test universe's wheel builder
    session.run("python", "benchmarks/bench_publish.py", *session.posargs)
    session.run("python", "benchmarks/bench_lock.py", *session.posargs)
    session.run("python", "benchmarks/bench_review.py", *session.posargs)
    session.run("python", "benchmarks/bench_osv.py", *session.posargs)


@nox.session(python=TOOL_PYTHON, default=False)
def schemas(session: nox.Session) -> None:
    """Regenerate tools/pipgate/schemas/ from the allowlist spec."""
    _install(session)
    session.run("pipgate", "schema", "--output", "tools/pipgate/schemas")


TOOLENV_PYTHONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


@nox.session(python=TOOL_PYTHON, default=False)
def toolenvs(session: nox.Session) -> None:
    """Regenerate tools/pipgate/data/toolenvs/pyX.Y.txt: for each Python, the newest
    pip-tools that supports it and what it needs, every file hashed (uv resolves for each
    Python without its interpreter, from its default index, or UV_DEFAULT_INDEX)."""
    _install(session)
    folder = Path("tools/pipgate/data/toolenvs")
    wanted = session.create_tmp() + "/toolenv.in"
    Path(wanted).write_text("pip-tools\npip\nsetuptools\nwheel\n")
    for version in TOOLENV_PYTHONS:
        session.run(
            "uv", "pip", "compile", "--quiet", wanted,
            "--python-version", version, "--python-platform", "linux",
            "--generate-hashes", "--annotation-style", "line",
            "--custom-compile-command", "nox -s toolenvs",
            "--output-file", str(folder / f"py{version}.txt"),
        )  # fmt: skip


@nox.session(python=TOOL_PYTHON, default=False)
def constraints(session: nox.Session) -> None:
    """Re-pin requirements/constraints.txt from pyproject.toml with pip-compile, then the
    hashed sets the pipelines install from (tool.txt, pipeline.txt), at the same versions."""
    session.install("-c", CONSTRAINTS, "pip-tools")
    common = [
        "pip-compile",
        "--quiet",
        "--strip-extras",
        "--allow-unsafe",
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--no-emit-trusted-host",
    ]
    header = {"CUSTOM_COMPILE_COMMAND": "nox -s constraints"}
    session.run(
        *common,
        "--all-extras",
        *session.posargs,
        "--output-file",
        CONSTRAINTS,
        "pyproject.toml",
        env=header,
    )
    # The build backend is pinned by pyproject.toml, apart from the test extras' setuptools.
    same = Path(session.create_tmp()) / "constraints-without-setuptools.txt"
    same.write_text(
        "".join(
            line + "\n"
            for line in Path(CONSTRAINTS).read_text().splitlines()
            if not line.startswith("setuptools==")
        )
    )
    hashed = [*common, "--generate-hashes", "--constraint", str(same)]
    session.run(
        *hashed, "--output-file", TOOL_HASHES, "pyproject.toml", "requirements/build.in", env=header
    )
    session.run(*hashed, "--output-file", PIPELINE_HASHES, "requirements/pipeline.in", env=header)
