"""``pipgate outdated`` and ``pipgate bump`` against the test universe: bump-me has a newer
release that passes (1.1), one known vulnerable (1.2), one yanked (1.3), one too young
(1.4) and one with no wheel (1.5); its pinned 1.0 is known vulnerable too."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, config_text, run_pipgate
from tests.universe import YANKED, Server, UpstreamFront

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"
RECORD = {
    "schema_version": "1.6.0",
    "id": "PIPGATE-TEST-BUMP",
    "modified": "2024-01-01T00:00:00Z",
    "published": "2024-01-01T00:00:00Z",
    "details": "Synthetic record written by pipgate's tests (not a real advisory).",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "bump-me"}, "versions": ["1.0", "1.2"]}],
}
TEAM = """\
packages:
  # bumped by the tests: everything but the versions must stay as it is
  - name: bump-me   # a comment after the name
    version: "1.0"  # and after the version
    reason: needed by the tests
    requested_by: tests
  - name: Diamond_Base
    version: '1.0'
    reason: needed by the tests
    requested_by: tests
"""


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """The tests' OSV records and one more: bump-me 1.0 and 1.2 are vulnerable."""
    folder = tmp_path / "osv"
    shutil.copytree(OSV_DATA, folder)
    (folder / "synthetic" / "PIPGATE-TEST-BUMP.json").write_text(json.dumps(RECORD))
    return folder


@pytest.fixture
def team(allowlist: AllowlistDir, upstream: Server, database: Path) -> AllowlistDir:
    audit = f"  audit:\n    database: {database}\n    max_data_age_days: 0\n"
    allowlist.write("config.yaml", config_text(upstream.url, min_release_age_days=7) + audit)
    allowlist.write("team.yaml", TEAM)
    return allowlist


