"""The Cloud Build files: the structure Cloud Build requires, and what each may touch."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipgate.allowlist import load
from tests.conftest import EXAMPLE_ALLOWLIST, REPO

PIPELINES = {
    "merge": REPO / "cloudbuild.yaml",
    "pr": REPO / "pipelines" / "pr-check.cloudbuild.yaml",
    "reaudit": REPO / "pipelines" / "reaudit.cloudbuild.yaml",
    "osv-sync": REPO / "pipelines" / "osv-sync.cloudbuild.yaml",
    "outdated": REPO / "pipelines" / "outdated.cloudbuild.yaml",
}
STEP_KEYS = {
    "id", "name", "args", "entrypoint", "waitFor", "env", "secretEnv", "dir", "timeout",
    "allowFailure",
}  # fmt: skip
TOP_KEYS = {"steps", "substitutions", "options", "availableSecrets", "timeout", "artifacts"}
BUILT_IN = {"PROJECT_ID", "BUILD_ID", "BRANCH_NAME", "COMMIT_SHA", "SHORT_SHA", "REPO_NAME"}
PR_BUILT_IN = {"_BASE_BRANCH", "_HEAD_BRANCH", "_PR_NUMBER", "_HEAD_REPO_URL"}
# Cloud Build replaces $NAME and ${NAME}; a shell's own $ must be written $$.
SUBSTITUTION = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$))"
)


def pipeline(name: str) -> dict[str, Any]:
    document = yaml.safe_load(PIPELINES[name].read_text())
    assert isinstance(document, dict)
    return document


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    return []


def nox_sessions() -> set[str]:
    text = (REPO / "noxfile.py").read_text()
    sessions = set()
    for options, function in re.findall(r"@nox\.session\(([^)]*)\)\ndef (\w+)\(", text):
        named = re.search(r'name="([\w-]+)"', options)
        sessions.add(named.group(1) if named else function)
    return sessions


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_structure_cloud_build_accepts(name: str) -> None:
    document = pipeline(name)
    assert set(document) <= TOP_KEYS
    steps = document["steps"]
    assert isinstance(steps, list) and steps
    seen: list[str] = []
    for step in steps:
        assert set(step) <= STEP_KEYS, step
        assert isinstance(step["id"], str) and step["id"] not in seen
        assert isinstance(step["name"], str) and step["name"]
        assert isinstance(step["args"], list) and all(isinstance(a, str) for a in step["args"])
        for dependency in step.get("waitFor", []):
            assert dependency == "-" or dependency in seen, (step["id"], dependency)
        seen.append(step["id"])
    substitutions = document.get("substitutions", {})
    assert all(re.fullmatch(r"_[A-Z0-9_]+", key) for key in substitutions)
    allowed = BUILT_IN | set(substitutions) | (PR_BUILT_IN if name == "pr" else set())
    for step in steps:
        assert isinstance(step.get("allowFailure", False), bool)
    artifacts = document.get("artifacts", {})
    assert set(artifacts) <= {"objects"}
    if artifacts:
        assert artifacts["objects"]["location"].startswith("gs://")
        assert all(isinstance(p, str) for p in artifacts["objects"]["paths"])
    checked = strings(steps) + strings(document.get("availableSecrets", {})) + strings(artifacts)
    for text in checked:
        for match in SUBSTITUTION.finditer(text):
            used = match["braced"] or match["plain"]
            if used is not None:
                assert used in allowed, f"{name}: ${used} is no substitution Cloud Build knows"
    assert "CI=true" in document["options"]["env"]


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_defined_substitution_is_used(name: str) -> None:
    # Cloud Build's default substitution checking rejects a build whose trigger defines a
    # substitution no step uses (ALLOW_LOOSE is not set here).
    document = pipeline(name)
    used = {
        match["braced"] or match["plain"]
        for text in strings(document["steps"])
        + strings(document.get("availableSecrets", {}))
        + strings(document.get("artifacts", {}))
        for match in SUBSTITUTION.finditer(text)
    }
    assert "substitutionOption" not in str(document.get("options", {}))
    unused = sorted(set(document.get("substitutions", {})) - used)
    assert unused == [], f"{name}: defined and never used: {unused}"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_nox_session_exists(name: str) -> None:
    sessions = nox_sessions()
    used = {
        m for text in strings(pipeline(name)["steps"]) for m in re.findall(r"nox -s ([\w-]+)", text)
    }
    assert used and used <= sessions


@pytest.mark.parametrize("name", ["merge", "pr"])
def test_each_target_locks_and_audits_in_its_own_python(name: str) -> None:
    steps = {s["id"]: s for s in pipeline(name)["steps"]}
    for target in load(EXAMPLE_ALLOWLIST).config.targets:
        for kind in ("lock", "audit"):
            step = steps[f"{kind}-{target.name}"]
            assert step["name"] == f"python:{target.python}-slim"
            command = " ".join(step["args"])
            assert f"--force-python {target.python} -- --target {target.name}" in command
    # The per-target locks run in parallel: each waits only for validation.
    locks = [s for s in steps.values() if s["id"].startswith("lock-")]
    assert len(locks) >= 2 and all(s["waitFor"] == ["validate"] for s in locks)


def test_the_pull_request_review_runs_whatever_the_steps_before_it_did() -> None:
    document = pipeline("pr")
    *before, last = document["steps"]
    assert last["id"] == "review" and "allowFailure" not in last
    # Each earlier step may fail without stopping the build; the review decides the check.
    assert all(step.get("allowFailure") is True for step in before)
    assert set(last["waitFor"]) == {s["id"] for s in before if s["id"] in _leaves(before)}
    assert "--report /workspace/review.md" in " ".join(last["args"])
    assert document["artifacts"]["objects"]["paths"] == ["review.md"]


def _leaves(steps: list[dict[str, Any]]) -> set[str]:
    """The steps no other step waits for."""
    waited = {d for s in steps for d in s.get("waitFor", [])}
    return {s["id"] for s in steps} - waited


def test_merge_pipeline_commits_only_after_a_verified_sync() -> None:
    document = pipeline("merge")
    ids = [s["id"] for s in document["steps"]]
    assert ids[-2:] == ["sync", "commit-back"]
    commit = document["steps"][-1]
    assert commit["waitFor"] == ["sync"] and commit["secretEnv"] == ["GIT_TOKEN"]
    assert commit["args"] == ["pipelines/commit-back.sh"]
    sync = document["steps"][-2]
    assert set(sync["waitFor"]) == {s for s in ids if s.startswith("audit-")}
    [secret] = document["availableSecrets"]["secretManager"]
    assert secret["env"] == "GIT_TOKEN" and secret["versionName"].startswith(
        "projects/$PROJECT_ID/"
    )
    # Only the commit-back step sees the token.
    assert [s["id"] for s in document["steps"] if "secretEnv" in s] == ["commit-back"]


@pytest.mark.parametrize("name", ["pr", "reaudit", "outdated"])
def test_read_only_pipelines_hold_no_secret_and_publish_nothing(name: str) -> None:
    document = pipeline(name)
    assert "availableSecrets" not in document
    text = " ".join(strings(document["steps"]))
    assert all("secretEnv" not in step for step in document["steps"])
    for forbidden in ("upload", "sync", "prune", "commit-back", "git push", "GIT_TOKEN"):
        assert forbidden not in text, forbidden


def test_the_daily_run_verifies_the_registry() -> None:
    commands = [" ".join(step["args"]) for step in pipeline("reaudit")["steps"]]
    assert any("nox -s verify" in c and "--apply" not in c for c in commands)


def test_no_key_file_anywhere() -> None:
    for path in PIPELINES.values():
        text = path.read_text()
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in text
        assert "private_key" not in text and ".json" not in text


def codeowners() -> list[tuple[str, list[str]]]:
    return [
        (line.split()[0], line.split()[1:])
        for line in (REPO / "CODEOWNERS").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def owners_of(path: str) -> list[str]:
    """GitHub's rule for an anchored pattern: the last line that matches wins."""
    found: list[str] = []
    for pattern, owners in codeowners():
        anchored = pattern.lstrip("/")
        if (pattern.endswith("/") and path.startswith(anchored)) or path == anchored:
            found = owners
    return found


