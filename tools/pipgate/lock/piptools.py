"""The pip-tools engine: pip-compile under the target's own Python.

Its only index is pipgate's front (``pipgate.lock.front``), which serves the
pages of the upstream (or of pip's own configuration when none is set) as
pipgate read and checked them; internal packages resolve from the private
registry, whose URL (it may hold a credential) goes in the child's environment
only.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pipgate.allowlist import PackageEntry, Target
from pipgate.http import Credentials, Origins
from pipgate.index import IndexFile, Source
from pipgate.lock.buildfail import build_failure
from pipgate.lock.interface import (
    Locker,
    LockError,
    LockInputError,
    LockPolicyError,
    LockToolError,
    Pin,
    Request,
)
from pipgate.lock.lockfile import VIA_COMMENT
from pipgate.names import NormalizedName, file_release, normalize, parse_version
from pipgate.pipconfig import pip_sources
from pipgate.problems import Problem
from pipgate.registry import Registry
from pipgate.runner import Result, redact, run, tool_environment
from pipgate.toolenv import pip_compile_command, tool_sources

_OUT_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)\s*(?P<rest>.*)$")
_REQ_LINE = re.compile(r"-r \S*requirements\.in \(line (?P<line>[0-9]+)\)")


class PipToolsLocker(Locker):
    """pip-compile, run under the target's Python, with the upstream as its only index."""

    def __init__(
        self,
        upstream: str | None,
        registry: Callable[[], Registry] | None = None,
        file_hosts: tuple[str, ...] = (),
        credentials: Credentials | None = None,
    ) -> None:
        self.upstream = upstream
        self.credentials = credentials
        """What reading the upstream takes (an Artifact Registry remote repository): its URL
        then goes to pip-compile in its environment, with them, never on its command line."""
        self.file_hosts = file_hosts
        self._registry_factory = registry
        self._registry: Registry | None = None

    def registry(self) -> Registry:
        if self._registry is None:
            if self._registry_factory is None:
                raise LockInputError(
                    "internal packages need the private registry, and none was given",
                    [],
                    hint="run 'pipgate lock' with the allowlist's registry reachable",
                )
            self._registry = self._registry_factory()
        return self._registry

    def internal_files(self, names: Iterable[NormalizedName]) -> dict[str, list[IndexFile]]:
        wanted = sorted(set(names))
        found: dict[str, list[IndexFile]] = {name: [] for name in wanted}
        for held in self.registry().list(wanted).values():
            release = file_release(held.filename)
            if release is not None and release[0] in found:
                found[release[0]].append(IndexFile(held.filename, held.url, held.sha256))
        return found

    def _env(self, entries: Sequence[PackageEntry], index: str | None) -> dict[str, str]:
        """pip-compile's environment: the resolver's index (``pipgate.lock.front``) its only
        index, and pip's own configuration out of the way; the private registry after it
        where internal packages resolve (its URL may carry a credential, so it goes in the
        child's environment, never on its command line)."""
        if index is None:
            raise LockToolError(
                "the pip-tools engine resolves from pipgate's own index front only",
                hint="lock with 'pipgate lock'",
            )
        env = tool_environment(isolate_pip=True)
        env["PIP_INDEX_URL"] = index
        if any(e.internal for e in entries):
            env["PIP_EXTRA_INDEX_URL"] = self.registry().pip_index_url()
        return env

    def cannot_lock(self, target: Target) -> str | None:
        """pip-compile resolves environment markers for this machine: a target for
        another operating system cannot be locked here."""
        families = {"linux": ("manylinux", "musllinux"), "darwin": ("macosx",), "win32": ("win",)}
        here = families.get(sys.platform, ())
        for platform in target.platforms:
            if not platform.startswith(here):
                return (
                    f"target {target.name} is for {platform}, but pip-compile resolves "
                    f"environment markers for this machine ({sys.platform})"
                )
        return None

    def sources(self, target: Target) -> tuple[Source, ...]:
        if self.upstream:
            origins = Origins(allowed=self.file_hosts)
            return (Source(self.upstream, origins=origins, credentials=self.credentials),)
        return pip_sources(sys.executable)

    def command(self, target: Target) -> list[str]:
        """pip-compile under the target's Python; its environment, where one must be made,
        is installed from the tool index, else the upstream, else pip's configuration."""
        return pip_compile_command(target.python, tool_sources(self.sources(target)))

    def resolve(self, request: Request) -> list[Pin]:
        target, entries, builds = request.target, request.entries, request.builds
        previous, upgrade = request.previous, request.upgrade
        command = self.command(target)
        with tempfile.TemporaryDirectory(prefix="pipgate-lock-") as scratch:
            folder = Path(scratch)
            infile = folder / "requirements.in"
            # The build options go last, so that line N is still the N-th entry; pip reads
            # them from the file wherever they stand, and so does every probe of it.
            lines = [*request.requirements, *builds.pip_options(), *_constraint_lines(request)]
            infile.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
            _write_constraints(folder, request)
            outfile = folder / "requirements.txt"
            if previous is not None and previous.is_file() and not upgrade:
                # pip-compile keeps the pins of an existing output where it can.
                outfile.write_bytes(previous.read_bytes())
            args = [
                *command,
                "--no-config",
                "--quiet",
                "--allow-unsafe",
                "--strip-extras",
                "--annotation-style=line",
                "--no-emit-index-url",
                "--no-emit-find-links",
                "--no-emit-trusted-host",
                "--no-emit-options",
                "--no-header",
                *(["--upgrade"] if upgrade else []),
                "--output-file",
                str(outfile),
                str(infile),
            ]
            held = request.held_index
            result = run(args, env=self._env(entries, held or request.index), cwd=folder)
            if result.returncode != 0 and held is not None:
                # Held to the cooldown, the resolver found no way (a dependency whose every
                # release is young): resolved without it, the check then refuses the young
                # release by name, at the entry that brings it in.
                if previous is not None and previous.is_file() and not upgrade:
                    outfile.write_bytes(previous.read_bytes())
                result = run(args, env=self._env(entries, request.index), cwd=folder)
            if result.returncode != 0:
                raise self._diagnose(command[0], infile, request, result)
            return _parse_output(outfile.read_text(encoding="utf-8"))

    def _diagnose(self, python: str, infile: Path, request: Request, failed: Result) -> LockError:
        """Ask pip (its own command line) why the requirements cannot be resolved together."""
        entries = request.entries
        built = build_failure(failed.output, entries, request.target)
        if built is not None:
            return built
        if not request.builds.any:
            refused = no_wheel_problem(failed.output, entries, request.target)
            if refused is not None:
                return refused
        probe = run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--disable-pip-version-check",
                "-r",
                str(infile),
            ],
            env=self._env(entries, request.index),
            cwd=infile.parent,
        )
        text = probe.output
        details = _conflict_details(text)
        by_name = {e.name: e for e in entries}
        involved = [by_name[n] for n in _conflict_subjects(details) if n in by_name]
        if not involved:
            lines = sorted({int(m["line"]) for m in _REQ_LINE.finditer(text)})
            involved = [entries[n - 1] for n in lines if 0 < n <= len(entries)]
        if "conflict" in text.lower() and involved:
            return conflict_error(involved, "; ".join(details))
        tail = redact((failed.stderr or failed.stdout).strip())[-1500:]
        return LockToolError(
            f"pip-compile failed:\n{tail}",
            hint="run again; if it persists, check the index and the output",
        )


