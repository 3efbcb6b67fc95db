"""`pipgate check`: the supply-chain policy against the local universe, end to end."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipgate.allowlist import RegistryKind, RegistrySpec
from pipgate.registry import FileRegistry
from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.universe import (
    YANKED,
    Dist,
    Server,
    UpstreamFront,
    build_wheel,
    running,
    start_pypiserver,
)

LICENSES = """\
  licenses:
    deny: [GPL-3.0-only, "License :: OSI Approved :: GNU Affero General Public License v3"]
"""


def locked(
    allowlist: AllowlistDir, upstream_url: str, *specs: str, days: int = 7, **options: str
) -> None:
    config = config_text(upstream_url, min_release_age_days=days) + LICENSES
    allowlist.write("config.yaml", config)
    allowlist.write("team.yaml", entries(*specs, **options))
    result = run_pipgate("lock", "--allowlist", str(allowlist.path), "--target", "py311")
    assert result.returncode == 0, result.stdout + result.stderr


def check(allowlist: AllowlistDir, tmp_path: Path) -> tuple[int, list[dict[str, object]], str]:
    result = run_pipgate(
        "check",
        "--allowlist",
        str(allowlist.path),
        "--target",
        "py311",
        "--format",
        "json",
        "--cache",
        str(tmp_path / "cache"),
    )
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is (result.returncode == 0)
    return result.returncode, document["findings"], result.stderr


def line_of(allowlist: AllowlistDir, name: str) -> int:
    lines = (allowlist.path / "team.yaml").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.strip() == f"- name: {name}")


def summary(findings: list[dict[str, object]]) -> set[tuple[object, ...]]:
    out: set[tuple[object, ...]] = set()
    for f in findings:
        entry = f["entry"]
        assert isinstance(entry, dict)
        out.add((f["rule"], f["severity"], f["package"], entry["name"], entry["line"]))
    return out


def test_clean_lock_passes(allowlist: AllowlistDir, upstream: Server, tmp_path: Path) -> None:
    locked(allowlist, upstream.url, "chain-a==1.0", "diamond-top==1.0")
    code, findings, _ = check(allowlist, tmp_path)
    assert (code, findings) == (0, [])
    text = run_pipgate("check", "--allowlist", str(allowlist.path), "--target", "py311")
    assert text.returncode == 0 and "0 policies broken, 0 warnings" in text.stdout


def test_every_rule_with_file_line_and_chain(
    allowlist: AllowlistDir, upstream: Server, universe_files: Path, tmp_path: Path
) -> None:
    # The internal package is in the private registry, and (the attack) the very same
    # name, version and file upstream.
    wheel = universe_files / "chain_c-1.0-py3-none-any.whl"
    registry = RegistrySpec(
        kind=RegistryKind.FILE, url="file://.registry", path=allowlist.path.parent / ".registry"
    )
    FileRegistry(registry).upload(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
    specs = (
        "uses-fresh==1.0",
        "yanked-pkg==1.0",
        "requets==1.0",
        "quarantined-pkg==1.0",
        "archived-pkg==1.0",
        "needs-gpl==1.0",
        "agpl-classified==1.0",
        "no-license==1.0",
        "chain-c==1.0",
    )
    locked(allowlist, upstream.url, *specs, chain_c__internal="true")
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 1

    def line(name: str) -> int:
        return line_of(allowlist, name)

    assert summary(findings) == {
        ("cooldown", "error", "fresh-pkg", "uses-fresh", line("uses-fresh")),
        ("yanked", "error", "yanked-pkg", "yanked-pkg", line("yanked-pkg")),
        ("typosquat", "error", "requets", "requets", line("requets")),
        ("project-status", "error", "quarantined-pkg", "quarantined-pkg", line("quarantined-pkg")),
        ("project-status", "warning", "archived-pkg", "archived-pkg", line("archived-pkg")),
        ("license", "error", "gpl-pkg", "needs-gpl", line("needs-gpl")),
        ("license", "error", "agpl-classified", "agpl-classified", line("agpl-classified")),
        ("license", "warning", "no-license", "no-license", line("no-license")),
        ("dependency-confusion", "error", "chain-c", "chain-c", line("chain-c")),
    }
    by_rule = {(f["rule"], f["package"], f["entry"]["name"]): f for f in findings}  # type: ignore[index]
    yanked = by_rule[("yanked", "yanked-pkg", "yanked-pkg")]
    assert "broken build, use 1.1" in str(yanked["message"])
    assert by_rule[("cooldown", "fresh-pkg", "uses-fresh")]["chain"] == ["uses-fresh", "fresh-pkg"]
    assert by_rule[("license", "gpl-pkg", "needs-gpl")]["chain"] == ["needs-gpl", "gpl-pkg"]
    assert "'requests'" in str(by_rule[("typosquat", "requets", "requets")]["message"])
    confusion = [f for f in findings if f["rule"] == "dependency-confusion"]
    messages = " ".join(str(f["message"]) for f in confusion)
    assert "also exists upstream" in messages and "takes the internal package" in messages
    assert all(str(f["entry"]["file"]).endswith("team.yaml") for f in findings)  # type: ignore[index]


def test_text_report_names_file_line_and_what_to_do(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, upstream.url, "requets==1.0", "fresh-pkg==1.0")
    result = run_pipgate("check", "--allowlist", str(allowlist.path), "--target", "py311")
    assert result.returncode == 1
    out = result.stdout
    assert f"team.yaml:{line_of(allowlist, 'requets')}: error: requets==1.0 [typosquat]" in out
    assert "not_a_typosquat_of: requests" in out
    fresh = f"team.yaml:{line_of(allowlist, 'fresh-pkg')}: error: fresh-pkg==1.0 [cooldown]"
    assert fresh in out and "under the 7-day minimum age" in out and "cooldown_exempt" in out
    assert "pipgate: error: 2 policies broken" in result.stderr


def test_acknowledged_name_and_exempt_release_pass(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(
        allowlist,
        upstream.url,
        "requets==1.0",
        "fresh-pkg==1.0",
        requets__not_a_typosquat_of="requests",
        fresh_pkg__cooldown_exempt='"fixes a remote code execution, reviewed by security"',
    )
    code, findings, _ = check(allowlist, tmp_path)
    assert (code, findings) == (0, [])


def test_cooldown_of_zero_days_lets_todays_release_in(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, upstream.url, "fresh-pkg==1.0", days=0)
    assert check(allowlist, tmp_path)[:2] == (0, [])


@pytest.fixture
def timeless_upstream(universe_files: Path, tmp_path: Path) -> Iterator[Server]:
    """pypiserver with no front: its pages carry no upload time."""
    with running(start_pypiserver(universe_files, tmp_path / "logs")) as server:
        yield server


def test_no_upload_time_fails_closed_until_the_registry_holds_the_file(
    allowlist: AllowlistDir, timeless_upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, timeless_upstream.url, "chain-c==1.0")
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 1
    assert [(f["rule"], f["package"]) for f in findings] == [("cooldown", "chain-c")]
    assert "gives no upload time" in str(findings[0]["message"])
    cache = str(tmp_path / "cache")
    published = run_pipgate(
        "upload", "--allowlist", str(allowlist.path), "--target", "py311", "--cache", cache
    )
    assert published.returncode == 0, published.stderr
    # Published before, so approved before: its age no longer needs the upstream's word.
    assert check(allowlist, tmp_path)[:2] == (0, [])


def test_licence_check_fetches_by_hash_and_runs_nothing(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, upstream.url, "sdist-only==1.0", sdist_only__sdist="true")
    code, findings, _ = check(allowlist, tmp_path)
    assert (code, findings) == (0, [])  # MIT, read from PKG-INFO in the sdist
    cached = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cached == ["sdist_only-1.0.tar.gz"]
    assert not list((tmp_path / "cache").rglob("*.whl"))


def test_unknown_target_and_missing_lock_are_bad_input(
    allowlist: AllowlistDir, upstream: Server
) -> None:
    allowlist.write("config.yaml", config_text(upstream.url))
    result = run_pipgate("check", "--allowlist", str(allowlist.path))
    assert result.returncode == 2 and "run 'pipgate lock' first" in result.stderr
    unknown = run_pipgate("check", "--allowlist", str(allowlist.path), "--target", "py39")
    assert unknown.returncode == 2 and "unknown target py39" in unknown.stderr


def test_internal_package_comes_from_the_registry_only(
    allowlist: AllowlistDir,
    universe_files: Path,
    private_registry: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert private_registry.username and private_registry.password
    monkeypatch.setenv("PIPGATE_REGISTRY_USERNAME", private_registry.username)
    monkeypatch.setenv("PIPGATE_REGISTRY_PASSWORD", private_registry.password)
    ours = build_wheel(Dist("corp-tool", "1.0", ("chain-c",)), "py3-none-any", tmp_path)
    (private_registry.packages / ours.name).write_bytes(ours.read_bytes())
    folder = tmp_path / "upstream-files"
    shutil.copytree(universe_files, folder)
    with running(start_pypiserver(folder, tmp_path / "logs")) as backend:
        front = UpstreamFront(backend, YANKED)
        try:
            config = config_text(front.url, registry=private_registry.root) + LICENSES
            allowlist.write("config.yaml", config)
            allowlist.write("team.yaml", entries("corp-tool==1.0", corp_tool__internal="true"))
            args = ("--allowlist", str(allowlist.path), "--target", "py311")
            cache = ("--cache", str(tmp_path / "cache"))
            locked = run_pipgate("lock", *args)
            assert locked.returncode == 0, locked.stdout + locked.stderr
            lock = (allowlist.path.parent / "generated" / "py311" / "requirements.txt").read_text()
            assert f"--hash=sha256:{hashlib.sha256(ours.read_bytes()).hexdigest()}" in lock
            assert check(allowlist, tmp_path)[:2] == (0, [])
            published = run_pipgate("upload", *args, *cache, "--format", "json")
            assert published.returncode == 0, published.stderr
            document = json.loads(published.stdout)
            assert (document["uploaded"], document["already_present"]) == (1, 1)  # chain-c
            # Someone publishes the same name and version upstream.
            evil = build_wheel(Dist("corp-tool", "1.0", ("chain-b",)), "py3-none-any", folder)
            assert evil.read_bytes() != ours.read_bytes()
            code, findings, _ = check(allowlist, tmp_path)
            assert code == 1
            assert [(f["rule"], f["package"]) for f in findings] == [
                ("dependency-confusion", "corp-tool")
            ]
            assert "also exists upstream" in str(findings[0]["message"])
            # The download still takes the registry's file: fetched by its locked hash.
            fresh_cache = tmp_path / "fresh-cache"
            fetched = run_pipgate("download", *args, "--cache", str(fresh_cache))
            assert fetched.returncode == 0, fetched.stderr
            [got] = list(fresh_cache.rglob("corp_tool-1.0-py3-none-any.whl"))
            assert got.read_bytes() == ours.read_bytes()
        finally:
            front.stop()
