"""The two resolver engines on the test universe: the same pins, the same refusals with
the same file:line, the cooldown inside the resolver, and (uv) targets for other
operating systems locked on this one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipgate.lock import read_lock
from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.universe import Server

EVERYTHING = (
    "chain-a==1.0",
    "diamond-top==1.0",
    "cycle-x==1.0",
    "extra-host[fancy]==1.0",
    "marker-pkg==1.0",
    "multi-file==1.0",
    "requests==2.31.0",
    "uses-old-certifi==1.0",
)


def with_engine(text: str, engine: str) -> str:
    return text + f"lock:\n  engine: {engine}\n"


def lock(allowlist: AllowlistDir, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pipgate("lock", "--allowlist", str(allowlist.path), *args)


def locked(allowlist: AllowlistDir, target: str) -> set[tuple[str, str, tuple[str, ...], bool]]:
    path = allowlist.path.parent / "generated" / target / "requirements.txt"
    found = read_lock(path, target)
    assert found is not None
    return {(p.name, str(p.version), tuple(sorted(p.hashes)), p.top_level) for p in found.packages}


def test_both_engines_lock_the_universe_to_the_same_pins_and_hashes(
    allowlist: AllowlistDir, upstream: Server
) -> None:
    allowlist.write("team.yaml", entries(*EVERYTHING))
    results = {}
    for engine in ("pip-tools", "uv"):
        allowlist.write("config.yaml", with_engine(config_text(upstream.url), engine))
        for target in ("py311", "py312"):
            (allowlist.path.parent / "generated" / target / "requirements.txt").unlink(
                missing_ok=True
            )
        result = lock(allowlist)
        assert result.returncode == 0, result.stdout + result.stderr
        results[engine] = {t: locked(allowlist, t) for t in ("py311", "py312")}
    assert results["uv"] == results["pip-tools"]
    names = {name for name, *_ in results["uv"]["py311"]}
    # The python_version markers split per target, in both engines alike.
    assert "old-py-dep" in names and "new-py-dep" not in names
    assert "new-py-dep" in {name for name, *_ in results["uv"]["py312"]}


@pytest.mark.parametrize("engine", ["pip-tools", "uv"])
def test_the_cooldown_keeps_the_resolver_off_a_fresh_release(
    allowlist: AllowlistDir, upstream: Server, engine: str
) -> None:
    # cool-top needs cool-dep>=1.0; cool-dep 1.1 was uploaded today, 1.0 long ago.
    allowlist.write("team.yaml", entries("cool-top==1.0"))
    allowlist.write(
        "config.yaml", with_engine(config_text(upstream.url, min_release_age_days=7), engine)
    )
    result = lock(allowlist, "--target", "py311")
    assert result.returncode == 0, result.stdout + result.stderr
    versions = {name: version for name, version, *_ in locked(allowlist, "py311")}
    assert versions["cool-dep"] == "1.0"
    check = run_pipgate("check", "--allowlist", str(allowlist.path), "--target", "py311")
    assert check.returncode == 0, check.stdout + check.stderr
    # Without a cooldown the resolver, asked to upgrade, takes the newest.
    allowlist.write(
        "config.yaml", with_engine(config_text(upstream.url, min_release_age_days=0), engine)
    )
    assert lock(allowlist, "--target", "py311", "--upgrade").returncode == 0
    versions = {name: version for name, version, *_ in locked(allowlist, "py311")}
    assert versions["cool-dep"] == "1.1"


def test_uv_refuses_what_needs_an_sdist_at_its_entry(
    allowlist: AllowlistDir, upstream: Server
) -> None:
    allowlist.write("config.yaml", with_engine(config_text(upstream.url), "uv"))
    allowlist.write("team.yaml", entries("chain-a==1.0", "needs-sdist==1.0"))
    result = lock(allowlist, "--target", "py311")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "team.yaml:6: sdist-only" in result.stdout and "has no wheel" in result.stdout
    assert "sdist: true" in result.stdout


def test_uv_explicit_mode_lists_missing_transitive_packages(
    allowlist: AllowlistDir, upstream: Server
) -> None:
    text = config_text(upstream.url, transitive="explicit")
    allowlist.write("config.yaml", with_engine(text, "uv"))
    allowlist.write("team.yaml", entries("chain-a==1.0", "chain-b==1.1"))
    result = lock(allowlist, "--target", "py311")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "team.yaml:6: chain-c==1.0 is needed by chain-b but has no allowlist entry" in (
        result.stdout
    )


def test_uv_locks_and_downloads_windows_and_macos_targets_on_linux(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    config = f"""\
registry: file://.registry
upstream: {upstream.url}
lock:
  engine: uv
