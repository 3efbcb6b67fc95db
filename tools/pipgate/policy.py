"""The supply-chain policy step: checks on every lock before anything is published.

- cooldown: a release younger than ``policy.min_release_age_days`` (PEP 700
  upload time from the upstream index) fails, top-level or transitive; an
  index that gives no time fails closed, unless the registry already holds
  the very file (it was approved before). ``cooldown_exempt`` on an entry
  lets its own release through, with the reason on record.
- yanked: a locked file the upstream has yanked (PEP 592) fails, with the reason.
- project-status: a quarantined project (PEP 792) fails; an archived or
  deprecated one is reported.
- typosquat: an entry whose name resembles a popular name or another approved
  one fails until the entry says ``not_a_typosquat_of: NAME``.
- dependency-confusion: an ``internal: true`` name that exists upstream fails,
  and so does a lock that takes an internal package's files from upstream.
- license: a package declaring a licence in ``policy.licenses.deny`` fails; a
  package declaring none is reported.

Every finding names the package, the allowlist entry (file and line) that
brought it in and the chain from it, and what to do.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from pipgate import distmeta, index, signals
from pipgate.allowlist import Allowlist, PackageEntry, Target
from pipgate.download import FileCache, fetch_to_cache
from pipgate.errors import PipgateError, PolicyError
from pipgate.http import PAGE_WORKERS
from pipgate.index import IndexFile, ProjectPage, Source
from pipgate.lock import Lock, LockedPackage, chain_to_entry
from pipgate.names import NormalizedName, Version, exact, file_release
from pipgate.problems import display_path
from pipgate.registry import Registry
from pipgate.similar import closest, popular_names


class Severity(enum.Enum):
    ERROR = "error"
    """The policy says no: the step fails."""
    WARNING = "warning"
    """Reported for the reviewer; the step still passes."""


class PolicyFailedError(PolicyError):
    """At least one finding is an error (exit 1)."""


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    package: NormalizedName
    version: Version | None
    entry: PackageEntry
    chain: tuple[str, ...]
    message: str
    hint: str
    targets: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "package": self.package,
            "version": None if self.version is None else str(self.version),
            "targets": list(self.targets),
            "message": self.message,
            "hint": self.hint,
            "entry": {
                "name": self.entry.spelled,
                "version": self.entry.version,
                "file": display_path(self.entry.location.path),
                "line": self.entry.location.line,
                "requested_by": self.entry.requested_by,
            },
            "chain": list(self.chain),
        }


class LicenceMemo:
    """What each (package, version) declares, read once per run: a memo of its own, apart
    from the frozen context that carries it."""

    def __init__(self) -> None:
        self._known: dict[tuple[NormalizedName, Version], tuple[str, ...]] = {}

    def get(
        self, key: tuple[NormalizedName, Version], read: Callable[[], tuple[str, ...]]
    ) -> tuple[str, ...]:
        if key not in self._known:
            self._known[key] = read()
        return self._known[key]


@dataclasses.dataclass(frozen=True)
class Context:
    """What the checks read: the locks, the upstream pages, the registry and the file cache."""

    allowlist: Allowlist
    locks: Mapping[str, tuple[Target, Lock]]
    pages: Mapping[NormalizedName, ProjectPage]
    """Upstream pages, merged across the upstream sources."""
    now: datetime.datetime
    cache: FileCache
    registry: Callable[[], Registry]
    located: tuple[Located, ...]
    """Every locked package with the entry that brings it in and the chain from it; the
    internal packages themselves left out (they come from the registry, never upstream:
    the dependency-confusion check covers them)."""
    licences: LicenceMemo = dataclasses.field(default_factory=LicenceMemo)
    publishers: signals.Publishers = dataclasses.field(default_factory=signals.Publishers)
    """Provenance publisher identities, read once each (see ``check_provenance``)."""
    progress: Callable[[str], None] | None = None
    """Told of each file fetched to read its metadata."""
    """What each (package, version) declares, read once (see ``license_of``)."""


Located = tuple[Target, LockedPackage, PackageEntry, tuple[str, ...]]


def locate(allowlist: Allowlist, locks: Mapping[str, tuple[Target, Lock]]) -> tuple[Located, ...]:
    """Every locked package with its entry and chain, the internal packages left out."""
    out = []
    for target, lock in locks.values():
        entries = {e.name: e for e in allowlist.packages_for(target)}
        for package in lock.packages:
            entry, chain = chain_to_entry(package.name, lock, entries)
            if not (entry.internal and entry.name == package.name):
                out.append((target, package, entry, chain))
    return tuple(out)


def make_context(
    allowlist: Allowlist,
    locks: Mapping[str, tuple[Target, Lock]],
    sources: Sequence[Source],
    cache: FileCache,
    registry: Callable[[], Registry],
    *,
    progress: Callable[[str], None] | None = None,
    only: Iterable[tuple[NormalizedName, Version]] | None = None,
) -> Context:
    """The context of the checks: the upstream pages of every locked package and of every
    internal name, read now; the registry, made (by ``registry``) only if a check needs it.
    With ``only`` (releases), the checks of locked packages look at those alone (a review
    of what a pull request changes); the name checks still see every entry."""
    located = locate(allowlist, locks)
    if only is not None:
        wanted = set(only)
        located = tuple(item for item in located if (item[1].name, item[1].version) in wanted)
    names = {package.name for _, package, _, _ in located}
    names |= {e.name for e in allowlist.packages if e.internal}
    return Context(
        allowlist=allowlist,
        locks=locks,
        pages=_hash_locked_releases(upstream_pages(sources, names), locks),
        now=datetime.datetime.now(datetime.UTC),
        cache=cache,
        registry=registry,
        located=located,
        progress=progress,
    )


# -- reading the upstream -------------------------------------------------------------------------


def _merge(pages: Iterable[ProjectPage]) -> ProjectPage:
    files: dict[str, IndexFile] = {}
    status = reason = None
    for page in pages:
        for item in page.files:
            known = files.get(item.filename)
            if known is None:
                files[item.filename] = item
                continue
            # The time from whichever source gives one; a yank by any source counts.
            files[item.filename] = dataclasses.replace(
                known,
                upload_time=known.upload_time or item.upload_time,
                yanked=known.yanked if known.yanked is not None else item.yanked,
            )
        if page.status is not None and status in (None, "active"):
            status, reason = page.status, page.status_reason
    return ProjectPage(tuple(sorted(files.values(), key=lambda f: f.filename)), status, reason)


def upstream_pages(
    sources: Sequence[Source], names: Iterable[NormalizedName]
) -> dict[NormalizedName, ProjectPage]:
    """Each project's page, merged over every upstream source, read a few at a time."""
    wanted = sorted(set(names))

    def fetch(name: NormalizedName) -> ProjectPage:
        return _merge(index.project_page(source, name) for source in sources)

    with concurrent.futures.ThreadPoolExecutor(max_workers=PAGE_WORKERS) as pool:
        return dict(zip(wanted, pool.map(fetch, wanted), strict=True))


