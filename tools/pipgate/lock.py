"""One hashed lock per target: ``generated/<target>/requirements.txt``.

pip-compile resolves (under the target's own Python); the hashes come from
the index's own pages, which already carry every file's sha256, instead of
``--generate-hashes``, which downloads every file of every pin from an index
without the PyPI JSON API just to hash it. Every file of the pinned version
that a consumer on the target could install (each wheel whose tags the
target accepts, and the sdist where the entry or the policy allows sdists)
has its hash in the lock.
"""

from __future__ import annotations

import abc
import concurrent.futures
import dataclasses
import hashlib
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from pipgate import index
from pipgate.allowlist import Allowlist, PackageEntry, Target
from pipgate.allowlist.model import SdistPolicy, TransitivePolicy
from pipgate.errors import ExternalError, InputError, PipgateError, PolicyError
from pipgate.fsutil import write_atomic
from pipgate.index import IndexFile, Source
from pipgate.pipconfig import pip_sources
from pipgate.problems import Problem
from pipgate.registry import Registry
from pipgate.runner import Result, redact, run, tool_environment
from pipgate.targettags import is_sdist, supported_tags, wheel_fits
from pipgate.toolenv import pip_compile_command

LOCK_FORMAT = 1
LOCK_NAME = "requirements.txt"
TOP_LEVEL = "allowlist"


# -- errors ----------------------------------------------------------------------------------------


class LockError(PipgateError):
    """Base of the locker's errors."""


class _ProblemsError(LockError):
    """A lock error that carries the problems to show, each at an allowlist entry."""

    def __init__(self, message: str, problems: Sequence[Problem], *, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.problems = tuple(problems)


class LockInputError(_ProblemsError, InputError):
    """The allowlist asks for something that cannot be locked (exit 2)."""


class LockPolicyError(_ProblemsError, PolicyError):
    """The lock breaks a policy: an unlisted transitive package, a missing wheel (exit 1)."""


class LockToolError(LockError, ExternalError):
    """pip-compile or an index failed (exit 3)."""


# -- the lock file ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LockedPackage:
    name: NormalizedName
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]
    """Parents (normalised names), and ``allowlist`` for a top-level entry."""

    @property
    def top_level(self) -> bool:
        return TOP_LEVEL in self.via


@dataclasses.dataclass(frozen=True)
class Lock:
    target: str
    digest: str
    packages: tuple[LockedPackage, ...]

    def package(self, name: str) -> LockedPackage | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.packages if p.name == wanted), None)


_HEADER_DIGEST = re.compile(r"^# inputs: (sha256:[0-9a-f]{64})$", re.MULTILINE)
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\#]+)")
_HASH = re.compile(r"--hash=sha256:(?P<digest>[0-9a-f]{64})")
_VIA = re.compile(r"#\s*via\s+(?P<via>.+)$")


def lock_path(allowlist: Allowlist, target: Target, output: Path | None = None) -> Path:
    return (output or allowlist.root / "generated") / target.name / LOCK_NAME


