"""`pipgate review --base REF`: the report a reviewer decides on, from a real git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.universe import Server

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return result.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", message)


def lock(allowlist: AllowlistDir) -> None:
    result = run_pipgate("lock", "--allowlist", str(allowlist.path))
    assert result.returncode == 0, result.stdout + result.stderr


def base_repository(allowlist: AllowlistDir, upstream: Server, *specs: str) -> None:
    """A git repository whose main branch approves ``specs``, locked."""
    repo = allowlist.path.parent
    allowlist.write("config.yaml", config_text(upstream.url, min_release_age_days=7))
    allowlist.write("team.yaml", entries(*specs))
    lock(allowlist)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")


def line_of(path: Path, name: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.strip() == f"- name: {name}")


def test_review_reports_vulnerable_typosquat_and_sdist_with_file_and_line(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    base_repository(allowlist, upstream, "chain-a==1.0")
    request = allowlist.write(
        "request.yaml",
        entries(
            "uses-old-certifi==1.0",
            "requets==1.0",
            "sdist-only==1.0",
            sdist_only__sdist="true",
        ),
    )
    lock(allowlist)
    report_file = tmp_path / "review.md"
    result = review(allowlist, tmp_path, "--report", str(report_file))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    markdown = result.stdout
    assert report_file.read_text() == markdown
    assert markdown.startswith("## pipgate review against `main`\n\n**FAIL: policy says no (")
    where = "allowlist/request.yaml"
    # the vulnerable package, pulled in by an entry: its advisory and the entry's line
    vulnerable = next(line for line in markdown.splitlines() if "certifi==2022.12.7" in line)
    assert "PYSEC-2023-135" in vulnerable and "**not accepted**" in vulnerable
    assert f"{where}:{line_of(request, 'uses-old-certifi')}" in vulnerable
    assert "via uses-old-certifi > certifi" in vulnerable
    # the typosquat
    squat = next(line for line in markdown.splitlines() if "| typosquat |" in line)
    assert f"{where}:{line_of(request, 'requets')}" in squat and "'requests'" in squat
    # the sdist-only package
    sdist = next(line for line in markdown.splitlines() if line.startswith("| **sdist-only**"))
    assert "sdist: built on install" in sdist
    assert f"{where}:{line_of(request, 'sdist-only')}" in sdist
    # what was already there is not news
    assert "chain-a" not in markdown
    document = json.loads(review(allowlist, tmp_path, "--format", "json").stdout)
    assert document["ok"] is False
    kinds = {(c["package"], c["kind"], c["top_level"]) for c in document["changes"]}
    assert {
        ("uses-old-certifi", "added", True),
        ("certifi", "added", False),
        ("requets", "added", True),
        ("sdist-only", "added", True),
    } == kinds
    assert [v["id"] for v in document["vulnerabilities"]] == ["PYSEC-2023-135"]
    entry = next(c for c in document["changes"] if c["package"] == "certifi")["entry"]
    assert (entry["file"].endswith("request.yaml"), entry["line"]) == (
        True,
        line_of(request, "uses-old-certifi"),
    )


def test_review_of_a_clean_change_passes_and_shows_versions(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    base_repository(allowlist, upstream, "diamond-top==1.0", "chain-a==1.0")
    allowlist.write("team.yaml", entries("diamond-top==1.0", "cycle-x==1.0"))
    lock(allowlist)
    result = review(allowlist, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "**PASS: ready for review: 2 added, 0 changed, 3 removed;" in result.stdout
    assert "### Removed (3)" in result.stdout and "| chain-a | 1.0 |" in result.stdout
    assert "<summary>Transitive: 1 packages the requested ones need</summary>" in result.stdout


def test_review_refuses_a_stale_lock_and_a_bad_ref(
    allowlist: AllowlistDir, upstream: Server
) -> None:
    base_repository(allowlist, upstream, "chain-a==1.0")
    bad = run_pipgate("review", "--allowlist", str(allowlist.path), "--base", "no-such-branch")
    assert bad.returncode == 2 and "git cannot read no-such-branch" in bad.stderr
    option = run_pipgate("review", "--allowlist", str(allowlist.path), "--base=--output=x")
    assert option.returncode == 2 and "is not a git ref" in option.stderr


def test_a_stale_lock_is_locked_for_the_review_and_generated_is_left_as_it_is(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    base_repository(allowlist, upstream, "chain-a==1.0")
    lock_file = allowlist.path.parent / "generated" / "py311" / "requirements.txt"
    before = lock_file.read_bytes()
    allowlist.write("team.yaml", entries("chain-a==1.0", "cycle-x==1.0"))
    result = review(allowlist, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "**PASS: ready for review: 2 added, 0 changed, 0 removed;" in result.stdout
    assert "| **cycle-x** |" in result.stdout
    assert lock_file.read_bytes() == before


def review(allowlist: AllowlistDir, tmp_path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return run_pipgate(
        "review", "--allowlist", str(allowlist.path), "--base", "main",
        "--database", str(OSV_DATA), "--max-data-age-days", "0",
        "--cache", str(tmp_path / "cache"), *more,
    )  # fmt: skip


def test_a_pull_request_whose_lock_fails_still_gets_the_whole_report(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    base_repository(allowlist, upstream, "chain-a==1.0")
    # No lock is run: in the pull-request check the lock step fails on sdist-only (no wheel
    # under sdists: deny), and the review must still say all three things.
    request = allowlist.write(
        "request.yaml", entries("sdist-only==1.0", "uses-old-certifi==1.0", "requets==1.0")
    )
    result = review(allowlist, tmp_path, "--report", str(tmp_path / "review.md"))
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    markdown = result.stdout
    assert (tmp_path / "review.md").read_text() == markdown
    assert "**FAIL: policy says no (1 lock-failed, 1 typosquat, 1 vulnerability)" in markdown
    where = "allowlist/request.yaml"
    failed = next(line for line in markdown.splitlines() if "sdist-only==1.0 has no wheel" in line)
    assert f"{where}:{line_of(request, 'sdist-only')}" in failed
    assert "allow building it from its sdist" in failed
    assert "the entries named here are not in it" in markdown
    # Where the vulnerability data came from, with its size and age.
    assert "Vulnerability data: offline OSV export" in markdown and "newest 2024-" in markdown
    vulnerable = next(line for line in markdown.splitlines() if "certifi==2022.12.7" in line)
    assert "PYSEC-2023-135" in vulnerable
    assert f"{where}:{line_of(request, 'uses-old-certifi')}" in vulnerable
    squat = next(line for line in markdown.splitlines() if "| typosquat |" in line)
    assert f"{where}:{line_of(request, 'requets')}" in squat
    # The failure first: before the findings and the inventories.
    assert markdown.index("The lock could not be made") < markdown.index("Policy findings")
    document = json.loads(review(allowlist, tmp_path, "--format", "json").stdout)
    # One per target: each says which target has no wheel.
    failures = document["lock_failures"]
    assert sorted(t for f in failures for t in f["targets"]) == ["py311", "py312"]
    assert {(f["package"], f["kind"], f["line"]) for f in failures} == {
        ("sdist-only", "policy", line_of(request, "sdist-only"))
    }
    assert document["unlocked_targets"] == []


def test_a_version_that_does_not_exist_is_input_with_the_report_and_exit_2(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    base_repository(allowlist, upstream, "chain-a==1.0")
    request = allowlist.write("request.yaml", entries("cycle-x==9.9"))
    result = review(allowlist, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr[-3000:]
    failed = next(line for line in result.stdout.splitlines() if "no release 9.9" in line)
    assert f"allowlist/request.yaml:{line_of(request, 'cycle-x')}" in failed
    assert "**FAIL: policy says no (1 lock-failed)" in result.stdout


def test_a_pull_request_that_edits_generated_is_refused_naming_the_files(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    # Only the merge pipeline writes generated/: a pull request that adds an extra index to
    # the consumers' pip.conf, or touches a lock by hand, fails the review.
    base_repository(allowlist, upstream, "chain-a==1.0")
    repo = allowlist.path.parent
    git(repo, "checkout", "-q", "-b", "request")
    (repo / "generated" / "pip.conf").write_text(
        "[global]\nindex-url = https://evil.example.invalid/simple/\n"
    )
    lock_file = repo / "generated" / "py311" / "requirements.txt"
    lock_file.write_text(lock_file.read_text() + "# edited by hand\n")
    commit_all(repo, "pin pip at another index")
    # What the check's own steps write in the work tree is no commit, and is not counted.
    (repo / "generated" / "py312" / "scratch.txt").write_text("written by a pipeline step\n")
    result = review(allowlist, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "generated-edited" in result.stdout and "### Changes to generated/ (refused)" in (
        result.stdout
    )
    assert "`generated/pip.conf`" in result.stdout
    assert "`generated/py311/requirements.txt`" in result.stdout
    assert "scratch.txt" not in result.stdout
    document = json.loads(review(allowlist, tmp_path, "--format", "json").stdout)
    assert document["generated_edits"] == ["generated/pip.conf", "generated/py311/requirements.txt"]
