"""``pipgate outdated``: for each approved entry, the newest upstream release that would
pass the policy for every target the entry serves, and the newest of all with what
would refuse it.

A release passes when it is not yanked, its project is not quarantined, it is older
than ``policy.min_release_age_days``, it has a file each target of the entry may
install (a wheel; or its sdist where the entry or the policy allows sdists), and the
configured vulnerability data knows no vulnerability in it. The vulnerability data is
asked through pip-audit, as the audit asks it: every version in question once, a
scratch requirements file per round (pip-audit takes one version of a package per
file). The report judges nothing: ``outdated`` exits 0 either way; ``pipgate bump``
acts on it. The dependencies a newer release brings are the lock's and the check's
business, once the bump is in a pull request.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pipgate import index
from pipgate.allowlist import Allowlist, PackageEntry, Target
from pipgate.allowlist.model import SdistPolicy
from pipgate.audit import Auditor, NotAuditedError, Vulnerability
from pipgate.index import IndexFile, ProjectPage, Source
from pipgate.lock import installable_files
from pipgate.names import NormalizedName, Version, file_release
from pipgate.policy import upstream_pages
from pipgate.problems import Location
from pipgate.targettags import supported_tags

ROUND = 3
"""Candidates of each entry audited per round (a round is one pip-audit run per slot)."""
AUDITS_AT_ONCE = 4
SHOWN = 200
"""The most of an index's free text (a yank reason) a report quotes."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    version: Version
    refused: tuple[str, ...]
    """Why the policy would refuse it; empty when it passes."""
    vulnerabilities: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class EntryStatus:
    entry: PackageEntry
    targets: tuple[str, ...]
    vulnerabilities: tuple[Vulnerability, ...]
    """Known in the pinned release itself."""
    passing: Candidate | None
    """The newest newer release that passes; None when none does."""
    newest: Candidate | None
    """The newest newer release of all (the same as ``passing`` when it passes)."""
    note: str = ""
    """Why the entry was not looked up (an internal package)."""
    releases: tuple[Candidate, ...] = ()
    """Every newer release down to the newest passing one (all, when none passes), newest
    first, each with what refuses it."""

    @property
    def location(self) -> Location:
        return self.entry.location

    @property
    def outdated(self) -> bool:
        return self.passing is not None

    @property
    def security_fix(self) -> bool:
        """The pinned release is known vulnerable and a passing release exists (which, by
        passing, has no known vulnerability)."""
        return bool(self.vulnerabilities) and self.passing is not None


@dataclasses.dataclass(frozen=True)
class OutdatedReport:
    source: str
    """The vulnerability data asked."""
    entries: tuple[EntryStatus, ...]

    @property
    def outdated(self) -> tuple[EntryStatus, ...]:
        return tuple(e for e in self.entries if e.outdated)


def _shown(text: str) -> str:
    """An index's free text as one line of printable characters: no terminal escape, no
    line break that could pass for a line of the report."""
    return "".join(c if c.isprintable() else " " for c in text)[:SHOWN]


def _versions(page: ProjectPage, name: NormalizedName) -> list[Version]:
    found = {
        release[1]
        for f in page.files
        if (release := file_release(f.filename)) is not None and release[0] == name
    }
    return sorted(found, reverse=True)


