"""The automation around the allowlist: Renovate's regex manager (renovate.json) reads
every example entry's name and version; the pre-commit hook's definition."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from pipgate.allowlist import load
from tests.unit.test_bump import EXAMPLES, entries_of

ROOT = Path(__file__).resolve().parents[2]
RENOVATE = json.loads((ROOT / "renovate.json").read_text())
[MANAGER] = RENOVATE["customManagers"]


def js_to_python(pattern: str) -> re.Pattern[str]:
    """Renovate's regexes are JavaScript's: ``(?<name>...)`` is Python's ``(?P<name>...)``."""
    return re.compile(pattern.replace("(?<", "(?P<"))


def test_the_regex_captures_every_example_entry_and_nothing_else() -> None:
    [match_string] = MANAGER["matchStrings"]
    pattern = js_to_python(match_string)
    total = 0
    for path in EXAMPLES:
        found = [(m["depName"], m["currentValue"]) for m in pattern.finditer(path.read_text())]
        assert found == entries_of(path), path
        total += len(found)
    assert total > 300
    assert MANAGER["datasourceTemplate"] == "pypi"
    assert MANAGER["versioningTemplate"] == "pep440"


def test_the_regex_reads_the_shapes_people_write() -> None:
    pattern = js_to_python(MANAGER["matchStrings"][0])
    text = (
        "packages:\n"
        "  - name: bump-me   # a comment\n    version: '1.0'\n"
        '  -   name: "Zope.Interface"\n    version: 7.2.0rc1\n'
        "  - name: internal-lib\n    internal: true\n    version: '3.1'\n"
    )
    found = [(m["depName"], m["currentValue"]) for m in pattern.finditer(text)]
    # the third writes a field between name and version: not the documented shape
    assert found == [("bump-me", "1.0"), ("Zope.Interface", "7.2.0rc1")]


def test_renovate_reads_the_allowlist_files_and_waits_out_the_cooldown() -> None:
    [files] = MANAGER["managerFilePatterns"]
    assert files.startswith("/") and files.endswith("/")
    pattern = re.compile(files[1:-1])
    assert pattern.search("allowlist/data.yaml") and pattern.search("allowlist/boot.yml")
    assert not pattern.search("generated/py311/requirements.txt")
    assert not pattern.search("benchmarks/large/allowlist/data-platform.yaml")
    [rule] = RENOVATE["packageRules"]
    days = load(ROOT / "allowlist", expired_is_error=False).config.policy.min_release_age_days
    assert rule["minimumReleaseAge"] == f"{days} days"
    assert RENOVATE["enabledManagers"] == ["custom.regex"]


def test_the_pre_commit_hook_runs_validate_on_allowlist_files() -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "pipgate-validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    assert files.search("allowlist/data.yaml") and files.search("allowlist/config.yaml")
    assert not files.search("generated/sync-state.json")
