"""The review report: what a pull request changes, for the person who approves it.

Compares the allowlist and locks at a git ref (the base branch) with the
working tree: packages added, removed and changed, top-level and transitive,
each with the allowlist entry that brought it in; known vulnerabilities and
the exceptions that cover them; sdists that would be built; licences; how old
each new release is; and the policy's findings (typosquats, internal names
upstream, cooldown, yanked...). Made of pure functions over the data; the
command line gathers it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pipgate import index, policy
from pipgate.allowlist import Allowlist, InvalidAllowlistError, PackageEntry, Target, load
from pipgate.audit import Auditor, decide
from pipgate.audit import Finding as VulnerabilityFinding
from pipgate.download import FileCache
from pipgate.errors import ExitCode, InputError, PipgateError
from pipgate.index import Source
from pipgate.lock import Lock, Locker, chain_to_entry, lock_path, lock_target, read_lock
from pipgate.markdown import Markup, code, emphasis, markup, strong, text
from pipgate.names import NormalizedName, Version
from pipgate.policy import Finding, Severity
from pipgate.problems import Location, display_path
from pipgate.registry import Registry
from pipgate.runner import run
from pipgate.targettags import is_sdist

MAX_ROWS = 200
"""The rows a table keeps first when the report is too long for a comment (the JSON has
them all)."""


class ReviewError(InputError):
    """The base or the working tree cannot be compared (exit 2)."""


# -- the base -------------------------------------------------------------------------------------


def materialise_base(repo: Path, ref: str, folder: Path) -> Path | None:
    """Write ``allowlist/`` and ``generated/`` as they are at ``ref`` into ``folder``.

    Returns the allowlist folder there, or None when ``ref`` has no allowlist (the
    first pull request of a repository). Files are read with git's command line.
    """
    if ref.startswith("-"):
        raise ReviewError(f"'{ref}' is not a git ref", hint="pass a branch, tag or commit")
    listed = run(
        [
            "git",
            "-C",
            repo,
            "ls-tree",
            "-r",
            "-z",
            "--name-only",
            ref,
            "--",
            "allowlist",
            "generated",
        ],
        timeout=120,
    )
    if listed.returncode != 0:
        raise ReviewError(
            f"git cannot read {ref}: {listed.stderr.strip()[-300:]}",
            hint="fetch the base branch first (git fetch origin main) and pass it as --base",
        )
    names = [n for n in listed.stdout.split("\0") if n]
    if not any(n.startswith("allowlist/") for n in names):
        return None
    for name in names:
        shown = run(["git", "-C", repo, "show", f"{ref}:{name}"], timeout=120)
        if shown.returncode != 0:
            raise ReviewError(f"git cannot show {name} at {ref}: {shown.stderr.strip()[-300:]}")
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(shown.stdout, encoding="utf-8")
    return folder / "allowlist"


GENERATED = "generated"


def generated_edits(repo: Path, ref: str) -> tuple[str, ...]:
    """The files under generated/ that the commits since ``ref`` change: only the merge
    pipeline writes there, so a pull request that does is refused. (What the pull-request
    check's own steps write in its working tree is not a commit, and not counted.)"""
    if ref.startswith("-"):
        raise ReviewError(f"'{ref}' is not a git ref", hint="pass a branch, tag or commit")
    listed = run(
        ["git", "-C", repo, "diff", "--name-only", "--no-renames", "-z", ref, "HEAD", "--",
         GENERATED],
        timeout=120,
    )  # fmt: skip
    if listed.returncode != 0:
        raise ReviewError(
            f"git cannot compare {ref} with HEAD: {listed.stderr.strip()[-300:]}",
            hint="fetch the base branch first (git fetch origin main) and pass it as --base",
        )
    return tuple(sorted(n for n in listed.stdout.split("\0") if n))


def load_base(repo: Path, ref: str) -> tuple[dict[str, Lock], str]:
    """The base's locks, and a note when the base has no allowlist or an invalid one."""
    with tempfile.TemporaryDirectory(prefix="pipgate-review-") as scratch:
        folder = materialise_base(repo, ref, Path(scratch))
        if folder is None:
            return {}, f"{ref} has no allowlist: everything is new"
        try:
            base = load(folder, expired_is_error=False)
        except InvalidAllowlistError:
            return {}, f"the allowlist at {ref} does not validate: everything is shown as new"
        locks = {}
        for target in base.config.targets:
            lock = read_lock(lock_path(base, target), target.name)
            if lock is not None:
                locks[target.name] = lock
        return locks, ""


# -- a lock for the review, whatever it says ----------------------------------------------------


class FailureKind(enum.Enum):
    POLICY = "policy"
    """The lock breaks the policy (no wheel under sdists: deny, an unlisted package)."""
    INPUT = "input"
    """The allowlist asks for what cannot be locked (a conflict, a missing version)."""
    TOOL = "tool"
    """A resolver or an index could not answer: what the lock holds is unknown."""


@dataclasses.dataclass(frozen=True)
class LockFailure:
    """One reason a target's lock could not be made, at the entry it names where it names
    one."""

    targets: tuple[str, ...]
    kind: FailureKind
    message: str
    hint: str
    location: Location | None = None
    entry: PackageEntry | None = None


def merge_failures(failures: Iterable[LockFailure]) -> tuple[LockFailure, ...]:
    """One failure per place and message, with every target it holds for."""
    merged: dict[tuple[object, ...], LockFailure] = {}
    for failure in failures:
        key = (failure.kind, failure.location, failure.message, failure.hint)
        known = merged.get(key)
        targets = failure.targets if known is None else (*known.targets, *failure.targets)
        merged[key] = dataclasses.replace(failure, targets=tuple(sorted(set(targets))))
    return tuple(merged.values())


MAX_LOCK_ROUNDS = 4
"""Locks tried per target, each without the entries the previous one was refused for."""


def _kind(error: PipgateError) -> FailureKind:
    if error.exit_code is ExitCode.BAD_INPUT:
        return FailureKind.INPUT
    if error.exit_code is ExitCode.POLICY:
        return FailureKind.POLICY
    return FailureKind.TOOL


def lock_for_review(
    head: Allowlist, target: Target, locker: Locker, folder: Path
) -> tuple[Lock | None, Path, list[LockFailure]]:
    """The target's lock, made into ``folder`` (a generated/ tree); when it cannot be made,
    the reasons, and the
    lock of the other entries (those the reasons do not name), so that the report still
    says everything else. None when not even that can be made."""
    failures: list[LockFailure] = []
    dropped: set[NormalizedName] = set()
    allowlist = head
    path = lock_path(head, target, folder)
    for _ in range(MAX_LOCK_ROUNDS):
        try:
            outcome = lock_target(
                allowlist, target, locker, output=folder, command="pipgate review"
            )
        except PipgateError as error:
            kind = _kind(error)
            problems = getattr(error, "problems", ())
            if not problems:
                failures.append(LockFailure((target.name,), kind, error.message, error.hint or ""))
                return None, path, failures
            blamed: set[NormalizedName] = set()
            for problem in problems:
                entry = _entry_at(allowlist.packages_for(target), problem.location)
                if entry is not None:
                    blamed.add(entry.name)
                failures.append(
                    LockFailure(
                        (target.name,), kind, problem.message, problem.hint, problem.location, entry
                    )
                )
            if not blamed - dropped:
                return None, path, failures
            dropped |= blamed
            kept = tuple(e for e in head.packages if e.name not in dropped)
            allowlist = dataclasses.replace(head, packages=kept)
            if not allowlist.packages_for(target):
                return None, path, failures
            continue
        return outcome.lock, outcome.path, failures
    return None, path, failures


def _entry_at(entries: Iterable[PackageEntry], location: Location) -> PackageEntry | None:
    return next(
        (
            e
            for e in entries
            if e.location.path == location.path and e.location.line == location.line
        ),
        None,
    )


def build(
    head: Allowlist,
    head_locks: Mapping[str, Lock],
    *,
    base: str,
    sources: Sequence[Source],
    cache: FileCache,
    auditor: Auditor,
    registry: Callable[[], Registry],
    lock_file: Callable[[Target], Path],
    lock_failures: Sequence[LockFailure] = (),
) -> Review:
    """Everything the report says: the changes since ``base``, the policy's findings on the
    head, and the known vulnerabilities of the head's locks (failing closed like the audit).
    A target without a lock (``lock_failures`` say why) is left out of what needs one."""
    base_locks, note = load_base(head.root, base)
    targets = [t for t in head.config.targets if t.name in head_locks]
    locks = {t.name: (t, head_locks[t.name]) for t in targets}
    compared = compare(head, head_locks, base_locks)
    # The checks of locked packages look at what the pull request brings in (added or
    # changed releases); the whole lock is the check step's, and the re-audit's, every day.
    brought = {(c.package, c.new) for c in compared if c.new is not None}
    context = policy.make_context(head, locks, sources, cache, registry, only=brought)
    findings = policy.run_checks(context)
    refused = {f.package for f in findings if f.severity is Severity.ERROR}
    changes = [_described(change, head_locks, context, refused) for change in compared]
    vulnerabilities: dict[tuple[NormalizedName, Version, str], VulnerabilityFinding] = {}
    for target in targets:
        audited, skipped = auditor.audit(lock_file(target))
        result = decide(
            target,
            lock=head_locks[target.name],
            audited=audited,
            skipped=skipped,
            allowlist=head,
            source=auditor.source,
        )
        for finding in result.findings:
            key = (finding.package, finding.version, finding.vulnerability.id)
            vulnerabilities.setdefault(key, finding)
    ordered = sorted(vulnerabilities.values(), key=lambda v: not v.vulnerability.malicious)
    return Review(
        base=base,
        note=note,
        changes=tuple(changes),
        findings=tuple(findings),
        vulnerabilities=tuple(ordered),
        now=context.now,
        generated=generated_edits(head.root, base),
        lock_failures=merge_failures(lock_failures),
        source=auditor.source.summary(),
        unlocked=tuple(t.name for t in head.config.targets if t.name not in head_locks),
    )


def _described(
    change: Change,
    head_locks: Mapping[str, Lock],
    context: policy.Context,
    refused: set[NormalizedName],
) -> Change:
    """A change with its licence, release time and whether it would be built from an sdist.
    Nothing of a package the policy refused is fetched."""
    if change.new is None:
        return change
    package = head_locks[change.targets[0]].package(change.package)
    assert package is not None
    files = policy.locked_files(package, context.pages[package.name])
    internal = change.top_level and change.entry is not None and change.entry.internal
    if internal:
        licence = "(internal package)"
    elif package.name in refused:
        licence = "(not read: the policy refused the package)"
    else:
        licence = "; ".join(policy.license_of(context, package)) or "none declared"
    publisher = () if internal else (policy.publisher_of(context, package) or ())
    return dataclasses.replace(
        change,
        licence=licence,
        released=index.release_time(files),
        sdist=bool(files) and all(is_sdist(f.filename) for f in files),
        publisher=publisher,
    )


# -- the comparison -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Change:
    package: NormalizedName
    old: Version | None
    """The version at the base; None when added."""
    new: Version | None
    """The version now; None when removed."""
    targets: tuple[str, ...]
    entry: PackageEntry | None
    """The entry that brings it in now (None when removed)."""
    chain: tuple[str, ...]
    licence: str = ""
    released: datetime.datetime | None = None
    sdist: bool = False
    publisher: tuple[str, ...] = ()
    """Who published the release, by its PEP 740 provenance (empty: none published)."""

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"

    @property
    def top_level(self) -> bool:
        return self.entry is not None and self.entry.name == self.package


@dataclasses.dataclass
class _Row:
    targets: list[str]
    entry: PackageEntry | None = None
    chain: tuple[str, ...] = ()


def compare(
    head: Allowlist,
    head_locks: Mapping[str, Lock],
    base_locks: Mapping[str, Lock],
) -> list[Change]:
    """Every package whose version differs between the base and the head, per target merged."""
    rows: dict[tuple[NormalizedName, Version | None, Version | None], _Row] = {}
    for target in head.config.targets:
        if target.name not in head_locks:
            continue  # no lock could be made: what changes there is not known
        lock = head_locks[target.name]
        new = {p.name: p.version for p in lock.packages}
        base = base_locks.get(target.name)
        old = {p.name: p.version for p in base.packages} if base is not None else {}
        entries = {e.name: e for e in head.packages_for(target)}
        for name in sorted(set(new) | set(old)):
            if new.get(name) == old.get(name):
                continue
            row = rows.setdefault((name, old.get(name), new.get(name)), _Row([]))
            row.targets.append(target.name)
            if name in new and row.entry is None:
                row.entry, row.chain = chain_to_entry(name, lock, entries)
    return [
        Change(name, old_version, new_version, tuple(row.targets), row.entry, row.chain)
        for (name, old_version, new_version), row in sorted(
            rows.items(), key=lambda item: (item[0][0], str(item[0][2]))
        )
    ]


@dataclasses.dataclass(frozen=True)
class Review:
    base: str
    note: str
    changes: tuple[Change, ...]
    findings: tuple[Finding, ...]
    vulnerabilities: tuple[VulnerabilityFinding, ...]
    now: datetime.datetime
    generated: tuple[str, ...] = ()
    """Files under generated/ the pull request's commits change (refused: the merge pipeline
    alone writes there)."""
    lock_failures: tuple[LockFailure, ...] = ()
    """Why a target's lock could not be made, at the entries named."""
    source: str = ""
    """Where the vulnerability data came from (source, records, newest)."""
    unlocked: tuple[str, ...] = ()
    """The targets with no lock at all: their changes, checks and audit are unknown."""

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def unaccepted(self) -> tuple[VulnerabilityFinding, ...]:
        return tuple(v for v in self.vulnerabilities if not v.accepted)

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and not self.unaccepted
            and not self.generated
            and not self.lock_failures
        )

    def verdict(self) -> str:
        added = sum(c.kind == "added" for c in self.changes)
        changed = sum(c.kind == "changed" for c in self.changes)
        removed = sum(c.kind == "removed" for c in self.changes)
        what = f"{added} added, {changed} changed, {removed} removed"
        if self.ok:
            return f"ready for review: {what}; no policy failed and no unaccepted vulnerability"
        rules: dict[str, int] = {}
        for finding in self.errors:
            rules[finding.rule] = rules.get(finding.rule, 0) + 1
        malicious = sum(v.vulnerability.malicious for v in self.unaccepted)
        if malicious:
            rules["malicious"] = malicious
        if len(self.unaccepted) > malicious:
            rules["vulnerability"] = len(self.unaccepted) - malicious
        if self.generated:
            rules["generated-edited"] = len(self.generated)
        if self.lock_failures:
            # Counted by entry: one entry refused for two targets is one lock failure.
            rules["lock-failed"] = len({f.location or f.message for f in self.lock_failures})
        counts = ", ".join(f"{n} {rule}" for rule, n in sorted(rules.items()))
        return f"policy says no ({counts}): {what}"