def test_codeowners_give_allowlist_to_security_and_generated_to_the_pipeline() -> None:
    rules = dict(codeowners())
    assert rules["/allowlist/"] == ["@ORG/security"]
    assert rules["/generated/"] == ["@ORG/pipgate-pipeline"]
    assert owners_of("generated/py311/requirements.txt") == ["@ORG/pipgate-pipeline"]


def test_every_file_that_decides_what_gets_in_needs_security() -> None:
    # The policy code, its pins, the pipelines and CI decide what gets in as much as the
    # allowlist does: a change to any of them needs security's approval.
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    deciding = [
        path
        for path in tracked
        if path.startswith(("allowlist/", "tools/", "requirements/", ".ci/", "pipelines/"))
        or path in ("noxfile.py", "pyproject.toml", "cloudbuild.yaml", "CODEOWNERS")
    ]
    assert any(p.startswith("tools/pipgate/policy") for p in deciding)
    unguarded = [path for path in deciding if "@ORG/security" not in owners_of(path)]
    assert unguarded == []


def hashed_pins(path: Path) -> dict[str, str]:
    """Every pin of a hashed requirements file; each must carry a sha256."""
    text = path.read_text()
    blocks = re.split(r"^(?=[a-z0-9][a-z0-9._-]*==)", text, flags=re.MULTILINE)
    pins = {}
    for block in blocks[1:]:
        name, version = block.split(" ", 1)[0].strip().split("==")
        assert "--hash=sha256:" in block, f"{path.name}: {name} has no hash"
        pins[name] = version
    return pins


def test_the_pipelines_install_their_tools_by_hash() -> None:
    constraints = dict(
        line.split("==", 1)
        for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    tool = hashed_pins(REPO / "requirements" / "tool.txt")
    nox_set = hashed_pins(REPO / "requirements" / "pipeline.txt")
    assert "nox" in nox_set and {"pip-tools", "pip-audit", "twine", "uv"} <= set(tool)
    # The same versions as the constraints every other session installs with; the build
    # backend is pyproject.toml's own pin.
    for name, version in {**tool, **nox_set}.items():
        if name != "setuptools":
            assert constraints[name].strip() == version, name
    backend = re.search(
        r'requires = \["setuptools==([^"]+)"\]', (REPO / "pyproject.toml").read_text()
    )
    assert backend is not None and tool["setuptools"] == backend[1]
    for name in PIPELINES:
        for step in pipeline(name)["steps"]:
            command = " ".join(step["args"])
            if "pip install" in command:
                assert "--require-hashes -r requirements/pipeline.txt" in command, step["id"]
                assert "-c requirements/constraints.txt" not in command, step["id"]
    assert "--require-hashes -r requirements/pipeline.txt" in (REPO / ".ci" / "run").read_text()
