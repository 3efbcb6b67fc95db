"""Locking one target: the entries, the resolver's pins, and the files each pin may use.

pip-compile (or another engine behind ``Locker``) resolves; the hashes come
from the index's own pages, which already carry every file's sha256, instead
of ``--generate-hashes``, which downloads every file of every pin from an
index without the PyPI JSON API just to hash it. Every file of the pinned
version that a consumer on the target could install (each wheel whose tags
the target accepts, and the sdist where the entry or the policy allows
sdists) has its hash in the lock.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from packaging.tags import Tag

from pipgate import index
from pipgate.allowlist import Allowlist, PackageEntry, Target
from pipgate.allowlist.model import Policy, SdistPolicy, TransitivePolicy
from pipgate.errors import InputError
from pipgate.fsutil import write_atomic
from pipgate.http import PAGE_WORKERS
from pipgate.index import IndexFile, Source
from pipgate.lock.front import IndexFront, target_files
from pipgate.lock.interface import (
    Builds,
    Locker,
    LockError,
    LockInputError,
    LockPolicyError,
    LockToolError,
    Pin,
    Request,
)
from pipgate.lock.lockfile import (
    Lock,
    LockedPackage,
    digest_of,
    inputs_document,
    lock_path,
    read_lock,
    remember_inputs,
    remembered_inputs,
    render_lock,
)
from pipgate.lock.select import installable_files
from pipgate.names import NormalizedName, exact, file_release
from pipgate.problems import Location, Problem
from pipgate.runner import redact
from pipgate.targettags import supported_tags


@dataclasses.dataclass(frozen=True)
class Outcome:
    target: str
    path: Path
    changed: bool
    lock: Lock
    skipped: bool
    """True when the inputs had not changed and nothing was resolved."""
    previous: Lock | None = None
    """The lock this one replaced, for the report of what changed."""


def _fetch_pages(
    sources: Sequence[Source],
    names: Iterable[NormalizedName],
    versions: Mapping[NormalizedName, frozenset[str]] | None = None,
    keeps: Mapping[NormalizedName, index.Keep] | None = None,
) -> dict[str, list[IndexFile]]:
    """Each project's files over every source, a few pages at a time; with ``versions``,
    only the files of those releases of each project (``None`` for a project: all); with
    ``keeps``, only the files each project's first look keeps."""
    wanted = sorted(set(names))

    def fetch(name: NormalizedName) -> list[IndexFile]:
        only = versions.get(name) if versions is not None else None
        keep = keeps.get(name) if keeps is not None else None
        files: list[IndexFile] = []
        for source in sources:
            files.extend(index.project_files(source, name, versions=only, keep=keep))
        return files

    with concurrent.futures.ThreadPoolExecutor(max_workers=PAGE_WORKERS) as pool:
        return dict(zip(wanted, pool.map(fetch, wanted), strict=True))


def _check_entries_exist(
    entries: Sequence[PackageEntry],
    pages: dict[str, list[IndexFile]],
    where: str,
    sources: Sequence[Source] = (),
) -> None:
    problems = []
    for entry in entries:
        files = pages.get(entry.name, [])
        if not files and sources:
            # Read for its pinned release only, and nothing there: the whole page says
            # whether the project exists, and which releases it has.
            files = _fetch_pages(sources, [entry.name])[entry.name]
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
                {r[1] for f in files if (r := file_release(f.filename))}, reverse=True
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


def _internal_pages(locker: Locker, entries: Sequence[PackageEntry]) -> dict[str, list[IndexFile]]:
    """The internal entries' files, from the private registry alone (never upstream: their
    hashes are the registry's own); an entry that is not there is a problem."""
    internal = [e for e in entries if e.internal]
    if not internal:
        return {}
    pages = dict(locker.internal_files({e.name for e in internal}))
    _check_entries_exist(internal, pages, "the private registry")
    return pages


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


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
    document = inputs_document(allowlist, target)
    digest = digest_of(document)
    existing = read_lock(path, target.name)
    if existing is not None and existing.digest == digest and not upgrade:
        return Outcome(target.name, path, False, existing, True)

    mismatch = locker.cannot_lock(target)
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
    policy = allowlist.config.policy
    supported = supported_tags(target.python, target.platforms, target.implementation)
    by_name = {e.name: e for e in entries}
    internal = frozenset(e.name for e in entries if e.internal)
    step = _Step(locker, sources, where, target, policy, supported, frozenset(by_name), internal)
    made: tuple[list[LockedPackage], list[Problem]] | None = None
    if existing is not None and not upgrade:
        increment = _increment(existing, remembered_inputs(existing.digest), document, entries)
        if increment is not None:
            if progress is not None:
                progress(
                    f"{target.name}: {_count(len(increment.added), 'entry', 'entries')} added, "
                    f"{len(increment.kept)} pins kept from the current lock"
                )
            made = _lock_increment(step, increment, by_name)
    if made is None:
        made = _lock_whole(step, entries, by_name, upgrade, path if existing is not None else None)
    packages, problems = made
    parents = {p.name: p.parents for p in packages}
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
    remember_inputs(document)
    return Outcome(target.name, path, changed, lock, False, existing)