def conflict_error(involved: Sequence[PackageEntry], summary: str) -> LockInputError:
    """The entries whose pins cannot be installed together: one problem at each, naming
    the others with their file and line, and the resolver's own explanation."""
    problems = []
    for entry in involved:
        others = ", ".join(
            f"{o.spelled}=={o.version} ({o.location})" for o in involved if o is not entry
        )
        problems.append(
            Problem(
                entry.location,
                f"{entry.spelled}=={entry.version} cannot be installed together with "
                f"{others or 'the other pins'}" + (f": {summary}" if summary else ""),
                "change one of these versions so that their dependencies agree",
            )
        )
    return LockInputError(
        "the allowlist's pins conflict", problems, hint="change one of the versions named above"
    )


_NO_MATCH = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>[A-Za-z0-9._-]+)"
    r"(?P<spec>[^ ]*)(?: \(from (?P<parent>[A-Za-z0-9._-]+)[^)]*\))?"
)


def no_wheel_problem(
    output: str, entries: Sequence[PackageEntry], target: Target
) -> LockPolicyError | None:
    """Under ``sdists: deny`` pip finds no version of a package it may not build: the
    package that needs an sdist, at the entry that brings it in, or None."""
    match = _NO_MATCH.search(output)
    if match is None:
        return None
    name = normalize(match["req"])
    by_name = {e.name: e for e in entries}
    parent = normalize(match["parent"]) if match["parent"] else None
    entry = by_name.get(name) or (by_name.get(parent) if parent else None) or entries[0]
    needed = f", needed by {parent}" if parent and name not in by_name else ""
    return LockPolicyError(
        f"the lock of {target.name} needs a package built from its sdist",
        [
            Problem(
                entry.location,
                f"{name}{match['spec']} has no wheel for target {target.name} (Python "
                f"{target.python}, {' '.join(target.platforms)}){needed}; under "
                "policy.sdists: deny it is not built, not even to read its metadata",
                "add an entry for it with 'sdist: true' to allow building its sdist, or pick "
                "versions whose dependencies publish wheels",
            )
        ],
        hint="each problem says what to change",
    )


