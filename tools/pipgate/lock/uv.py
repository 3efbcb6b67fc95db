"""The uv engine: ``uv pip compile`` for the target's Python and platform, with no
interpreter of that Python and on any machine (``--python-version``,
``--python-platform``), so macOS and Windows targets lock on Linux.

It shares the pip-tools engine's sources, private registry and internal-package
handling, writes the same lock format (the hashes still come from the index
pages, through the core), and refuses what pip-tools refuses, with the same
file:line problems. Like pip-compile, it reads the upstream only through
pipgate's front (``pipgate.lock.front``), which also holds the cooldown.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from pipgate.allowlist import Target
from pipgate.lock.buildfail import build_failure
from pipgate.lock.interface import (
    Builds,
    LockError,
    LockInputError,
    LockPolicyError,
    LockToolError,
    Pin,
    Request,
)
from pipgate.lock.piptools import (
    PipToolsLocker,
    _constraint_lines,
    _parse_output,
    _write_constraints,
    conflict_error,
)
from pipgate.names import normalize
from pipgate.problems import Problem
from pipgate.runner import Result, redact, run, tool_environment, uv_binary
from pipgate.toolenv import cache_dir

_MANYLINUX = re.compile(r"^manylinux_2_(?P<minor>[0-9]+)_(?P<arch>x86_64|aarch64)$")
_UV_GLIBC = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
"""The glibc minors uv names a manylinux platform for (``x86_64-manylinux_2_28``...)."""
_MACOS = re.compile(r"^macosx_(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<arch>.+)$")
_WINDOWS = {
    "win_amd64": "x86_64-pc-windows-msvc",
    "win_arm64": "aarch64-pc-windows-msvc",
    "win32": "i686-pc-windows-msvc",
}


def uv_platform(tag: str) -> tuple[str, dict[str, str]] | None:
    """uv's ``--python-platform`` for a wheel platform tag, and the environment it needs
    (the macOS version); None when uv has no such platform."""
    tag = tag.replace("manylinux2014_", "manylinux_2_17_")
    found: tuple[str, dict[str, str]] | None = None
    linux = _MANYLINUX.match(tag)
    macos = _MACOS.match(tag)
    if linux:
        usable = [m for m in _UV_GLIBC if m <= int(linux["minor"])]
        if usable:
            found = f"{linux['arch']}-manylinux_2_{usable[-1]}", {}
    elif tag.startswith("musllinux_") and tag.endswith(("_x86_64", "_aarch64")):
        found = f"{'x86_64' if tag.endswith('x86_64') else 'aarch64'}-unknown-linux-musl", {}
    elif macos:
        arch = {"arm64": "aarch64", "x86_64": "x86_64"}.get(macos["arch"])
        if arch is not None:
            version = f"{macos['major']}.{macos['minor']}"
            found = f"{arch}-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": version}
    elif tag in _WINDOWS:
        found = _WINDOWS[tag], {}
    return found


def _uv() -> str:
    return uv_binary()


class UvLocker(PipToolsLocker):
    """``uv pip compile``: one resolution per platform of the target, which must agree."""

    def cannot_lock(self, target: Target) -> str | None:
        for platform in target.platforms:
            if uv_platform(platform) is None:
                return f"target {target.name}'s platform {platform} is not one uv resolves for"
        return None

    def _uv_env(self, request: Request, index: str | None) -> dict[str, str]:
        """uv's environment: the resolver's index (``pipgate.lock.front``) for everything
        public, and the private registry after it where internal packages resolve (its URL
        may hold a credential: in the environment only)."""
        if index is None:
            raise LockToolError(
                "the uv engine resolves from pipgate's own index front only",
                hint="lock with 'pipgate lock'",
            )
        env = tool_environment(isolate_pip=True)
        for key in [k for k in env if k.startswith("UV_")]:
            del env[key]
        env["UV_CACHE_DIR"] = str(cache_dir() / "uv")
        if any(e.internal for e in request.entries):
            # The front first, the private registry after it: a public name is taken from
            # the front alone, an internal one (which the front never has) from the registry.
            env["UV_INDEX"] = index
            env["UV_DEFAULT_INDEX"] = self.registry().pip_index_url()
        else:
            env["UV_DEFAULT_INDEX"] = index
        return env

    def resolve(self, request: Request) -> list[Pin]:
        target = request.target
        results: dict[str, list[Pin]] = {}
        for platform in target.platforms:
            results[platform] = self._resolve_for(request, platform)
        first, *others = target.platforms
        for other in others:
            if _key(results[other]) != _key(results[first]):
                differ = sorted(set(_key(results[other])) ^ set(_key(results[first])))
                shown = ", ".join(f"{n}=={v}" for n, v in differ[:6])
                raise LockInputError(
                    f"target {target.name} resolves differently on {first} and {other} ({shown})",
                    [],
                    hint="a lock holds one set of pins per target: split the target into one "
                    "target per platform",
                )
        return results[first]

    def _resolve_for(self, request: Request, platform: str) -> list[Pin]:
        target, builds = request.target, request.builds
        found = uv_platform(platform)
        assert found is not None  # cannot_lock said so first
        uv_target, platform_env = found
        with tempfile.TemporaryDirectory(prefix="pipgate-lock-") as scratch:
            folder = Path(scratch)
            infile = folder / "requirements.in"
            lines = [*request.requirements, *_constraint_lines(request)]
            infile.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
            _write_constraints(folder, request)
            outfile = folder / "requirements.txt"

            def attempt(index: str | None) -> Result:
                keep = request.previous is not None and request.previous.is_file()
                if keep and not request.upgrade:
                    assert request.previous is not None
                    outfile.write_bytes(request.previous.read_bytes())  # kept pins
                args = [
                    _uv(),
                    "pip",
                    "compile",
                    "--no-config",
                    "--quiet",
                    "--python-version",
                    str(target.python),
                    "--python-platform",
                    uv_target,
                    "--annotation-style",
                    "line",
                    "--no-header",
                    "--no-strip-markers",
                    *self._build_args(builds),
                    *(["--upgrade"] if request.upgrade else []),
                    "--output-file",
                    str(outfile),
                    str(infile),
                ]
                env = self._uv_env(request, index)
                env.update(platform_env)
                return run(args, env=env, cwd=folder)

            result = attempt(request.held_index or request.index)
            if result.returncode != 0 and request.held_index is not None:
                # Held to the cooldown, uv found no way (a dependency whose every release is
                # young): resolved without it, the check then refuses the young release by
                # name, at the entry that brings it in.
                result = attempt(request.index)
            if result.returncode != 0:
                raise _diagnose(result, request, platform)
            return _parse_output(outfile.read_text(encoding="utf-8"))

    @staticmethod
    def _build_args(builds: Builds) -> list[str]:
        if builds.any:
            return []
        args = ["--only-binary", ":all:"]
        for name in builds.allowed:
            args += ["--no-binary", str(name)]
        return args


def _key(pins: list[Pin]) -> list[tuple[str, str]]:
    return sorted((str(p.name), str(p.version)) for p in pins)


_NO_VERSION = re.compile(
    r"there is no version of (?P<name>[A-Za-z0-9._-]+)(?P<spec>[=<>!~][^\s,]*)?", re.IGNORECASE
)
_NO_WHEEL = re.compile(
    r"(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+) has no (?:usable )?wheels?"
    r"|(?P<name2>[A-Za-z0-9._-]+)==(?P<version2>\S+) (?:is only available as a source "
    r"distribution|only has source distributions)",
    re.IGNORECASE,
)
_NAMED = re.compile(r"\b(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?:==|>=|<=|>|<|!=|~=)")


def _diagnose(result: Result, request: Request, platform: str) -> LockError:
    """uv's explanation, turned into problems at the entries it names."""
    text = redact(result.output)
    entries = request.entries
    built = build_failure(text, entries, request.target)
    if built is not None:
        return built
    by_name = {e.name: e for e in entries}
    named = []
    for match in _NAMED.finditer(text):
        found = normalize(match["name"])
        if found in by_name and by_name[found] not in named:
            named.append(by_name[found])
    wheel = _NO_WHEEL.search(text)
    if wheel is not None and not request.builds.any:
        name = normalize(wheel["name"] or wheel["name2"])
        version = wheel["version"] or wheel["version2"]
        # The entry that brings it in: itself, or the first entry uv's explanation names.
        entry = by_name.get(name) or (named[0] if named else entries[0])
        needed = "" if name in by_name else f", needed by {entry.name}"
        target = request.target
        return LockPolicyError(
            f"the lock of {target.name} needs a package built from its sdist",
            [
                Problem(
                    entry.location,
                    f"{name}=={version} has no wheel for target {target.name} (Python "
                    f"{target.python}, {platform}){needed}; under policy.sdists: deny it is "
                    "not built, not even to read its metadata",
                    "add an entry for it with 'sdist: true' to allow building its sdist, or "
                    "pick versions whose dependencies publish wheels",
                )
            ],
            hint="each problem says what to change",
        )
    missing = _NO_VERSION.search(text)
    # uv's explanation (after "cause:"), whose sentences it wraps over several lines: all of
    # it, up to its hints.
    explained = text.partition("cause:")[2].partition("hint:")[0]
    summary = " ".join(explained.split())[:600]
    if missing is not None and normalize(missing["name"]) in by_name and len(named) <= 1:
        entry = by_name[normalize(missing["name"])]
        return LockInputError(
            f"{entry.spelled}=={entry.version} cannot be found upstream",
            [
                Problem(
                    entry.location,
                    f"no release {entry.spelled}=={entry.version} for Python "
                    f"{request.target.python} on {platform}",
                    "check the version, or that the upstream has it",
                )
            ],
            hint="fix the version named above",
        )
    if "unsatisfiable" in text and named:
        return conflict_error(named, summary)
    return LockToolError(
        f"uv pip compile failed:\n{text.strip()[-1500:]}",
        hint="run again; if it persists, check the index and the output",
    )
