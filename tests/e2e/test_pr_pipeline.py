"""The pull-request check's steps, run in order on this machine (tests/cloudbuild.py), on
a pull request whose lock fails: the review still runs and prints the whole report."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cloudbuild import run_build
from tests.conftest import REPO, config_text, entries, run_pipgate
from tests.e2e.test_merge_pipeline import OSV_DATA, git
from tests.universe import Server

PR_CHECK = REPO / "pipelines" / "pr-check.cloudbuild.yaml"


def line_of(path: Path, name: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.strip() == f"- name: {name}")


def test_a_pull_request_whose_lock_fails_gets_its_report_in_the_build_log(
    upstream: Server, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(remote), str(dev))
    (dev / "allowlist").mkdir()
    config = config_text(upstream.url) + f"  audit:\n    database: {OSV_DATA}\n"
    config += "    max_data_age_days: 0\n"  # the snapshot in tests/data is frozen on purpose
    (dev / "allowlist" / "config.yaml").write_text(config)
    (dev / "allowlist" / "team.yaml").write_text(entries("chain-a==1.0"))
    # main as the merge pipeline leaves it: the allowlist and its locks.
    locked = run_pipgate("lock", "--allowlist", str(dev / "allowlist"))
    assert locked.returncode == 0, locked.stderr
    git(dev, "add", "-A")
    git(dev, "commit", "-q", "-m", "approvals")
    git(dev, "push", "-q", "origin", "HEAD:main")
    # The pull request: a package with no wheel, one that pulls in a vulnerable certifi,
    # and a typosquat of a popular name.
    git(dev, "checkout", "-q", "-b", "request")
    request = dev / "allowlist" / "request.yaml"
    request.write_text(entries("sdist-only==1.0", "uses-old-certifi==1.0", "requets==1.0"))
    git(dev, "add", "-A")
    git(dev, "commit", "-q", "-m", "request three packages")
    git(dev, "push", "-q", "origin", "request")
    workspace = tmp_path / "workspace"
    git(tmp_path, "clone", "-q", "-b", "request", str(remote), str(workspace))

    values = {
        "PROJECT_ID": "test-project",
        "BUILD_ID": "build-1",
        "_BASE_BRANCH": "main",
        "_HEAD_BRANCH": "request",
        "_PR_NUMBER": "7",
    }
    runs = {run.id: run for run in run_build(PR_CHECK, workspace, tmp_path, values)}
    # The lock steps fail (no wheel for sdist-only) and the build goes on to the review.
    assert runs["lock-py311"].returncode == 1 and runs["lock-py312"].returncode == 1
    assert "sdist-only==1.0 has no wheel" in runs["lock-py311"].stdout + runs["lock-py311"].stderr
    review = runs["review"]
    assert review.returncode == 1, review.stdout[-2000:] + review.stderr[-2000:]
    log = review.stdout
    assert "**FAIL: policy says no (1 lock-failed, 1 typosquat, 1 vulnerability)" in log
    where = "allowlist/request.yaml"
    for name, said in (
        ("sdist-only", "sdist-only==1.0 has no wheel"),
        ("requets", "| typosquat |"),
        ("uses-old-certifi", "PYSEC-2023-135"),
    ):
        row = next(line for line in log.splitlines() if said in line)
        assert f"{where}:{line_of(request, name)}" in row, row
    # The report as a file for the build's artifacts: the same as the log's.
    assert (workspace / "review.md").read_text() == log
    assert "Traceback" not in review.stderr
