"""Every command that takes ``--format json`` prints one JSON document, naming itself, on
standard output: run in turn, as a pipeline would, on the test universe. The commands
come from the parser itself, so a command added without a case here fails the test."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from pipgate.cli.parser import build
from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.e2e.test_artifact_registry import REGISTRY
from tests.universe import Server

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"


def commands_with_json() -> set[str]:
    parser = build()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        name
        for name, command in sub.choices.items()
        if any("--format" in a.option_strings for a in command._actions)
    }


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_every_command_prints_one_json_document(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    audit = f"  audit:\n    database: {OSV_DATA}\n    max_data_age_days: 0\n"
    allowlist.write("config.yaml", config_text(upstream.url) + audit)
    allowlist.write("team.yaml", entries("diamond-top==1.0", "bump-me==1.0"))
    repo = allowlist.path.parent
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    at = ("--allowlist", str(allowlist.path))
    cache = ("--cache", str(tmp_path / "cache"))
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "private_key": "not a real key"}))
    composer = AllowlistDir(tmp_path / "composer" / "allowlist")
    composer.write("config.yaml", config_text(upstream.url, registry=REGISTRY))
    (tmp_path / "osv-out").mkdir()
    runs = {
        "validate": at,
        "lock": at,
        "check": at,
        "audit": at,
        "download": (*at, *cache),
        "upload": (*at, *cache),
        "verify": at,
        "render": (*at, *cache),
        "bundle": (*at, *cache, "--target", "py311"),
        "sync": (*at, *cache),
        "prune": (*at, *cache),
        "review": (*at, *cache, "--base", "HEAD"),
        "outdated": at,
        "bump": (*at, "--all"),
        "pip-conf": ("--allowlist", str(composer.path), "--json-key", str(key)),
        "osv-sync": (str(OSV_DATA), "--output", str(tmp_path / "osv-out" / "export")),
    }
    assert set(runs) == commands_with_json()
    for name, args in runs.items():  # in this order: each after what it needs
        result = run_pipgate(name, *args, "--format", "json", cwd=repo)
        assert result.returncode == 0, (name, result.stdout[-2000:], result.stderr[-2000:])
        document = json.loads(result.stdout)  # one document, nothing else on stdout
        assert isinstance(document, dict), name
        assert document.get("command") == name, (name, sorted(document))
        assert document.get("ok") is True, name
        assert "Traceback" not in result.stderr
