"""The merge pipeline's steps, run in order on this machine against a local git remote.

Each step of cloudbuild.yaml runs as Cloud Build would run it (its entrypoint and args,
substitutions applied, the step's env), in a clone of a bare repository that plays the
hosted one, with the embedded file registry shared by every run (tests/cloudbuild.py runs
the steps). Two stand-ins on PATH,
as Cloud Build's images provide the tools: ``pip`` (the image would install nox; here the
test environment already has pipgate, and the default test run reaches no index) and
``nox`` (each session of noxfile.py is ``pipgate SESSION ARGS`` under the session's
Python; the stand-in runs exactly that command line). Everything else is real: pipgate,
pip-compile, pip-audit against an offline OSV export, git and pipelines/commit-back.sh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cloudbuild import prepare
from tests.conftest import REPO, config_text, entries
from tests.universe import Server

OSV_DATA = REPO / "tests" / "data" / "osv"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "dev",
            "GIT_AUTHOR_EMAIL": "dev@localhost",
            "GIT_COMMITTER_NAME": "dev",
            "GIT_COMMITTER_EMAIL": "dev@localhost",
        },
    )
    return result.stdout.strip()


class Hosted:
    """A bare repository playing the hosted one, and developers who push to it."""

    def __init__(self, root: Path, upstream: Server) -> None:
        self.root = root
        self.remote = root / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.remote)], check=True)
        self.dev = root / "dev"
        git(root, "clone", "-q", str(self.remote), str(self.dev))
        self.registry = root / "shared-registry"
        config = config_text(upstream.url, registry=self.registry.as_uri())
        config += f"  audit:\n    database: {OSV_DATA}\n"
        config += "    max_data_age_days: 0\n"  # the snapshot in tests/data is frozen on purpose
        (self.dev / "allowlist").mkdir()
        (self.dev / "allowlist" / "config.yaml").write_text(config)
        (self.dev / "pipelines").mkdir()
        shutil.copy2(REPO / "pipelines" / "commit-back.sh", self.dev / "pipelines")
        shutil.copy2(REPO / "cloudbuild.yaml", self.dev / "cloudbuild.yaml")
        (self.dev / "generated").mkdir()
        (self.dev / "generated" / "README.md").write_text("written by the pipeline\n")
        self.merge("first approvals", "chain-a==1.0")

    def merge(self, message: str, *specs: str) -> str:
        if self.log():
            git(self.dev, "pull", "-q", "--rebase", "origin", "main")
        (self.dev / "allowlist" / "team.yaml").write_text(entries(*specs))
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-q", "-m", message)
        git(self.dev, "push", "-q", "origin", "HEAD:main")
        return git(self.dev, "rev-parse", "HEAD")

    def log(self) -> list[str]:
        try:
            out = git(self.root, "--git-dir", str(self.remote), "log", "--format=%s", "main")
        except subprocess.CalledProcessError:
            return []
        return out.splitlines()

    def checkout(self, name: str) -> Path:
        """Cloud Build's workspace: a clone at the branch's head."""
        workspace = self.root / name
        git(self.root, "clone", "-q", str(self.remote), str(workspace))
        return workspace


def run_steps(
    workspace: Path, root: Path, *, only: set[str] | None = None, wait: bool = True
) -> subprocess.Popen[str] | None:
    """Run cloudbuild.yaml's steps in order (their waitFor is a chain here); returns the
    last process when ``wait`` is False."""
    head = git(workspace, "rev-parse", "HEAD")
    values = {
        "BRANCH_NAME": "main",
        "COMMIT_SHA": head,
        "SHORT_SHA": head[:7],
        "PROJECT_ID": "test-project",
        "_REPO_URL": str(root / "remote.git"),
    }
    document, base_env, substitute = prepare(workspace / "cloudbuild.yaml", workspace, root, values)
    process = None
    for step in document["steps"]:
        if only is not None and step["id"] not in only:
            continue
        env = {**base_env, **dict(substitute(e).split("=", 1) for e in step.get("env", []))}
        command = [step.get("entrypoint", "bash"), *[substitute(a) for a in step["args"]]]
        process = subprocess.Popen(
            command,
            cwd=workspace,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if not wait and step is document["steps"][-1]:
            return process
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"step {step['id']} failed:\n{out[-3000:]}\n{err[-3000:]}"
    return process


def generated_at(hosted: Hosted, ref: str = "main") -> dict[str, str]:
    listing = git(
        hosted.root,
        "--git-dir",
        str(hosted.remote),
        "ls-tree",
        "-r",
        "--name-only",
        ref,
        "generated",
    )
    return {
        name: git(hosted.root, "--git-dir", str(hosted.remote), "show", f"{ref}:{name}")
        for name in listing.splitlines()
    }


@pytest.mark.slow
def test_merge_pipeline_verifies_commits_once_and_survives_a_race(
    upstream: Server, tmp_path: Path
) -> None:
    hosted = Hosted(tmp_path, upstream)
    first = hosted.checkout("build-1")
    run_steps(first, tmp_path)
    # The registry was verified and the generated files committed back, once.
    assert hosted.log()[0].startswith("pipgate: generated files for ")
    assert hosted.log()[0].endswith("[skip ci]") and hosted.log()[1] == "first approvals"
    files = generated_at(hosted)
    assert "generated/py311/requirements.txt" in files and "generated/pip.conf" in files
    assert "chain-a==1.0" in files["generated/py311/requirements.txt"]
    registry_files = sorted(p.name for p in (hosted.registry / "files").iterdir())
    assert [n.split("-")[0] for n in registry_files] == ["chain_a", "chain_b", "chain_c"]

    # The pipeline's own commit (or any later run with nothing new) commits nothing.
    again = hosted.checkout("build-2")
    run_steps(again, tmp_path)
    assert len(hosted.log()) == 2

    # Two runs of the same merge race to commit back: one commit, nothing lost.
    hosted.merge("approve cycle-x", "chain-a==1.0", "cycle-x==1.0")
    racers = [hosted.checkout("race-a"), hosted.checkout("race-b")]
    for workspace in racers:
        run_steps(
            workspace,
            tmp_path,
            only={"validate", "lock-py311", "lock-py312", "audit-py311", "audit-py312", "sync"},
        )
    started = [run_steps(w, tmp_path, only={"commit-back"}, wait=False) for w in racers]
    processes = [p for p in started if p is not None]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    log = hosted.log()
    assert log[0].startswith("pipgate: generated files") and log[1] == "approve cycle-x"
    assert sum(s.startswith("pipgate: generated files") for s in log) == 2  # one per merge
    assert "cycle-x==1.0" in generated_at(hosted)["generated/py311/requirements.txt"]
    # The end state, not which racer won: both may push the very same commit (same tree,
    # parent and second), or one may find the work done. Each says one of the two, and the
    # generated files at the tip are those of this merge, complete.
    for out, _ in outputs:
        assert "commit-back: pushed" in out or "already holds these generated files" in out, out
    generated = generated_at(hosted)
    assert "chain-a==1.0" in generated["generated/py311/requirements.txt"]
    assert "cycle-x==1.0" in generated["generated/py312/requirements.txt"]
    assert "generated/pip.conf" in generated and "generated/sync-state.json" in generated


@pytest.mark.slow
def test_a_run_overtaken_by_a_newer_merge_does_not_commit_stale_files(
    upstream: Server, tmp_path: Path
) -> None:
    hosted = Hosted(tmp_path, upstream)
    slow = hosted.checkout("slow-build")
    run_steps(
        slow,
        tmp_path,
        only={"validate", "lock-py311", "lock-py312", "audit-py311", "audit-py312", "sync"},
    )
    newer = hosted.merge("approve diamond-top", "chain-a==1.0", "diamond-top==1.0")
    run_steps(slow, tmp_path, only={"commit-back"})
    assert git(tmp_path, "--git-dir", str(hosted.remote), "rev-parse", "main") == newer
    assert hosted.log()[0] == "approve diamond-top"
    # The newer merge's own run then commits its files.
    run_steps(hosted.checkout("newer-build"), tmp_path)
    assert hosted.log()[0].startswith("pipgate: generated files")
    assert "diamond-top==1.0" in generated_at(hosted)["generated/py311/requirements.txt"]


@pytest.mark.slow
def test_commit_back_from_a_workspace_without_git(upstream: Server, tmp_path: Path) -> None:
    """Cloud Build may hand the build the sources without .git: commit-back clones."""
    hosted = Hosted(tmp_path, upstream)
    built = hosted.checkout("build")
    run_steps(
        built,
        tmp_path,
        only={"validate", "lock-py311", "lock-py312", "audit-py311", "audit-py312", "sync"},
    )
    head = git(built, "rev-parse", "HEAD")
    plain = tmp_path / "archive-workspace"
    shutil.copytree(built, plain, ignore=shutil.ignore_patterns(".git"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "BRANCH_NAME": "main",
        "COMMIT_SHA": head,
        "REPO_URL": str(hosted.remote),
    }
    result = subprocess.run(
        ["bash", "pipelines/commit-back.sh"],
        cwd=plain,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert hosted.log()[0] == f"pipgate: generated files for {head[:7]} [skip ci]"
    assert "chain-a==1.0" in generated_at(hosted)["generated/py311/requirements.txt"]
    missing = subprocess.run(
        ["bash", "pipelines/commit-back.sh"],
        cwd=plain,
        env={k: v for k, v in env.items() if k != "REPO_URL"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0 and "set REPO_URL" in missing.stderr