targets:
  - name: win
    python: "3.11"
    platforms: [win_amd64]
  - name: mac
    python: "3.11"
    platforms: [macosx_11_0_arm64]
policy:
  min_release_age_days: 0
"""
    allowlist.write("config.yaml", config)
    allowlist.write("team.yaml", entries("marker-pkg==1.0", "chain-a==1.0"))
    # multi-file publishes a Windows wheel, and no macOS one: for the Windows target only.
    allowlist.write("windows.yaml", entries("multi-file==1.0", multi_file__targets="[win]"))
    result = lock(allowlist)
    assert result.returncode == 0, result.stdout + result.stderr
    win = {name for name, *_ in locked(allowlist, "win")}
    mac = {name for name, *_ in locked(allowlist, "mac")}
    # Markers are evaluated for the target's platform, not this machine's.
    assert "windows-only-dep" in win and "linux-only-dep" not in win
    assert "windows-only-dep" not in mac and "linux-only-dep" not in mac
    cache = tmp_path / "cache"
    downloaded = run_pipgate("download", "--allowlist", str(allowlist.path), "--cache", str(cache))
    assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr
    rendered = run_pipgate("render", "--allowlist", str(allowlist.path), "--cache", str(cache))
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    order = (allowlist.path.parent / "generated" / "win" / "install-order.txt").read_text()
    assert "multi_file-1.0-cp311-cp311-win_amd64.whl" in order
    assert "manylinux" not in order
    mac_order = (allowlist.path.parent / "generated" / "mac" / "install-order.txt").read_text()
    for name in mac:
        assert name.replace("-", "_") in mac_order, name
    bundle = tmp_path / "win-bundle"
    bundled = run_pipgate(
        "bundle", "--allowlist", str(allowlist.path), "--target", "win",
        "--output", str(bundle), "--cache", str(cache),
    )  # fmt: skip
    assert bundled.returncode == 0, bundled.stdout + bundled.stderr
    wheels = sorted(p.name for p in (bundle / "files").iterdir())
    assert len(wheels) == len(win)
    assert all(w.endswith(("-win_amd64.whl", "-any.whl")) for w in wheels), wheels


@pytest.mark.parametrize("engine", ["pip-tools", "uv"])
def test_a_failing_metadata_build_names_the_package_and_quotes_why(
    allowlist: AllowlistDir, upstream: Server, engine: str
) -> None:
    allowlist.write("config.yaml", with_engine(config_text(upstream.url), engine))
    allowlist.write(
        "team.yaml",
        entries(
            "chain-a==1.0", "needs-broken==1.0", "broken-build==1.0", broken_build__sdist="true"
        ),
    )
    result = lock(allowlist, "--target", "py311")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "team.yaml:10: broken-build==1.0 cannot be built from its sdist" in result.stdout
    assert "error: command 'gcc' failed: No such file or directory" in result.stdout


# -- re-locking after entries are added or removed -----------------------------------------


def whole(allowlist: AllowlistDir, target: str, folder: Path) -> set[tuple[object, ...]]:
    """The lock of ``target`` made from nothing (another generated/ tree), as it is read."""
    result = lock(allowlist, "--target", target, "--generated", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    return read_back(folder / target / "requirements.txt", target)


def read_back(path: Path, target: str) -> set[tuple[object, ...]]:
    found = read_lock(path, target)
    assert found is not None
    return {
        (p.name, str(p.version), tuple(sorted(p.hashes)), tuple(sorted(p.parents)), p.top_level)
        for p in found.packages
    }


INCREMENT = "entries added"
"""What the progress says when a re-lock keeps the current lock's pins."""