def _hash_locked_releases(
    pages: dict[NormalizedName, ProjectPage], locks: Mapping[str, tuple[Target, Lock]]
) -> dict[NormalizedName, ProjectPage]:
    """The pages with every file of a locked release hashed, once, where the page gave no
    hash (a find-links folder, an index without hashes); other versions' files are not
    fetched."""
    releases: dict[NormalizedName, set[str]] = {}
    for _, lock in locks.values():
        for package in lock.packages:
            releases.setdefault(package.name, set()).add(exact(package.version))
    out = {}
    for name, page in pages.items():
        wanted = releases.get(name, set())
        unhashed = [
            f
            for f in page.files
            if f.sha256 is None
            and (release := file_release(f.filename)) is not None
            and exact(release[1]) in wanted
        ]
        if not unhashed:
            out[name] = page
            continue
        hashed = dict(zip(unhashed, index.with_hashes(unhashed), strict=True))
        out[name] = dataclasses.replace(page, files=tuple(hashed.get(f, f) for f in page.files))
    return out


def locked_files(package: LockedPackage, page: ProjectPage) -> list[IndexFile]:
    """The page's files of the locked release that the lock holds; the context hashed the
    locked releases' files once where the page gave no hash."""
    release = index.files_for_version(page.files, package.name, package.version)
    return [f for f in index.with_hashes(release) if f.sha256 in package.hashes]


