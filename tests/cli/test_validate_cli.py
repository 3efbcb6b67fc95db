"""`pipgate validate` as a user runs it: exit codes, file:line output, JSON, no traceback."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ALLOWLIST, REPO, AllowlistDir, run_pipgate

LINE = re.compile(r"^(?P<file>[^:\n]+\.ya?ml):(?P<line>[0-9]+): (?P<message>.+)$")


def test_example_allowlist_validates_from_the_repository_root() -> None:
    result = run_pipgate("validate", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("allowlist/ is valid:")
    assert "targets py311, py312" in result.stdout


def test_console_script_and_module_agree() -> None:
    script = shutil.which("pipgate", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    module = run_pipgate("--version")
    assert result.returncode == module.returncode == 0
    assert result.stdout == module.stdout and result.stdout.startswith("pipgate ")


def test_json_for_a_valid_allowlist() -> None:
    result = run_pipgate("validate", "--allowlist", str(EXAMPLE_ALLOWLIST), "--format", "json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["problems"] == []
    assert document["summary"]["targets"] == ["py311", "py312"]
    assert document["summary"]["packages"] >= 3


BAD_INPUTS = {
    "not UTF-8": b"packages:\n  - name: caf\xe9\n",
    "duplicate key": b'packages:\n  - name: a\n    name: b\n    version: "1"\n',
    "tab": b'packages:\n  - name: a\n\tversion: "1"\n',
    "several documents": b"packages: []\n---\npackages: []\n",
    "tag": b"packages: !!python/object/apply:os.system ['true']\n",
    "alias bomb": b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a]\n',
    "too large": b"packages: []\n" + b"#" * (1024 * 1024 + 10) + b"\n",
    "unknown key": b'packages:\n  - name: a\n    version: "1"\n    reason: r\n    requestd_by: x\n',
    "number version": b"packages:\n  - name: a\n    version: 1.10\n    reason: r\n"
    b"    requested_by: x\n",
    "range": b'packages:\n  - name: a\n    version: ">=1"\n    reason: r\n    requested_by: x\n',
    "option": b'packages:\n  - name: "--index-url=https://evil.example/simple"\n'
    b'    version: "1"\n    reason: r\n    requested_by: x\n',
    "undefined target": b'packages:\n  - name: a\n    version: "1"\n    reason: r\n'
    b"    requested_by: x\n    targets: [py27]\n",
    "expired exception": None,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_file_and_line(allowlist: AllowlistDir, case: str) -> None:
    data = BAD_INPUTS[case]
    if data is None:
        allowlist.write(
            "exceptions.yaml",
            """\
            vulnerabilities:
              - id: PYSEC-2023-74
                package: requests
                reason: old
                approved_by: security
                expires: 2021-01-01
            """,
        )
    else:
        allowlist.write_bytes("team.yaml", data)
    result = run_pipgate("validate", "--allowlist", str(allowlist.path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    for line in lines:
        match = LINE.match(line)
        assert match is not None, line
        assert int(match["line"]) >= 1
    assert "problem" in result.stderr


def test_json_lists_each_problem(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        """\
        packages:
          - name: requests
            version: v2
            reason: x
            requested_by: y
          - name: "-e ."
            version: "1.0"
            reason: x
            requested_by: y
        """,
    )
    result = run_pipgate("validate", "--allowlist", str(allowlist.path), "--format", "json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False
    problems = document["problems"]
    assert [(Path(p["file"]).name, p["line"]) for p in problems] == [
        ("team.yaml", 3),
        ("team.yaml", 6),
    ]
    assert "starts with 'v'" in problems[0]["message"]
    assert "pip option" in problems[1]["message"]
    assert all(set(p) == {"file", "line", "column", "message", "hint"} for p in problems)


def test_missing_folder_exits_2_with_a_hint(tmp_path: Path) -> None:
    result = run_pipgate("validate", "--allowlist", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "allowlist folder not found" in result.stderr and "--allowlist" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_folder_json(tmp_path: Path) -> None:
    result = run_pipgate("validate", "--allowlist", str(tmp_path / "absent"), "--format", "json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["exit_code"] == 2


def test_usage_error_exits_2() -> None:
    result = run_pipgate("validate", "--format", "xml")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_credentials_never_printed(allowlist: AllowlistDir) -> None:
    config = (allowlist.path / "config.yaml").read_text(encoding="utf-8")
    allowlist.write(
        "config.yaml",
        config.replace(
            "registry: file://.registry",
            "registry: https://ci:hunter2-token@registry.example.invalid/",
        ),
    )
    result = run_pipgate("validate", "--allowlist", str(allowlist.path), "--format", "json")
    assert result.returncode == 2
    assert "hunter2" not in result.stdout + result.stderr
    assert "<hidden>@registry.example.invalid" in result.stdout


def test_unreadable_file_is_reported_not_raised(allowlist: AllowlistDir) -> None:
    (allowlist.path / "broken.yaml").symlink_to(allowlist.path / "nowhere.yaml")
    result = run_pipgate("validate", "--allowlist", str(allowlist.path))
    # A dangling link is not a file: it is not read, and the rest still validates.
    assert result.returncode == 0, result.stdout + result.stderr