def run(allowlist: AllowlistDir, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_pipgate(*args, "--allowlist", str(allowlist.path))
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_outdated_names_the_newest_passing_release_and_why_each_newer_one_fails(
    team: AllowlistDir,
) -> None:
    result = run(team, "outdated", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["outdated"] == 2
    by_name = {e["name"]: e for e in document["entries"]}
    bump_me = by_name["bump-me"]
    assert (bump_me["file"].endswith("team.yaml"), bump_me["line"]) == (True, 3)
    assert bump_me["vulnerabilities"] == ["PIPGATE-TEST-BUMP"]
    assert bump_me["security_fix"] is True
    assert bump_me["newest_passing"]["version"] == "1.1"
    assert bump_me["newest"]["version"] == "1.5"
    assert bump_me["newest"]["refused"] == [
        "no wheel for target py311",
        "no wheel for target py312",
    ]
    releases = {r["version"]: r for r in bump_me["releases"]}
    assert list(releases) == ["1.5", "1.4", "1.3", "1.2", "1.1"]
    assert "under the 7-day minimum age" in releases["1.4"]["refused"][0]
    assert releases["1.3"]["refused"] == ["yanked: wrong files"]
    assert releases["1.2"]["refused"] == ["known vulnerability: PIPGATE-TEST-BUMP"]
    assert releases["1.2"]["vulnerabilities"] == ["PIPGATE-TEST-BUMP"]
    assert releases["1.1"] == {
        "version": "1.1",
        "passes": True,
        "refused": [],
        "vulnerabilities": [],
    }
    diamond = by_name["diamond-base"]
    assert diamond["newest_passing"]["version"] == "3.0"
    assert (diamond["vulnerabilities"], diamond["security_fix"]) == ([], False)
    text = run(team, "outdated")
    assert text.returncode == 0
    assert "bump-me 1.0 -> 1.1 (known vulnerable: PIPGATE-TEST-BUMP); newest 1.5: no wheel" in (
        text.stdout
    )
    assert "2 of 2 entries have a newer release that passes the policy" in text.stdout


def test_bump_writes_the_passing_version_and_nothing_else(team: AllowlistDir) -> None:
    path = team.path / "team.yaml"
    result = run(team, "bump", "--only-security", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    bumped = json.loads(result.stdout)["bumped"]
    assert [(b["name"], b["from"], b["to"], b["line"]) for b in bumped] == [
        ("bump-me", "1.0", "1.1", 4)
    ]
    assert path.read_text() == TEAM.replace('version: "1.0"', 'version: "1.1"')
    result = run(team, "bump", "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert path.read_text() == TEAM.replace('version: "1.0"', 'version: "1.1"').replace(
        "version: '1.0'", "version: '3.0'"
    )
    assert "diamond-base 1.0 -> 3.0" in result.stdout
    valid = run(team, "validate")
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_bump_by_name_with_and_without_a_version(team: AllowlistDir) -> None:
    path = team.path / "team.yaml"
    assert run(team, "bump", "diamond-base").returncode == 0
    assert "version: '3.0'" in path.read_text()
    assert run(team, "bump", "Diamond.Base", "2.0").returncode == 0
    assert path.read_text() == TEAM.replace("version: '1.0'", "version: '2.0'")


def test_bump_refuses_without_touching_the_file(team: AllowlistDir, upstream: Server) -> None:
    path = team.path / "team.yaml"
    before = path.read_bytes()
    unknown = run(team, "bump", "no-such-entry")
    assert unknown.returncode == 2
    assert "no allowlist entry named 'no-such-entry'" in unknown.stderr
    neither = run(team, "bump")
    assert neither.returncode == 2 and "--all or --only-security" in neither.stderr
    bad = run(team, "bump", "bump-me", "not a version")
    assert bad.returncode == 2 and "is not a version" in bad.stderr
    # With no newer release that passes (a cooldown longer than any release's age), a named
    # bump is the policy saying no: exit 1, with the reasons.
    team.write("config.yaml", config_text(upstream.url, min_release_age_days=100000))
    refused = run(team, "bump", "bump-me", "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "no newer release passes the policy: bump-me:" in refused.stderr
    assert path.read_bytes() == before


def test_outdated_fails_closed_when_the_vulnerability_data_does_not_answer(
    team: AllowlistDir, upstream: Server
) -> None:
    audit = "  audit:\n    service: osv\n    url: http://127.0.0.1:9/v1/query\n"
    team.write("config.yaml", config_text(upstream.url, min_release_age_days=7) + audit)
    result = run(team, "outdated", "--format", "json")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "newest_passing" not in result.stdout


def test_a_hostile_yank_reason_is_quoted_as_one_printable_line(
    allowlist: AllowlistDir, universe_index: Server, database: Path
) -> None:
    reason = "\x1b[2J\x1b[32mall clear\nbump-me 1.0 -> 9.9 (allowlist/team.yaml:3)" + "x" * 5000
    front = UpstreamFront(universe_index, {**YANKED, "bump_me-1.3-py3-none-any.whl": reason})
    try:
        audit = f"  audit:\n    database: {database}\n    max_data_age_days: 0\n"
        upstream = front.server().url
        allowlist.write("config.yaml", config_text(upstream, min_release_age_days=7) + audit)
        allowlist.write("team.yaml", TEAM)
        text = run(allowlist, "outdated", "bump-me", "--verbose")
        as_json = run(allowlist, "outdated", "bump-me", "--format", "json")
    finally:
        front.stop()
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    assert "\x1b" not in text.stdout
    [line] = [line for line in text.stdout.splitlines() if "all clear" in line]
    assert line.startswith("    1.3: yanked:  [2J [32mall clear bump-me 1.0 -> 9.9")
    assert not any(line.startswith("bump-me 1.0 -> 9.9") for line in text.stdout.splitlines())
    releases = json.loads(as_json.stdout)["entries"][0]["releases"]
    [yanked] = [r for r in releases if r["version"] == "1.3"]
    assert yanked["refused"][0].startswith("yanked:  [2J [32mall clear bump-me")
    assert len(yanked["refused"][0]) < 300