def read_lock(path: Path, target: str) -> Lock | None:
    """The lock at ``path``, or None when there is none or it is not one of ours."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    found = _HEADER_DIGEST.search(text)
    if found is None:
        return None
    packages = []
    current: dict[str, object] | None = None
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            if current is not None:
                packages.append(current)
            current = {
                "name": canonicalize_name(pin["name"]),
                "version": pin["version"],
                "hashes": [],
                "via": (),
            }
        if current is None:
            continue
        hashes = current["hashes"]
        assert isinstance(hashes, list)
        hashes.extend(m["digest"] for m in _HASH.finditer(line))
        via = _VIA.search(line)
        if via:
            current["via"] = tuple(v.strip() for v in via["via"].split(","))
    if current is not None:
        packages.append(current)
    return Lock(
        target=target,
        digest=found.group(1),
        packages=tuple(
            LockedPackage(
                name=NormalizedName(str(p["name"])),
                version=str(p["version"]),
                hashes=tuple(p["hashes"]),  # type: ignore[arg-type]
                via=tuple(p["via"]),  # type: ignore[arg-type]
            )
            for p in packages
        ),
    )


def render_lock(lock: Lock, target: Target, command: str) -> str:
    lines = [
        "# This file is generated by pipgate; do not edit it.",
        f"# target: {target.name} (Python {target.python}, {target.implementation}, "
        f"{' '.join(target.platforms)})",
        f"# inputs: {lock.digest}",
        f"# command: {command}",
        "#",
    ]
    for package in sorted(lock.packages, key=lambda p: p.name):
        lines.append(f"{package.name}=={package.version} \\")
        for position, digest in enumerate(package.hashes):
            last = position == len(package.hashes) - 1
            lines.append(f"    --hash=sha256:{digest}" + ("" if last else " \\"))
        lines.append(f"    # via {', '.join(package.via)}")
    return "\n".join(lines) + "\n"


def inputs_digest(allowlist: Allowlist, target: Target) -> str:
    """What the lock of ``target`` depends on; the lock is redone when this changes."""
    policy = allowlist.config.policy
    document = {
        "format": LOCK_FORMAT,
        "target": [target.name, target.python, list(target.platforms), target.implementation],
        "upstream": allowlist.config.upstream,
        "policy": [policy.sdists.value, policy.transitive.value],
        "entries": sorted(
            [e.requirement, e.sdist, e.internal] for e in allowlist.packages_for(target)
        ),
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


# -- the resolver port ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: str
    via: tuple[str, ...]


class Locker(abc.ABC):
    """Resolves exact top-level requirements into every pin, for one target."""

    @abc.abstractmethod
    def resolve(
        self,
        requirements: Sequence[str],
        target: Target,
        *,
        upgrade: bool,
        previous: Path | None,
        entries: Sequence[PackageEntry],
    ) -> list[Pin]:
        """The pins; raises a LockError naming the entries when it cannot."""

    @abc.abstractmethod
    def sources(self, target: Target) -> tuple[Source, ...]:
        """Where this locker takes packages from, in order."""

    def internal_files(self, names: Iterable[NormalizedName]) -> dict[str, list[IndexFile]]:
        """The files of ``internal: true`` packages, from the private registry only."""
        raise LockInputError(
            "internal packages need the private registry, and this locker has none",
            [],
            hint="lock with pipgate's own locker",
        )


_OUT_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)\s*(?P<rest>.*)$")
_REQ_LINE = re.compile(r"-r \S*requirements\.in \(line (?P<line>[0-9]+)\)")


class PipToolsLocker(Locker):
    """pip-compile, run under the target's Python, with the upstream as its only index."""

    def __init__(
        self, upstream: str | None, registry: Callable[[], Registry] | None = None
    ) -> None:
        self.upstream = upstream
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
            release = index.file_release(held.filename)
            if release is not None and release[0] in found:
                found[release[0]].append(IndexFile(held.filename, held.url, held.sha256))
        return found

    def _env(self, entries: Sequence[PackageEntry]) -> dict[str, str]:
        # With an upstream, pip's own configuration (extra indexes, find-links) must not
        # add sources; without one, pip's configuration is the source.
        env = tool_environment(isolate_pip=self.upstream is not None)
        if any(e.internal for e in entries):
            # Internal packages resolve from the private registry. Its URL may carry a
            # credential, so it goes in the child's environment, never on its command line.
            extra = [] if self.upstream else self._configured_extras()
            env["PIP_EXTRA_INDEX_URL"] = " ".join([*extra, self.registry().pip_index_url()])
        return env

    def _configured_extras(self) -> list[str]:
        sources = pip_sources(sys.executable)
        return [s.url for s in sources[1:] if not s.find_links]

    def _index_args(self) -> list[str]:
        return ["--index-url", self.upstream] if self.upstream else []

    def sources(self, target: Target) -> tuple[Source, ...]:
        if self.upstream:
            return (Source(self.upstream),)
        return pip_sources(pip_compile_command(target.python)[0])

    def resolve(
        self,
        requirements: Sequence[str],
        target: Target,
        *,
        upgrade: bool,
        previous: Path | None,
        entries: Sequence[PackageEntry],
    ) -> list[Pin]:
        command = pip_compile_command(target.python)
        with tempfile.TemporaryDirectory(prefix="pipgate-lock-") as scratch:
            folder = Path(scratch)
            infile = folder / "requirements.in"
            infile.write_text("".join(f"{r}\n" for r in requirements), encoding="utf-8")
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
                *self._index_args(),
                *(["--upgrade"] if upgrade else []),
                "--output-file",
                str(outfile),
                str(infile),
            ]
            result = run(args, env=self._env(entries), cwd=folder)
            if result.returncode != 0:
                raise self._diagnose(command[0], infile, entries, result)
            return _parse_output(outfile.read_text(encoding="utf-8"))

    def _diagnose(
        self, python: str, infile: Path, entries: Sequence[PackageEntry], failed: Result
    ) -> LockError:
        """Ask pip (its own command line) why the requirements cannot be resolved together."""
        probe = run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--disable-pip-version-check",
                *self._index_args(),
                "-r",
                str(infile),
            ],
            env=self._env(entries),
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
            summary = "; ".join(details)
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
                "the allowlist's pins conflict",
                problems,
                hint="change one of the versions named above",
            )
        tail = redact((failed.stderr or failed.stdout).strip())[-1500:]
        return LockToolError(
            f"pip-compile failed:\n{tail}",
            hint="run again; if it persists, check the index and the output",
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
            name = canonicalize_name(match["requested"] or match["parent"])
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


def _parse_output(text: str) -> list[Pin]:
    pins = []
    for line in text.splitlines():
        match = _OUT_PIN.match(line.strip())
        if match is None:
            continue
        via_match = _VIA.search(match["rest"])
        via: list[str] = []
        if via_match:
            for raw in via_match["via"].split(","):
                parent = raw.strip()
                if parent.startswith("-r "):
                    via.append(TOP_LEVEL)
                elif parent:
                    via.append(str(canonicalize_name(parent)))
        pins.append(Pin(canonicalize_name(match["name"]), match["version"], tuple(via)))
    return pins


# -- locking one target ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    target: str
    path: Path
    changed: bool
    lock: Lock
    skipped: bool
    """True when the inputs had not changed and nothing was resolved."""


def _fetch_pages(sources: Sequence[Source], names: Iterable[str]) -> dict[str, list[IndexFile]]:
    wanted = sorted(set(names))

    def fetch(name: str) -> list[IndexFile]:
        files: list[IndexFile] = []
        for source in sources:
            files.extend(index.project_files(source, name))
        return files

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(wanted, pool.map(fetch, wanted), strict=True))