@dataclasses.dataclass(frozen=True)
class _Step:
    """What every resolution of one target shares."""

    locker: Locker
    sources: Sequence[Source]
    where: str
    target: Target
    policy: Policy
    supported: frozenset[Tag]
    entries: frozenset[NormalizedName]
    """The target's entries, all of them (a re-lock resolves the added ones only)."""
    internal: frozenset[NormalizedName]


def _lock_whole(
    step: _Step,
    entries: Sequence[PackageEntry],
    by_name: Mapping[NormalizedName, PackageEntry],
    upgrade: bool,
    previous: Path | None,
) -> tuple[list[LockedPackage], list[Problem]]:
    """Every entry resolved together (keeping the current lock's pins where it can)."""
    pins, pages = _resolve(step, entries, upgrade=upgrade, previous=previous)
    return _hashed(step, pins, pages, by_name)


def _resolve(
    step: _Step,
    entries: Sequence[PackageEntry],
    *,
    upgrade: bool = False,
    previous: Path | None = None,
    constraints: tuple[str, ...] = (),
) -> tuple[list[Pin], dict[str, list[IndexFile]]]:
    """The resolver's pins for ``entries``, and the pages of their pinned releases.

    The resolver starts at once: the entries' pages are read in the background by the
    front it is served from (a page that redirects to another origin is refused there, and
    the resolver never reads an index itself). What pipgate found wrong with a page or an
    entry explains a failure better than the resolver's message, so it is raised first."""
    public = [e for e in entries if e.name not in step.internal]
    pages = _internal_pages(step.locker, entries)
    # Every release the pin matches (1.0.0 and 1.0+local for ==1.0): the resolver is served
    # these, and a sibling it then chooses is refused by name (_check_exact).
    pinned = {e.name: index.release_matching(e.pinned) for e in public}
    # What the resolver may build is said on its command line, so the pages of the entries
    # that may be built are read first (under sdists: deny, only those with sdist: true).
    early = [e for e in entries if e.sdist and step.policy.sdists is SdistPolicy.DENY]
    upstream = [e for e in early if e.name not in step.internal]
    known = _fetch_pages(step.sources, [e.name for e in upstream], keeps=pinned)
    _check_entries_exist(upstream, known, step.where, step.sources)
    builds = _builds(early, {**pages, **known}, step.target, step.policy.sdists, step.supported)
    days = step.policy.min_release_age_days
    cutoff = None
    if days > 0:
        cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    front = IndexFront(
        step.sources,
        keep=target_files(step.supported),
        keeps=pinned,
        read=[e.name for e in public if e.name not in known],
        known=known,
        exempt=step.entries,
        internal=step.internal,
        cutoff=cutoff,
    )
    failure: LockError | None = None
    with front:
        request = Request(
            step.target,
            tuple(entries),
            builds,
            upgrade=upgrade,
            previous=previous,
            index=front.url,
            held_index=front.held_url,
            constraints=constraints,
        )
        try:
            pins = step.locker.resolve(request)
        except LockError as error:
            failure = error
        front.settle()
        found: dict[str, list[IndexFile]] = {e.name: front.files(e.name) for e in public}
    _check_entries_exist(public, found, step.where, step.sources)
    # An entry with no wheel for the target that may not be built: said by name and line.
    pages.update(found)
    _builds(entries, pages, step.target, step.policy.sdists, step.supported)
    if failure is not None:
        raise failure
    for name, files in front.pages.items():
        pages.setdefault(name, files)
    return pins, pages


def _hashed(
    step: _Step,
    pins: Sequence[Pin],
    pages: dict[str, list[IndexFile]],
    by_name: Mapping[NormalizedName, PackageEntry],
) -> tuple[list[LockedPackage], list[Problem]]:
    """The resolver's pins, checked, each with the hashes of the files the target may
    install; a pin with none is a problem."""
    _check_exact(pins, by_name, step.target)
    more = [p for p in pins if p.name not in pages]
    versions = {p.name: frozenset({exact(p.version)}) for p in more}
    pages.update(_fetch_pages(step.sources, [p.name for p in more], versions))
    return _select_files(
        pins,
        pages,
        by_name,
        target=step.target,
        where=step.where,
        supported=step.supported,
        policy=step.policy,
    )