@dataclasses.dataclass(frozen=True)
class Rules:
    """The parts of the policy a newer release is held to, and the time it is judged at."""

    sdists: SdistPolicy
    days: int
    now: datetime.datetime

    def age_reason(self, files: Sequence[IndexFile]) -> str | None:
        if self.days <= 0:
            return None
        released = index.release_time(files)
        if released is None:
            return (
                "the upstream gives no upload time, so its age cannot be checked "
                f"({self.days}-day minimum)"
            )
        age = self.now - released
        if age < datetime.timedelta(days=self.days):
            return (
                f"released {max(0, age.days)} days ago ({released:%Y-%m-%d}), under the "
                f"{self.days}-day minimum age"
            )
        return None

    def reasons(
        self, entry: PackageEntry, version: Version, page: ProjectPage, targets: Sequence[Target]
    ) -> tuple[str, ...]:
        """What refuses ``entry``'s project at ``version`` before any vulnerability data is
        asked; empty when nothing does."""
        reasons: list[str] = []
        if page.status == "quarantined":
            why = f": {_shown(page.status_reason)}" if page.status_reason else ""
            reasons.append(f"the upstream marks {entry.name} as quarantined{why}")
        files = index.files_for_version(page.files, entry.name, version)
        live = [f for f in files if f.yanked is None]
        if files and not live:
            why = next((f.yanked for f in files if f.yanked), "") or "no reason given"
            reasons.append(f"yanked: {_shown(why)}")
            return tuple(reasons)
        age = self.age_reason(live)
        if age is not None:
            reasons.append(age)
        sdist_ok = entry.sdist or self.sdists is SdistPolicy.ALLOW
        for target in targets:
            supported = supported_tags(target.python, target.platforms, target.implementation)
            chosen = installable_files(
                live, entry.name, version, target, sdist_ok=sdist_ok, supported=supported
            )
            if not chosen.chosen:
                kind = "no wheel or sdist" if sdist_ok else "no wheel"
                reasons.append(f"{kind} for target {target.name}")
        return tuple(reasons)


Slot = dict[NormalizedName, tuple[Version, str]]
"""A scratch requirements file: one version per project, with its line."""


def _requirement(name: NormalizedName, version: Version, page: ProjectPage) -> str:
    """One line pip-audit reads without pip: hashed, with a hash of the release itself
    (pip-audit asks the service by name and version; it fetches nothing)."""
    files = index.files_for_version(page.files, name, version)
    hashed = next((f for f in files if f.sha256), None)
    if hashed is None:
        hashed = index.with_hashes(files[:1])[0]
    assert hashed.sha256 is not None  # with_hashes gives it its hash
    return f"{name}=={version} --hash=sha256:{hashed.sha256}"


def _audit_slots(
    auditor: Auditor, slots: Sequence[Slot]
) -> dict[tuple[NormalizedName, Version], tuple[Vulnerability, ...]]:
    """Each slot (at most one version per project) audited by its own pip-audit run, the
    runs side by side; raises NotAuditedError when one gives no answer (fail closed)."""
    found: dict[tuple[NormalizedName, Version], tuple[Vulnerability, ...]] = {}
    with tempfile.TemporaryDirectory(prefix="pipgate-outdated-") as scratch:
        paths = []
        for number, slot in enumerate(slots):
            path = Path(scratch) / f"slot-{number}.txt"
            path.write_text("".join(line + "\n" for _, line in slot.values()), encoding="utf-8")
            paths.append(path)
        with concurrent.futures.ThreadPoolExecutor(max_workers=AUDITS_AT_ONCE) as pool:
            results = list(pool.map(auditor.audit, paths))
    for slot, (audited, skipped) in zip(slots, results, strict=True):
        for package in audited:
            if package.name in slot:
                found[(package.name, slot[package.name][0])] = package.vulnerabilities
        missing = [f"{n}=={v}" for n, (v, _) in slot.items() if (n, v) not in found] + [
            f"{s.name} ({s.reason})" for s in skipped
        ]
        if missing:
            raise NotAuditedError(
                f"the vulnerability data gave no answer for {', '.join(missing[:5])}",
                hint="outdated fails closed: a release whose vulnerabilities are unknown is "
                "never proposed; run again, or check the audit's data",
            )
    return found