_SUBJECT = re.compile(
    r"^(?:The user requested (?P<requested>[A-Za-z0-9._-]+)"
    r"|(?P<parent>[A-Za-z0-9._-]+) \S+ depends on)"
)


def _conflict_subjects(details: Sequence[str]) -> list[NormalizedName]:
    """The projects pip names as the sides of a conflict, in order, once each."""
    names: list[NormalizedName] = []
    for line in details:
        match = _SUBJECT.match(line)
        if match:
            name = normalize(match["requested"] or match["parent"])
            if name not in names:
                names.append(name)
    return names


def _conflict_details(text: str) -> list[str]:
    block = text.split("The conflict is caused by:", 1)
    if len(block) < 2:
        return []
    found: list[str] = []
    for raw in block[1].splitlines()[1:]:
        line = raw.strip()
        if not line:
            if found:
                break
            continue
        if line.startswith(("To fix", "Additionally")):
            break
        found.append(line)
    return found


CONSTRAINTS = "constraints.txt"


def _constraint_lines(request: Request) -> list[str]:
    return [f"-c {CONSTRAINTS}"] if request.constraints else []


def _write_constraints(folder: Path, request: Request) -> None:
    if request.constraints:
        text = "".join(f"{line}\n" for line in request.constraints)
        (folder / CONSTRAINTS).write_text(text, encoding="utf-8")


def _parse_output(text: str) -> list[Pin]:
    pins = []
    for line in text.splitlines():
        match = _OUT_PIN.match(line.strip())
        if match is None:
            continue
        version = parse_version(match["version"])
        if version is None:
            raise LockToolError(
                f"pip-compile wrote a pin that is not a version: {line.strip()[:200]}",
                hint="run again; if it persists, report it with pip-compile's output",
            )
        via_match = VIA_COMMENT.search(match["rest"])
        parents: list[NormalizedName] = []
        top_level = False
        if via_match:
            for raw in via_match["via"].split(","):
                parent = raw.strip()
                if parent.startswith("-r "):
                    top_level = True
                elif parent.startswith("-c "):
                    continue  # held by a constraint, not a parent
                elif parent:
                    parents.append(normalize(parent))
        pins.append(Pin(normalize(match["name"]), version, tuple(parents), top_level))
    return pins