def _check_entries_exist(
    entries: Sequence[PackageEntry], pages: dict[str, list[IndexFile]], where: str
) -> None:
    problems = []
    for entry in entries:
        files = pages.get(entry.name, [])
        if not files:
            problems.append(
                Problem(
                    entry.location,
                    f"no project named '{entry.spelled}' exists at {where}",
                    "check the spelling of the name",
                )
            )
            continue
        if not index.files_for_version(files, entry.name, entry.version):
            versions = sorted(
                {r[1] for f in files if (r := index.file_release(f.filename))}, reverse=True
            )
            shown = ", ".join(str(v) for v in versions[:5]) or "none"
            problems.append(
                Problem(
                    entry.location,
                    f"{entry.spelled} has no release {entry.version} at {where} (newest: {shown})",
                    "pin a version that exists",
                )
            )
    if problems:
        raise LockInputError(
            f"{len(problems)} allowlist entr{'y' if len(problems) == 1 else 'ies'}"
            " cannot be found upstream",
            problems,
            hint="fix the names and versions shown",
        )


def _python_allows(requires_python: str | None, python: str) -> bool:
    if not requires_python:
        return True
    try:
        return Version(f"{python}.0") in SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True


def describe_sources(sources: Sequence[Source]) -> str:
    return ", ".join(redact(s.url) for s in sources if not s.find_links) or "the find-links"