@dataclasses.dataclass(frozen=True)
class _Increment:
    """A re-lock whose only change is entries added or removed: the current lock's pins
    that the remaining entries still reach are kept as they are."""

    kept: tuple[LockedPackage, ...]
    added: tuple[PackageEntry, ...]


def _entry_key(requirement: str, sdist: object, internal: object, exempt: object) -> str:
    return json.dumps([requirement, sdist, internal, exempt])


def _increment(
    existing: Lock,
    before: Mapping[str, object] | None,
    now: Mapping[str, object],
    entries: Sequence[PackageEntry],
) -> _Increment | None:
    """The pins to keep and the entries to resolve, when the inputs differ from those of
    the current lock by entries added or removed alone; None when a whole resolution is
    needed (nothing known of the current lock's inputs, another change, or an added
    entry whose name the lock already holds: a new version, or a pin that becomes an entry).
    """
    if before is None or set(before) != set(now):
        return None
    if any(before[key] != now[key] for key in now if key != "entries"):
        return None
    old_entries = before.get("entries")
    if not isinstance(old_entries, list) or not all(
        isinstance(e, list) and len(e) == 4 for e in old_entries
    ):
        return None
    old = {_entry_key(*e) for e in old_entries}
    current = {
        _entry_key(e.requirement, e.sdist, e.internal, bool(e.cooldown_exempt)): e for e in entries
    }
    added = [e for key, e in current.items() if key not in old]
    held = {p.name for p in existing.packages}
    if any(e.name in held for e in added):
        return None
    kept_entries = {e.name for key, e in current.items() if key in old}
    # What the kept entries still reach, down the lock's own edges.
    children: dict[NormalizedName, list[NormalizedName]] = {}
    for package in existing.packages:
        for parent in package.parents:
            children.setdefault(parent, []).append(package.name)
    reached: set[NormalizedName] = set()
    todo = [n for n in kept_entries if n in held]
    if len(todo) != len(kept_entries):
        return None  # an entry the lock does not hold: not a lock of these inputs
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(children.get(name, ()))
    kept = tuple(
        dataclasses.replace(
            p,
            parents=tuple(q for q in p.parents if q in reached),
            top_level=p.name in kept_entries,
        )
        for p in existing.packages
        if p.name in reached
    )
    return _Increment(kept, tuple(added))


def _lock_increment(
    step: _Step, increment: _Increment, by_name: Mapping[NormalizedName, PackageEntry]
) -> tuple[list[LockedPackage], list[Problem]] | None:
    """The kept pins with the added entries resolved against them (held to their versions
    by constraints); None when that fails, and a whole resolution then decides (and
    explains)."""
    kept = {p.name: p for p in increment.kept}
    if not increment.added:
        return list(increment.kept), []
    held = tuple(f"{p.name}=={p.version}" for p in increment.kept)
    try:
        pins, pages = _resolve(step, increment.added, constraints=held)
    except LockError:
        return None
    if any(p.name in kept and p.version != kept[p.name].version for p in pins):
        return None  # a constraint not held: let the whole resolution say why
    fresh = [p for p in pins if p.name not in kept]
    merged = dict(kept)
    hashed, problems = _hashed(step, fresh, pages, by_name)
    for package in hashed:
        merged[package.name] = package
    for pin in pins:
        if pin.name in kept:
            # A kept pin that an added entry also needs: one more parent.
            old = kept[pin.name]
            parents = tuple(sorted({*old.parents, *pin.parents}))
            merged[pin.name] = dataclasses.replace(
                old, parents=parents, top_level=old.top_level or pin.top_level
            )
        elif pin.name in merged:
            package = merged[pin.name]
            merged[pin.name] = dataclasses.replace(package, parents=tuple(sorted(pin.parents)))
    return [merged[name] for name in sorted(merged)], problems


def _select_files(
    pins: Sequence[Pin],
    pages: Mapping[str, Sequence[IndexFile]],
    by_name: Mapping[NormalizedName, PackageEntry],
    *,
    target: Target,
    where: str,
    supported: frozenset[Tag],
    policy: Policy,
) -> tuple[list[LockedPackage], list[Problem]]:
    """Each pin's files the target may install, hashed; a pin with none is a problem."""
    parents = {p.name: p.parents for p in pins}
    problems: list[Problem] = []
    packages: list[LockedPackage] = []
    for pin in pins:
        entry = by_name.get(pin.name)
        sdist_ok = policy.sdists is SdistPolicy.ALLOW or (entry is not None and entry.sdist)
        selection = installable_files(
            pages.get(pin.name, []),
            pin.name,
            pin.version,
            target,
            sdist_ok=sdist_ok,
            supported=supported,
        )
        # Only the files this target may install are hashed where the page gave no hash.
        selection = dataclasses.replace(
            selection,
            wheels=index.with_hashes(selection.wheels),
            sdists=index.with_hashes(selection.sdists),
        )
        if not selection.release:
            raise LockToolError(
                f"{pin.name}=={pin.version} was resolved, but {where} lists no file for it",
                hint="the index changed during the run, or pip found it elsewhere; run again",
            )
        if not selection.hashes:
            needed = "" if entry else f", needed by {', '.join(pin.via)}"
            location = blame(pin.name, parents, by_name).location
            problems.append(
                _no_wheel(location, f"{pin.name}=={pin.version}", target, entry, needed)
            )
            continue
        packages.append(
            LockedPackage(pin.name, pin.version, selection.hashes, pin.parents, pin.top_level)
        )

    return packages, problems