@pytest.mark.parametrize("engine", ["pip-tools", "uv"])
def test_a_relock_resolves_only_the_added_entries_and_equals_a_whole_lock(
    allowlist: AllowlistDir, upstream: Server, engine: str, tmp_path: Path
) -> None:
    allowlist.write("config.yaml", with_engine(config_text(upstream.url), engine))
    allowlist.write("team.yaml", entries("chain-a==1.0", "requests==2.31.0"))
    first = lock(allowlist, "--target", "py311")
    assert first.returncode == 0, first.stdout + first.stderr
    assert INCREMENT not in first.stderr
    path = allowlist.path.parent / "generated" / "py311" / "requirements.txt"
    # diamond-top brings three packages the lock does not hold.
    allowlist.write("more.yaml", entries("diamond-top==1.0"))
    again = lock(allowlist, "--target", "py311")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "py311: 1 entry added, 5 pins kept from the current lock" in again.stderr
    assert read_back(path, "py311") == whole(allowlist, "py311", tmp_path / "a")
    # An entry removed takes away what only it needed; the rest is kept as it was.
    allowlist.write("team.yaml", entries("requests==2.31.0"))
    fewer = lock(allowlist, "--target", "py311")
    assert fewer.returncode == 0, fewer.stdout + fewer.stderr
    assert "0 entries added, 6 pins kept" in fewer.stderr
    names = {name for name, *_ in read_back(path, "py311")}
    assert "chain-b" not in names and "diamond-base" in names
    assert read_back(path, "py311") == whole(allowlist, "py311", tmp_path / "b")


@pytest.mark.parametrize("engine", ["pip-tools", "uv"])
def test_an_added_entry_that_the_kept_pins_cannot_serve_gets_a_whole_resolution(
    allowlist: AllowlistDir, upstream: Server, engine: str, tmp_path: Path
) -> None:
    allowlist.write("config.yaml", with_engine(config_text(upstream.url), engine))
    allowlist.write("team.yaml", entries("requests==2.31.0"))
    assert lock(allowlist, "--target", "py311").returncode == 0
    path = allowlist.path.parent / "generated" / "py311" / "requirements.txt"
    assert ("certifi", "2023.7.22") in {(n, v) for n, v, *_ in read_back(path, "py311")}
    # uses-old-certifi needs certifi<2023: the kept certifi cannot stay, so all is resolved.
    allowlist.write("more.yaml", entries("uses-old-certifi==1.0"))
    again = lock(allowlist, "--target", "py311")
    assert again.returncode == 0, again.stdout + again.stderr
    assert ("certifi", "2022.12.7") in {(n, v) for n, v, *_ in read_back(path, "py311")}
    assert read_back(path, "py311") == whole(allowlist, "py311", tmp_path / "a")


def test_a_relock_without_the_inputs_of_the_current_lock_resolves_everything(
    allowlist: AllowlistDir, upstream: Server, tool_cache: Path
) -> None:
    allowlist.write("config.yaml", config_text(upstream.url))
    allowlist.write("team.yaml", entries("chain-a==1.0"))
    assert lock(allowlist, "--target", "py311").returncode == 0
    path = allowlist.path.parent / "generated" / "py311" / "requirements.txt"
    found = read_lock(path, "py311")
    assert found is not None
    remembered = tool_cache / "lock-inputs" / f"{found.digest.removeprefix('sha256:')}.json"
    # What the cache holds counts only when it hashes to the lock's digest: an entry
    # slipped into it does not make the re-lock keep anything.
    text = remembered.read_text()
    assert '"entries":[' in text
    remembered.write_text(text.replace('"entries":[', '"entries":[["zz==1",false,false,false],'))
    allowlist.write("more.yaml", entries("cycle-x==1.0"))
    again = lock(allowlist, "--target", "py311")
    assert again.returncode == 0, again.stdout + again.stderr
    assert INCREMENT not in again.stderr
    assert {"cycle-x", "cycle-y", "chain-a"} <= {n for n, *_ in read_back(path, "py311")}
