"""The README's set-up and main job, as written, in a fresh clone: what a newcomer runs.

The blocks are read from the README itself, so the test fails when the README
drifts from what works. It needs the package index (the set-up installs from
it, and the example allowlist's upstream is pip's own configured index), so
it is marked ``live``: CI runs it; an offline run deselects it visibly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OSV_DATA = REPO / "tests" / "data" / "osv"


def readme_blocks() -> tuple[list[str], str]:
    """The set-up lines and the main-job command of the README's first section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) >= 2, "the README's first section lost its set-up or its commands"
    setup = [line for line in blocks[0].splitlines() if line.strip()]
    commands = [line.split("#", 1)[0].strip() for line in blocks[1].splitlines()]
    main_job = next(c for c in commands if c.startswith("nox") and "sync" in c)
    return setup, main_job


def shell(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )


@pytest.mark.slow
@pytest.mark.live
def test_readme_set_up_and_main_job_work_in_a_fresh_clone(tmp_path: Path) -> None:
    setup, main_job = readme_blocks()
    assert main_job == "nox -s sync"
    clone = tmp_path / "pipgate"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    # A newcomer's machine: pip's own configuration (the index it reaches), not the tests'.
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONFIG_FILE"}
    env.pop("VIRTUAL_ENV", None)
    prepared = shell("\n".join(setup), clone, env)
    assert prepared.returncode == 0, prepared.stdout[-2000:] + prepared.stderr[-3000:]
    activate = ". .venv/bin/activate\n"
    assert shutil.which("pipgate", path=str(clone / ".venv" / "bin")) is not None

    # The main job as written: no vulnerability service answers here, so it stops at the
    # audit, closed, saying how to go on; nox exits 1 for the failed session.
    first = shell(activate + main_job, clone, env)
    said = first.stdout + first.stderr
    assert first.returncode == 1, said[-3000:]
    assert "sync stopped at audit" in said and "--database" in said, said[-3000:]
    assert "Traceback" not in said

    # As the README goes on: with an offline export, it finishes.
    export = tmp_path / "osv"
    shutil.copytree(OSV_DATA, export)
    # The export in tests/data is a snapshot of 2024-10: too old to answer for today, and
    # the audit says so; the README's command for data frozen on purpose then finishes.
    stale = shell(activate + f"{main_job} -- --database {export}", clone, env)
    said = stale.stdout + stale.stderr
    assert stale.returncode == 1 and "days old" in said and "max_data_age_days" in said, said
    frozen = "--max-data-age-days 0"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"nox -s sync -- --database /path/to/advisory-database {frozen}" in readme
    done = shell(activate + f"{main_job} -- --database {export} {frozen}", clone, env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "verified by hash" in done.stdout + done.stderr
    # git status: only what the merge pipeline would commit.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    changed = sorted(line[3:] for line in status)
    allowed = re.compile(r"^generated/(sync-state\.json|[a-z0-9_-]+/(audit|sbom\.cdx)\.json)$")
    assert changed and all(allowed.match(path) for path in changed), changed
    # And a second run does nothing.
    again = shell(activate + f"{main_job} -- --database {export} {frozen}", clone, env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "publish skipped" in again.stdout + again.stderr