def _no_wheel(
    location: Location, what: str, target: Target, entry: PackageEntry | None, needed: str = ""
) -> Problem:
    return Problem(
        location,
        f"{what} has no wheel for target {target.name} "
        f"(Python {target.python}, {' '.join(target.platforms)}){needed}",
        "pick a version with a wheel for the target, or allow building it from its "
        "sdist with 'sdist: true' on its entry"
        if entry
        else "add an entry for it with 'sdist: true' to allow building its sdist",
    )


def _builds(
    entries: Sequence[PackageEntry],
    pages: Mapping[str, Sequence[IndexFile]],
    target: Target,
    sdists: SdistPolicy,
    supported: frozenset[Tag],
) -> Builds:
    """What the resolver may build: under ``sdists: deny``, nothing but the entries with
    ``sdist: true`` that publish no wheel for the target. An entry that needs a build and
    may not have one is refused here, before any resolver runs."""
    if sdists is SdistPolicy.ALLOW:
        return Builds(any=True)
    allowed = []
    problems = []
    for entry in entries:
        selection = installable_files(
            pages.get(entry.name, ()),
            entry.name,
            entry.pinned,
            target,
            sdist_ok=False,
            supported=supported,
        )
        if selection.wheels:
            continue
        if entry.sdist:
            allowed.append(entry.name)
        else:
            problems.append(
                _no_wheel(entry.location, entry.spelled + "==" + entry.version, target, entry)
            )
    if problems:
        raise LockPolicyError(
            f"the lock of {target.name} breaks the policy",
            problems,
            hint="each problem says what to change",
        )
    return Builds(any=False, allowed=tuple(sorted(allowed)))


def _check_exact(
    pins: Sequence[Pin], by_name: Mapping[NormalizedName, PackageEntry], target: Target
) -> None:
    """Each entry's pin is exactly its version (``==1.0`` also matches ``1.0+local`` and
    ``1.0.0``); a transitive pin with a local version is refused."""
    problems = []
    for pin in pins:
        entry = by_name.get(pin.name)
        if entry is not None and exact(pin.version) != exact(entry.pinned):
            problems.append(
                Problem(
                    entry.location,
                    f"the resolver chose {pin.name}=={pin.version} for the entry "
                    f"{entry.spelled}=={entry.version}: the index offers a release that the "
                    "pin also matches, which is not the approved one",
                    "find out who published it (a local-version sibling is a known attack); "
                    "if it is the one meant, spell its exact version in the entry",
                )
            )
        elif entry is None and pin.version.local is not None:
            problems.append(
                Problem(
                    blame(pin.name, {p.name: p.parents for p in pins}, by_name).location,
                    f"{pin.name}=={pin.version}, needed by {', '.join(pin.via)}, has a local "
                    "version: local versions are not releases of the project",
                    f"if {pin.name}=={pin.version} is really meant, approve it with an entry "
                    "that spells its exact version",
                )
            )
    if problems:
        raise LockPolicyError(
            f"the lock of {target.name} pins a version nobody approved",
            problems,
            hint="each problem says what to change",
        )


def blame(
    name: NormalizedName,
    parents: Mapping[NormalizedName, Sequence[NormalizedName]],
    by_name: Mapping[NormalizedName, PackageEntry],
) -> PackageEntry:
    """The allowlist entry that brought ``name`` in: its own, or the nearest ancestor's."""
    return _nearest_entry(name, parents, by_name)[0]


def chain_to_entry(
    name: NormalizedName, lock: Lock, entries: dict[NormalizedName, PackageEntry]
) -> tuple[PackageEntry, tuple[str, ...]]:
    """The nearest allowlist entry that pulls ``name`` in, and the chain from it."""
    return _nearest_entry(name, {p.name: p.parents for p in lock.packages}, entries)


def _nearest_entry(
    name: NormalizedName,
    parents: Mapping[NormalizedName, Sequence[NormalizedName]],
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
        above = sorted(parents.get(current, ()))
        queue.extend((parent, (*path, parent)) for parent in above)
    first = next(iter(entries.values()))
    return first, (first.name, name)