# -- rendering ------------------------------------------------------------------------------------


def _where(entry: PackageEntry | None) -> Markup:
    if entry is None:
        return Markup("")
    return code(f"{display_path(entry.location.path)}:{entry.location.line}")


def _chain(chain: Sequence[str]) -> Markup:
    """``a > b > c``: each name escaped, the arrows pipgate's own."""
    return Markup(" > ".join(text(name) for name in chain))


def _via(where: Markup, chain: Sequence[str]) -> Markup:
    return where if len(chain) < 2 else Markup(f"{where} via {_chain(chain)}")


def _age(released: datetime.datetime | None, now: datetime.datetime) -> str:
    if released is None:
        return "unknown"
    days = (now - released).days
    return f"{days} days" if days >= 1 else f"{int((now - released).total_seconds() // 3600)} hours"


def _status(finding: VulnerabilityFinding) -> Markup:
    if finding.vulnerability.malicious:
        return strong("known malicious release: remove it")
    exception = finding.accepted_by
    if exception is None:
        return strong("not accepted")
    where = f"{display_path(exception.location.path)}:{exception.location.line}"
    return Markup(f"{text(f'accepted until {exception.expires}')} ({code(where)})")


def _table(
    header: Sequence[str], rows: Sequence[Sequence[object]], cap: int = MAX_ROWS
) -> list[str]:
    """A GFM table: pipgate's own markup as it is, every other value escaped as text; at
    most ``cap`` rows, and then how many more there are."""
    lines = ["| " + " | ".join(text(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows[:cap]:
        lines.append("| " + " | ".join(markup(c) for c in row) + " |")
    if len(rows) > cap:
        lines.append(f"\n...and {len(rows) - cap} more (see the JSON report)")
    return lines


def _change_rows(changes: Iterable[Change], now: datetime.datetime) -> list[list[object]]:
    rows: list[list[object]] = []
    for c in changes:
        version = c.new if c.old is None else f"{c.old} → {c.new}"
        how = Markup("requested") if c.top_level else Markup(f"via {_chain(c.chain)}")
        entry = c.entry
        rows.append(
            [
                strong(c.package) if c.top_level else c.package,
                version,
                how,
                _where(entry),
                entry.requested_by if entry else "",
                entry.reason if entry and c.top_level else "",
                c.licence,
                _age(c.released, now),
                "; ".join(c.publisher) if c.publisher else "",
                Markup("sdist: built on install" if c.sdist else "wheel"),
                ", ".join(c.targets),
            ]
        )
    return rows


CHANGE_HEADER = (
    "package",
    "version",
    "how",
    "entry",
    "requested by",
    "reason",
    "licence",
    "released",
    "publisher",
    "files",
    "targets",
)


COMMENT_LIMIT = 65536
"""The most characters a pull-request comment holds (GitHub's limit): the report stays
under it, leaving table rows out (and saying so) where it must."""
FOLD_AT = 50
"""A table of requested packages longer than this is folded like the transitive one."""
_CAPS = (MAX_ROWS, 100, 50, 20, 5, 0)
"""The rows each table may keep, tried in turn until the report fits."""
_SHRINK_ORDER = ("transitive", "removed", "requested", "vulnerabilities", "findings", "failures")
"""Which tables give up rows first: inventories before what a reviewer decides on."""


def render_markdown(review: Review, limit: int = COMMENT_LIMIT) -> str:
    """The report: every value from a package, an index or the allowlist is escaped text.
    Verdict first, then what decides (lock failures, findings, vulnerabilities), then the
    inventories; under ``limit`` characters, with what was left out said at the top."""
    caps = dict.fromkeys(_SHRINK_ORDER, sys.maxsize)
    rendered = _render(review, caps)
    for table in _SHRINK_ORDER:
        for cap in _CAPS:
            if len(rendered) <= limit:
                return rendered
            caps[table] = cap
            rendered = _render(review, caps)
    if len(rendered) <= limit:
        return rendered
    # Only the verdict and the notes are left: cut, and say so (never past the limit).
    tail = "\n\n...the report is cut here to fit a comment; see the JSON report\n"
    return rendered[: limit - len(tail)] + tail


def _render(review: Review, caps: Mapping[str, int]) -> str:
    lines = [f"## pipgate review against {code(review.base)}", ""]
    mark = "PASS" if review.ok else "FAIL"
    # The verdict is pipgate's own words: counts and rule names, nothing from a package.
    lines += [Markup(f"**{mark}: {review.verdict()}**"), ""]
    left_out = _left_out(review, caps)
    if left_out:
        lines += [
            Markup(
                f"*{left_out} table rows are left out to keep this report under "
                f"{COMMENT_LIMIT:,} characters (a pull-request comment's limit); "
                "`pipgate review --format json` has them all.*"
            ),
            "",
        ]
    if review.source:
        lines += [Markup(f"Vulnerability data: {text(review.source)}."), ""]
    if review.note:
        lines += [emphasis(review.note), ""]
    if review.generated:
        # File names from the pull request's own commits: escaped like any other text.
        lines += ["### Changes to generated/ (refused)", ""]
        lines += [
            Markup(
                "Only the merge pipeline writes generated/: it is rendered from the "
                "allowlist after review. Drop these changes from the pull request:"
            ),
            "",
        ]
        lines += [Markup(f"- {code(name)}") for name in review.generated]
        lines += [""]
    lines += _failure_lines(review, caps["failures"])
    if review.findings:
        lines += ["### Policy findings", ""]
        lines += _table(
            ("severity", "rule", "package", "entry", "finding", "what to do"),
            [
                [
                    f.severity.value,
                    f.rule,
                    f"{f.package}=={f.version}" if f.version else f.package,
                    _via(_where(f.entry), f.chain),
                    f.message,
                    f.hint,
                ]
                for f in review.findings
            ],
            caps["findings"],
        )
        lines.append("")
    if review.vulnerabilities:
        lines += ["### Known vulnerabilities", ""]
        lines += _table(
            ("package", "advisory", "fixed in", "entry", "status"),
            [
                [
                    f"{v.package}=={v.version}",
                    v.vulnerability.id
                    + (
                        f" ({', '.join(v.vulnerability.aliases)})"
                        if v.vulnerability.aliases
                        else ""
                    ),
                    ", ".join(v.vulnerability.fix_versions) or "none",
                    _via(_where(v.entry), v.chain),
                    _status(v),
                ]
                for v in review.vulnerabilities
            ],
            caps["vulnerabilities"],
        )
        lines.append("")
    top = [c for c in review.changes if c.kind != "removed" and c.top_level]
    transitive = [c for c in review.changes if c.kind != "removed" and not c.top_level]
    removed = [c for c in review.changes if c.kind == "removed"]
    if top:
        lines += [f"### Requested ({len(top)})", ""]
        folded = len(top) > FOLD_AT
        if folded:
            lines += ["<details>", f"<summary>{len(top)} requested packages</summary>", ""]
        lines += _table(CHANGE_HEADER, _change_rows(top, review.now), caps["requested"])
        lines += ["", "</details>", ""] if folded else [""]
    if transitive:
        lines += [
            "<details>",
            f"<summary>Transitive: {len(transitive)} packages the requested ones need</summary>",
            "",
        ]
        lines += _table(CHANGE_HEADER, _change_rows(transitive, review.now), caps["transitive"])
        lines += ["", "</details>", ""]
    if removed:
        lines += [f"### Removed ({len(removed)})", ""]
        lines += _table(
            ("package", "version", "targets"),
            [[c.package, c.old, ", ".join(c.targets)] for c in removed],
            caps["removed"],
        )
        lines.append("")
    if not review.changes:
        lines += ["No package changes version.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _failure_lines(review: Review, cap: int) -> list[str]:
    """Why a lock could not be made, at each entry: the first thing after the verdict."""
    if not review.lock_failures:
        return []
    lines: list[str] = []
    lines += ["### The lock could not be made", ""]
    if review.unlocked:
        lines += [
            Markup(
                "No lock at all for "
                + ", ".join(str(code(t)) for t in review.unlocked)
                + ": what changes there, its checks and its audit are not known."
            ),
            "",
        ]
    else:
        lines += [
            Markup(
                "Everything below is from a lock of the other entries: the entries named "
                "here are not in it."
            ),
            "",
        ]
    lines += _table(
        ("target", "entry", "problem", "what to do"),
        [
            [
                ", ".join(f.targets),
                code(str(f.location)) if f.location is not None else Markup(""),
                f.message,
                f.hint,
            ]
            for f in review.lock_failures
        ],
        cap,
    )
    lines.append("")
    return lines


def _left_out(review: Review, caps: Mapping[str, int]) -> int:
    sizes = {
        "failures": len(review.lock_failures),
        "findings": len(review.findings),
        "vulnerabilities": len(review.vulnerabilities),
        "requested": sum(c.kind != "removed" and c.top_level for c in review.changes),
        "transitive": sum(c.kind != "removed" and not c.top_level for c in review.changes),
        "removed": sum(c.kind == "removed" for c in review.changes),
    }
    return sum(max(0, size - caps[name]) for name, size in sizes.items())


def as_json(review: Review) -> dict[str, object]:
    return {
        "command": "review",
        "ok": review.ok,
        "base": review.base,
        "verdict": review.verdict(),
        "note": review.note,
        "changes": [
            {
                "package": c.package,
                "kind": c.kind,
                "old": None if c.old is None else str(c.old),
                "new": None if c.new is None else str(c.new),
                "targets": list(c.targets),
                "top_level": c.top_level,
                "chain": list(c.chain),
                "entry": None
                if c.entry is None
                else {
                    "name": c.entry.spelled,
                    "file": display_path(c.entry.location.path),
                    "line": c.entry.location.line,
                    "requested_by": c.entry.requested_by,
                    "reason": c.entry.reason,
                },
                "licence": c.licence,
                "publisher": list(c.publisher),
                "released": c.released.isoformat() if c.released else None,
                "sdist": c.sdist,
            }
            for c in review.changes
        ],
        "findings": [f.as_json() for f in review.findings],
        "vulnerabilities": [v.as_json() for v in review.vulnerabilities],
        "generated_edits": list(review.generated),
        "lock_failures": [
            {
                "targets": list(f.targets),
                "kind": f.kind.value,
                "file": display_path(f.location.path) if f.location is not None else None,
                "line": f.location.line if f.location is not None else None,
                "package": f.entry.spelled if f.entry is not None else None,
                "message": f.message,
                "hint": f.hint,
            }
            for f in review.lock_failures
        ],
        "unlocked_targets": list(review.unlocked),
        "vulnerability_data": review.source,
    }