# -- the checks -----------------------------------------------------------------------------------


def check_cooldown(context: Context) -> list[Finding]:
    days = context.allowlist.config.policy.min_release_age_days
    if days <= 0:
        return []
    limit = datetime.timedelta(days=days)
    findings: list[Finding] = []
    unknown: list[tuple[Target, LockedPackage, PackageEntry, tuple[str, ...]]] = []
    for target, package, entry, chain in context.located:
        exempt = entry.name == package.name and entry.cooldown_exempt
        released = index.release_time(locked_files(package, context.pages[package.name]))
        if exempt:
            continue
        if released is None:
            unknown.append((target, package, entry, chain))
            continue
        age = context.now - released
        if age < limit:
            hours = max(0, int(age.total_seconds() // 3600))
            findings.append(
                Finding(
                    "cooldown",
                    Severity.ERROR,
                    package.name,
                    package.version,
                    entry,
                    chain,
                    f"{package.name}=={package.version} was released {hours} hours ago "
                    f"({released:%Y-%m-%d %H:%M} UTC), under the {days}-day minimum age",
                    "wait until it is older (most malicious releases are removed within "
                    "days), pin an older release, or, for an urgent fix, give its entry "
                    "'cooldown_exempt: REASON'",
                    (target.name,),
                )
            )
    if unknown:
        findings += _unknown_release_times(context, unknown, days)
    return findings


def _unknown_release_times(
    context: Context,
    unknown: Sequence[tuple[Target, LockedPackage, PackageEntry, tuple[str, ...]]],
    days: int,
) -> list[Finding]:
    """Releases whose age the upstream does not tell: fine only if the registry holds them."""
    held: set[str] = set()
    why = ""
    try:
        registry = context.registry()
        held = {
            h.sha256 for h in registry.list(sorted({p.name for _, p, _, _ in unknown})).values()
        }
    except PipgateError as error:
        why = f" (the registry could not be read to tell: {error.message})"
    findings = []
    for target, package, entry, chain in unknown:
        if held & set(package.hashes):
            continue  # approved and published before
        findings.append(
            Finding(
                "cooldown",
                Severity.ERROR,
                package.name,
                package.version,
                entry,
                chain,
                f"the upstream index gives no upload time for {package.name}=={package.version}, "
                f"so its age cannot be checked against the {days}-day minimum{why}",
                "use an index that publishes upload times (PEP 700 in the JSON simple API), "
                "or give the entry 'cooldown_exempt: REASON' after checking the release by hand",
                (target.name,),
            )
        )
    return findings


def check_yanked(context: Context) -> list[Finding]:
    findings = []
    for target, package, entry, chain in context.located:
        yanked = [
            f for f in locked_files(package, context.pages[package.name]) if f.yanked is not None
        ]
        if not yanked:
            continue
        reason = next((f.yanked for f in yanked if f.yanked), "") or "no reason given"
        findings.append(
            Finding(
                "yanked",
                Severity.ERROR,
                package.name,
                package.version,
                entry,
                chain,
                f"{package.name}=={package.version} is yanked upstream: {reason}",
                "pin a release that is not yanked"
                + (
                    "" if entry.name == package.name else f" of {entry.spelled}, or of this package"
                ),
                (target.name,),
            )
        )
    return findings


def check_status(context: Context) -> list[Finding]:
    findings = []
    for target, package, entry, chain in context.located:
        page = context.pages[package.name]
        if page.status in (None, "active"):
            continue
        severe = page.status == "quarantined"
        reason = f": {page.status_reason}" if page.status_reason else ""
        findings.append(
            Finding(
                "project-status",
                Severity.ERROR if severe else Severity.WARNING,
                package.name,
                package.version,
                entry,
                chain,
                f"the upstream marks {package.name} as {page.status}{reason}",
                "remove it: a quarantined project is suspected of malware"
                if severe
                else "it gets no more fixes; plan a replacement",
                (target.name,),
            )
        )
    return findings


def check_typosquats(context: Context) -> list[Finding]:
    popular = popular_names()
    trusted = set(popular)
    entries = context.allowlist.packages
    findings = []
    for entry in entries:
        if entry.name in trusted or entry.internal:
            continue
        others = [e.name for e in entries if e.name != entry.name]
        found = closest(entry.spelled, popular) or closest(entry.spelled, others)
        if found is None:
            continue
        name, how = found
        if entry.not_a_typosquat_of == name:
            continue
        kind = "a popular package" if name in trusted else "an approved package"
        findings.append(
            Finding(
                "typosquat",
                Severity.ERROR,
                entry.name,
                entry.pinned,
                entry,
                (entry.name,),
                f"'{entry.spelled}' resembles {kind}, '{name}' ({how})",
                f"if '{name}' was meant, fix the name; if '{entry.spelled}' really is another "
                f"project, say so on its entry: not_a_typosquat_of: {name}",
            )
        )
    return findings


def check_dependency_confusion(context: Context) -> list[Finding]:
    findings = []
    for entry in (e for e in context.allowlist.packages if e.internal):
        page = context.pages.get(entry.name)
        if page is None or not page.files:
            continue
        findings.append(
            Finding(
                "dependency-confusion",
                Severity.ERROR,
                entry.name,
                entry.pinned,
                entry,
                (entry.name,),
                f"the internal package '{entry.spelled}' also exists upstream "
                f"({len(page.files)} files): anyone can publish under that name there",
                "rename the internal package to a name that is not taken upstream, or "
                "check who publishes it there before anything else",
            )
        )
        for target, lock in context.locks.values():
            package = lock.package(entry.name)
            if package is not None and locked_files(package, page):
                findings.append(
                    Finding(
                        "dependency-confusion",
                        Severity.ERROR,
                        entry.name,
                        package.version,
                        entry,
                        (entry.name,),
                        f"the lock of {target.name} takes the internal package "
                        f"{entry.name}=={package.version} from upstream",
                        "an internal package comes from the private registry only: remove "
                        "the upstream project from reach and lock again",
                        (target.name,),
                    )
                )
    return findings


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")
_OPERATORS = {"and", "or", "with"}


def declared_license(meta: distmeta.CoreMetadata) -> tuple[str, ...]:
    """What a package says its licence is: its SPDX expression, its License field and
    classifiers; empty when it says nothing."""
    declared: list[str] = []
    if meta.license_expression:
        declared.append(meta.license_expression.strip())
    elif meta.license and meta.license.strip().upper() not in ("", "UNKNOWN"):
        first = meta.license.strip().splitlines()[0]
        declared.append(first[:80])
    declared += [c for c in meta.classifiers if c.startswith("License ::")]
    return tuple(declared)


def denied(declared: Sequence[str], deny: Sequence[str]) -> str | None:
    """The denied licence a package is held to, or None.

    An SPDX ``OR`` offers a choice: it is denied only when every choice is.
    """
    classifiers = {d for d in declared if d.startswith("License ::")}
    for item in deny:
        if item.startswith("License ::") and item in classifiers:
            return item
    ids = {i.lower(): i for i in deny if not i.startswith("License ::")}
    for text in (d for d in declared if not d.startswith("License ::")):
        choices = re.split(r"\s+OR\s+", text, flags=re.IGNORECASE)
        hits = []
        for choice in choices:
            tokens = {t.lower() for t in _TOKEN.findall(choice)} - _OPERATORS
            hit = next((ids[t] for t in sorted(tokens) if t in ids), None)
            hits.append(hit)
        if hits and all(hits):
            return hits[0]
    return None


def check_licenses(context: Context, skip: Iterable[str] = ()) -> list[Finding]:
    """``skip``: packages already refused, whose files are not fetched."""
    deny = context.allowlist.config.policy.licenses_deny
    refused = set(skip)
    findings = []
    for target, package, entry, chain in context.located:
        if package.name in refused:
            continue
        declared = license_of(context, package)
        if not declared:
            findings.append(
                Finding(
                    "license",
                    Severity.WARNING,
                    package.name,
                    package.version,
                    entry,
                    chain,
                    f"{package.name}=={package.version} declares no licence",
                    "check its licence by hand before approving it",
                    (target.name,),
                )
            )
            continue
        hit = denied(declared, deny)
        if hit is not None:
            findings.append(
                Finding(
                    "license",
                    Severity.ERROR,
                    package.name,
                    package.version,
                    entry,
                    chain,
                    f"{package.name}=={package.version} is licensed {'; '.join(declared)}, "
                    f"which policy.licenses.deny refuses ({hit})",
                    "pick another package, or have the licence policy changed",
                    (target.name,),
                )
            )
    return findings


def license_of(context: Context, package: LockedPackage) -> tuple[str, ...]:
    """Read from the package's own metadata: a cached file, or one fetched by hash (no pip,
    nothing run: an sdist's PKG-INFO is read, never built). Once per context."""
    return context.licences.get(
        (package.name, package.version), lambda: _read_license(context, package)
    )


def _read_license(context: Context, package: LockedPackage) -> tuple[str, ...]:
    path = next((p for h in sorted(package.hashes) if (p := context.cache.get(h))), None)
    if path is None:
        files = locked_files(package, context.pages[package.name])
        wheel_first = sorted(files, key=lambda f: (not f.filename.endswith(".whl"), f.filename))
        if not wheel_first:
            return ()
        # The index's copy of a wheel's metadata (PEP 658/714), by its listed sha256: a few
        # kilobytes instead of the wheel.
        described = next((f for f in wheel_first if f.metadata and f.metadata_sha256), None)
        if described is not None:
            text = index.core_metadata(described, context.cache.root / "metadata")
            if text is not None:
                try:
                    return declared_license(distmeta.parse(text, described.filename))
                except distmeta.MetadataError:
                    return ()
        chosen = wheel_first[0]
        assert chosen.sha256 is not None  # locked_files hashed it
        if context.progress is not None and context.cache.get(chosen.sha256) is None:
            size = f" ({chosen.size / 1e6:.1f} MB)" if chosen.size is not None else ""
            context.progress(
                f"check: reading the licence of {package.name} in {chosen.filename}{size}"
            )
        path = fetch_to_cache(context.cache, chosen, chosen.sha256)
    try:
        return declared_license(distmeta.read(path))
    except distmeta.MetadataError:
        return ()


def _releases(context: Context) -> list[tuple[Located, tuple[str, ...]]]:
    """Each locked release once (as the first target that holds it locates it), with every
    target that holds it: for the checks of a release."""
    first: dict[tuple[NormalizedName, str], Located] = {}
    targets: dict[tuple[NormalizedName, str], set[str]] = {}
    for located in context.located:
        key = (located[1].name, exact(located[1].version))
        first.setdefault(key, located)
        targets.setdefault(key, set()).add(located[0].name)
    return [(located, tuple(sorted(targets[key]))) for key, located in first.items()]


def check_signals(context: Context) -> list[Finding]:
    """Dormancy and revival, new projects, late files and missing files (policy.signals)."""
    findings = []
    for (_, package, entry, chain), where in _releases(context):
        findings += [
            Finding(rule, severity, package.name, package.version, entry, chain, said, hint, where)
            for rule, severity, said, hint in _release_signals(context, package)
        ]
    return findings


def _release_signals(
    context: Context, package: LockedPackage
) -> list[tuple[str, Severity, str, str]]:
    config = context.allowlist.config.policy.signals
    page = context.pages.get(package.name, ProjectPage(()))
    release = f"{package.name}=={package.version}"
    found: list[tuple[str, Severity, str, str]] = []
    if config.missing_files and (gone := signals.missing_files(package, page)):
        found.append(
            (
                "missing-files",
                Severity.ERROR,
                f"the lock holds {len(gone)} file(s) of {release} that the upstream no "
                f"longer lists (sha256 {', '.join(d[:12] for d in gone)})",
                "find out why they were removed (an index removes malware, and a maintainer "
                "a broken build); re-lock to take what is listed now, or remove the entry",
            )
        )
    revived = signals.dormancy(package, page, config.dormant_years)
    if revived is not None:
        previous, when, gap = revived
        found.append(
            (
                "dormant-revival",
                Severity.WARNING,
                f"{release} came out {gap.days // 365} years and {gap.days % 365} days after "
                f"the release before it ({previous}, {when:%Y-%m-%d})",
                "a project silent for years that suddenly publishes is the pattern of a "
                "hijacked account (ctx, 2022): check who published this release and why",
            )
        )
    first = signals.first_release(page)
    days = config.new_project_days
    if days > 0 and first is not None and context.now - first < datetime.timedelta(days):
        found.append(
            (
                "new-project",
                Severity.WARNING,
                f"{package.name}'s first release came out {(context.now - first).days} days "
                f"ago ({first:%Y-%m-%d}), under {days} days",
                "check it is the project meant (typosquats, and names invented by code "
                "assistants, are new projects), who publishes it, and that others use it",
            )
        )
    for item, after in signals.late_files(package, page, config.late_file_days):
        found.append(
            (
                "late-file",
                Severity.WARNING,
                f"{item.filename} was added to {release} {after.days} days after its first file",
                "a file added long after a release can be a replaced or injected build: "
                "compare it with the release's other files, or pin another release",
            )
        )
    return found


def check_provenance(context: Context) -> list[Finding]:
    """PEP 740: a release without provenance, or by another publisher, where the release
    before it had provenance."""
    if not context.allowlist.config.policy.signals.provenance:
        return []
    pairs = []
    for located, where in _releases(context):
        package = located[1]
        page = context.pages.get(package.name, ProjectPage(()))
        before = signals.previous_release(page, package.version)
        if before is None:
            continue
        earlier = signals.release_provenance(page, package.name, before)
        if earlier is None:
            continue  # the release before had none: nothing to compare with
        mine = signals.release_provenance(page, package.name, package.version, package.hashes)
        pairs.append((located, where, before, earlier, mine))
    context.publishers.read([f for *_, e, m in pairs for f in (e, m) if f is not None])
    findings = []
    for (_, package, entry, chain), where, before, earlier, mine in pairs:
        was = context.publishers.of(earlier)
        now = context.publishers.of(mine)
        release = f"{package.name}=={package.version}"
        shown = "; ".join(was or ())
        if now is None:
            message = (
                f"{release} has no provenance, but {package.name}=={before} was published "
                f"with provenance by {shown}"
            )
        elif now != was:
            message = (
                f"{release} was published by {'; '.join(now)}, but {package.name}=={before} "
                f"by {shown}"
            )
        else:
            continue
        findings.append(
            Finding(
                "provenance",
                Severity.ERROR,
                package.name,
                package.version,
                entry,
                chain,
                message,
                "a release made outside the project's trusted publishing is the pattern of a "
                f"stolen token (Ultralytics, December 2024): ask the maintainers, or stay on "
                f"{before}",
                where,
            )
        )
    return findings


def publisher_of(context: Context, package: LockedPackage) -> tuple[str, ...] | None:
    """The publisher identities of the locked release's provenance; None without any."""
    if not context.allowlist.config.policy.signals.provenance:
        return None
    page = context.pages.get(package.name, ProjectPage(()))
    found = signals.release_provenance(page, package.name, package.version, package.hashes)
    return context.publishers.of(found)


CHECKS: tuple[Callable[[Context], list[Finding]], ...] = (
    check_typosquats,
    check_dependency_confusion,
    check_yanked,
    check_status,
    check_cooldown,
    check_signals,
    check_provenance,
)
"""The checks that read no package file. They run first, and the licence check fetches
nothing of a package they refuse (a squatted name, a fresh or yanked release)."""


def run_checks(context: Context) -> list[Finding]:
    findings = [f for check in CHECKS for f in check(context)]
    refused = {f.package for f in findings if f.severity is Severity.ERROR}
    findings += check_licenses(context, skip=refused)
    return _merged(findings)


def _merged(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per rule, package and message, with the targets it holds for."""
    merged: dict[tuple[str, NormalizedName, Version | None, str], Finding] = {}
    for finding in findings:
        key = (finding.rule, finding.package, finding.version, finding.message)
        known = merged.get(key)
        if known is None:
            merged[key] = finding
        else:
            targets = tuple(sorted({*known.targets, *finding.targets}))
            merged[key] = dataclasses.replace(known, targets=targets)
    order = {Severity.ERROR: 0, Severity.WARNING: 1}
    return sorted(
        merged.values(),
        key=lambda f: (
            order[f.severity],
            str(f.entry.location.path),
            f.entry.location.line,
            f.rule,
            f.package,
        ),
    )