def lock_target(
    allowlist: Allowlist,
    target: Target,
    locker: Locker,
    *,
    upgrade: bool = False,
    output: Path | None = None,
    command: str = "pipgate lock",
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    path = lock_path(allowlist, target, output)
    digest = inputs_digest(allowlist, target)
    existing = read_lock(path, target.name)
    if existing is not None and existing.digest == digest and not upgrade:
        return Outcome(target.name, path, False, existing, True)

    mismatch = platform_mismatch(target)
    if mismatch is not None:
        raise InputError(
            mismatch,
            hint=f"run 'pipgate lock --target {target.name}' on such a "
            "machine, or change the target's platforms",
        )
    entries = allowlist.packages_for(target)
    if not entries:
        raise InputError(
            f"no allowlist entry applies to target {target.name}",
            hint="add packages for it, or remove the target from config.yaml",
        )
    if progress is not None:
        progress(f"{target.name}: resolving {len(entries)} entries under Python {target.python}")
    sources = locker.sources(target)
    where = describe_sources(sources)
    internal = {e.name for e in entries if e.internal}
    pages = _fetch_pages(sources, [e.name for e in entries if e.name not in internal])
    _check_entries_exist([e for e in entries if e.name not in internal], pages, where)
    if internal:
        # Internal packages come from the private registry, never from upstream: their
        # hashes are the registry's own.
        pages.update(locker.internal_files(internal))
        _check_entries_exist([e for e in entries if e.internal], pages, "the private registry")

    pins = locker.resolve(
        [e.requirement for e in entries],
        target,
        upgrade=upgrade,
        previous=path if existing is not None else None,
        entries=entries,
    )
    pages.update(_fetch_pages(sources, [p.name for p in pins if p.name not in pages]))

    by_name = {e.name: e for e in entries}
    parents = {p.name: p.via for p in pins}
    policy = allowlist.config.policy
    supported = supported_tags(target.python, target.platforms, target.implementation)
    problems: list[Problem] = []
    packages: list[LockedPackage] = []
    for pin in pins:
        entry = by_name.get(pin.name)
        files = index.files_for_version(pages.get(pin.name, []), pin.name, pin.version)
        files = [f for f in files if _python_allows(f.requires_python, target.python)]
        wheels = [f for f in files if wheel_fits(f.filename, supported)]
        sdist_ok = policy.sdists is SdistPolicy.ALLOW or (entry is not None and entry.sdist)
        sdists = [f for f in files if is_sdist(f.filename)] if sdist_ok else []
        chosen = sorted({f.sha256 for f in [*wheels, *sdists]})
        if not files:
            raise LockToolError(
                f"{pin.name}=={pin.version} was resolved, but {where} lists no file for it",
                hint="the index changed during the run, or pip found it elsewhere; run again",
            )
        if not wheels and not sdists:
            problems.append(
                Problem(
                    blame(pin.name, parents, by_name).location,
                    f"{pin.name}=={pin.version} has no wheel for target {target.name} "
                    f"(Python {target.python}, {' '.join(target.platforms)})"
                    + ("" if entry else f", needed by {', '.join(pin.via)}"),
                    "pick a version with a wheel for the target, or allow building it from its "
                    "sdist with 'sdist: true' on its entry"
                    if entry
                    else "add an entry for it with 'sdist: true' to allow building its sdist",
                )
            )
            continue
        packages.append(LockedPackage(pin.name, pin.version, tuple(chosen), pin.via))

    if policy.transitive is TransitivePolicy.EXPLICIT:
        for package in packages:
            if package.name not in by_name:
                problems.append(
                    Problem(
                        blame(package.name, parents, by_name).location,
                        f"{package.name}=={package.version} is needed by "
                        f"{', '.join(package.via)} but has no allowlist entry "
                        "(policy.transitive: explicit)",
                        f'add an entry for {package.name} version "{package.version}"',
                    )
                )
    if problems:
        raise LockPolicyError(
            f"the lock of {target.name} breaks the policy",
            problems,
            hint="each problem says what to change",
        )

    lock = Lock(target.name, digest, tuple(packages))
    changed = write_atomic(path, render_lock(lock, target, command))
    return Outcome(target.name, path, changed, lock, False)


def blame(
    name: str,
    parents: dict[NormalizedName, tuple[str, ...]],
    by_name: dict[NormalizedName, PackageEntry],
) -> PackageEntry:
    """The allowlist entry that brought ``name`` in: its own, or the nearest ancestor's."""
    return _nearest_entry(canonicalize_name(name), parents, by_name)[0]


def platform_mismatch(target: Target) -> str | None:
    """Why pip-compile on this machine cannot lock ``target``, or None."""
    families = {"linux": ("manylinux", "musllinux"), "darwin": ("macosx",), "win32": ("win",)}
    here = families.get(sys.platform, ())
    for platform in target.platforms:
        if not platform.startswith(here):
            return (
                f"target {target.name} is for {platform}, but pip-compile resolves "
                f"environment markers for this machine ({sys.platform})"
            )
    return None


def chain_to_entry(
    name: NormalizedName, lock: Lock, entries: dict[NormalizedName, PackageEntry]
) -> tuple[PackageEntry, tuple[str, ...]]:
    """The nearest allowlist entry that pulls ``name`` in, and the chain from it."""
    return _nearest_entry(name, {p.name: p.via for p in lock.packages}, entries)


def _nearest_entry(
    name: NormalizedName,
    parents: Mapping[NormalizedName, Sequence[str]],
    entries: Mapping[NormalizedName, PackageEntry],
) -> tuple[PackageEntry, tuple[str, ...]]:
    """Breadth first up the ``via`` parents: the first entry met, and the chain from it."""
    queue: list[tuple[NormalizedName, tuple[str, ...]]] = [(name, (name,))]
    seen: set[str] = set()
    while queue:
        current, path = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if current in entries:
            return entries[current], tuple(reversed(path))
        above = sorted(canonicalize_name(v) for v in parents.get(current, ()) if v != TOP_LEVEL)
        queue.extend((parent, (*path, parent)) for parent in above)
    first = next(iter(entries.values()))
    return first, (first.name, name)