def outdated(
    allowlist: Allowlist,
    sources: Sequence[Source],
    auditor: Auditor,
    *,
    names: Iterable[NormalizedName] | None = None,
    progress: Callable[[str], None] | None = None,
) -> OutdatedReport:
    """Every entry (or those of ``names``) with its newest passing and newest release."""
    policy = allowlist.config.policy
    rules = Rules(policy.sdists, policy.min_release_age_days, datetime.datetime.now(datetime.UTC))
    wanted = set(names) if names is not None else None
    entries = [e for e in allowlist.packages if wanted is None or e.name in wanted]
    public = [e for e in entries if not e.internal]
    if progress is not None:
        progress(f"outdated: reading {len({e.name for e in public})} project pages upstream")
    pages = upstream_pages(sources, [e.name for e in public])
    served = {id(e): [t for t in allowlist.config.targets if e.applies_to(t)] for e in entries}
    # Every newer release, with what refuses it before the vulnerability data is asked.
    candidates = {
        id(e): [
            Candidate(v, rules.reasons(e, v, pages[e.name], served[id(e)]))
            for v in _versions(pages[e.name], e.name)
            if v > e.pinned and (not v.is_prerelease or e.pinned.is_prerelease)
        ]
        for e in public
    }
    if progress is not None:
        progress(f"outdated: asking {auditor.source.summary()}")
    vulnerable = _audit_rounds(auditor, public, pages, candidates)
    statuses = []
    for entry in entries:
        targets = tuple(t.name for t in served[id(entry)])
        if entry.internal:
            note = "internal: from the private registry, not looked up upstream"
            statuses.append(EntryStatus(entry, targets, (), None, None, note))
            continue
        if not pages[entry.name].files:
            note = "not found upstream (or no files there)"
            statuses.append(EntryStatus(entry, targets, (), None, None, note))
            continue
        judged = [
            _judged(c, vulnerable.get((entry.name, c.version))) for c in candidates[id(entry)]
        ]
        passing = next(
            (c for c in judged if not c.refused and (entry.name, c.version) in vulnerable), None
        )
        pinned = vulnerable.get((entry.name, entry.pinned), ())
        shown = judged[: judged.index(passing) + 1] if passing is not None else judged
        newest = judged[0] if judged else None
        statuses.append(EntryStatus(entry, targets, pinned, passing, newest, releases=tuple(shown)))
    return OutdatedReport(auditor.source.summary(), tuple(statuses))


def _judged(candidate: Candidate, found: Sequence[Vulnerability] | None) -> Candidate:
    """The candidate with its known vulnerabilities among its reasons (None: not asked)."""
    if not found:
        return candidate
    ids = tuple(v.id for v in found)
    reason = f"known vulnerabilit{'y' if len(ids) == 1 else 'ies'}: {', '.join(ids)}"
    return dataclasses.replace(candidate, refused=(*candidate.refused, reason), vulnerabilities=ids)


def _audit_rounds(
    auditor: Auditor,
    public: Sequence[PackageEntry],
    pages: Mapping[NormalizedName, ProjectPage],
    candidates: Mapping[int, Sequence[Candidate]],
) -> dict[tuple[NormalizedName, Version], tuple[Vulnerability, ...]]:
    """The pinned releases, then the candidates nothing else refuses, ``ROUND`` of each
    entry per round, until each entry has one without a known vulnerability or none is
    left."""
    current: Slot = {
        e.name: (e.pinned, _requirement(e.name, e.pinned, pages[e.name]))
        for e in public
        if index.files_for_version(pages[e.name].files, e.name, e.pinned)
    }
    pending = {id(e): [c for c in candidates[id(e)] if not c.refused] for e in public}
    slots: list[Slot] = [current] if current else []
    vulnerable: dict[tuple[NormalizedName, Version], tuple[Vulnerability, ...]] = {}
    while True:
        for position in range(ROUND):
            slot: Slot = {}
            for entry in public:
                queue = pending[id(entry)]
                if position < len(queue) and entry.name not in slot:
                    version = queue[position].version
                    slot[entry.name] = (
                        version,
                        _requirement(entry.name, version, pages[entry.name]),
                    )
            if slot:
                slots.append(slot)
        if not slots:
            return vulnerable
        vulnerable.update(_audit_slots(auditor, slots))
        slots = []
        for entry in public:
            asked = pending[id(entry)][:ROUND]
            clean = any(
                (entry.name, c.version) in vulnerable and not vulnerable[(entry.name, c.version)]
                for c in asked
            )
            pending[id(entry)] = [] if clean else pending[id(entry)][ROUND:]
