"""The pre-commit hook (.pre-commit-hooks.yaml), run by the real pre-commit's ``try-repo``
against a scratch repository: pre-commit installs pipgate from this checkout into its
own environment (from the machine's index) and runs ``pipgate validate``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, machine_index


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def hook_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's own home (its log; try-repo installs each run into a store of its own,
    so each run here installs pipgate: two runs, about 50 s each)."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This checkout as it stands (every file git tracks or would add, committed or not),
    committed into a repository of its own for pre-commit to install the hook from."""
    folder = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "-c", "user.name=tests", "-c", "user.email=t@example.invalid", "commit", "-qm", "x")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
    )
    return folder, head.stdout.strip()


def try_repo(
    scratch: Path, home: Path, hook: tuple[Path, str], *files: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "GIT_"))}
    env.update(
        PRE_COMMIT_HOME=str(home),
        PIP_INDEX_URL=machine_index(),  # where pre-commit's pip finds pipgate's dependencies
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        GIT_AUTHOR_NAME="tests",
        GIT_AUTHOR_EMAIL="tests@example.invalid",
        GIT_COMMITTER_NAME="tests",
        GIT_COMMITTER_EMAIL="tests@example.invalid",
    )
    selection = ["--files", *files] if files else ["--all-files"]
    return subprocess.run(
        [
            *(sys.executable, "-m", "pre_commit", "try-repo", str(hook[0]), "pipgate-validate"),
            *("--ref", hook[1]),
            *selection,
            *("--color", "never"),
        ],
        cwd=scratch,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A repository holding the example allowlist and a file outside it."""
    folder = tmp_path / "team-repo"
    shutil.copytree(REPO / "allowlist", folder / "allowlist")
    (folder / "README.md").write_text("a team's repository\n")
    git(folder, "init", "-q")
    git(folder, "add", ".")
    return folder


@pytest.mark.slow
def test_the_hook_passes_a_valid_allowlist_and_stops_a_broken_one(
    scratch: Path, hook_home: Path, hook_repo: tuple[Path, str]
) -> None:
    passed = try_repo(scratch, hook_home, hook_repo)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "pipgate validate" in passed.stdout and "Passed" in passed.stdout
    data = scratch / "allowlist" / "data.yaml"
    text = data.read_text()
    data.write_text(text.replace('version: "2.34.1"', "version: 2.0", 1))
    git(scratch, "add", ".")
    failed = try_repo(scratch, hook_home, hook_repo)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout
    line = text.splitlines().index('    version: "2.34.1"') + 1
    assert f"data.yaml:{line}" in failed.stdout
    assert "Traceback" not in failed.stdout
