"""The text rendering of every report, for a person: every line through ``say``, so what
servers and packages said cannot act on the terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from pipgate.audit import Finding
from pipgate.bump import BumpReport
from pipgate.lock import Lock
from pipgate.markdown import visible
from pipgate.outdated import OutdatedReport
from pipgate.pipeline import (
    AuditReport,
    BundleReport,
    CheckReport,
    DownloadSummary,
    LockReport,
    PruneReport,
    RenderReport,
    ReviewReport,
    StepStatus,
    SyncReport,
    UploadReport,
    VerifyReport,
)
from pipgate.problems import display_path


def say(line: str, file: TextIO | None = None) -> None:
    """One line for a person: what servers and packages said cannot act on the terminal."""
    print(visible(line), file=file or sys.stdout, flush=file is sys.stderr)


def progress(message: str) -> None:
    say(message, file=sys.stderr)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]


def _finding_row(finding: Finding) -> list[str]:
    vuln = finding.vulnerability
    ids = vuln.id + (f" ({', '.join(vuln.aliases)})" if vuln.aliases else "")
    how = "direct" if len(finding.chain) == 1 else "via " + " > ".join(finding.chain)
    entry = finding.entry
    return [
        finding.package,
        str(finding.version),
        ids,
        ", ".join(vuln.fix_versions) or "none",
        f"{entry.location} {entry.spelled} ({how})",
    ]


def lock_text(report: LockReport, out: TextIO, *, verbose: bool = False) -> None:
    """Each target's outcome and what changed in its pins (every pin with ``verbose``)."""
    for result in report.results:
        outcome = result.outcome
        where = display_path(outcome.path)
        name = result.target.name
        if outcome.skipped:
            say(f"{name}: nothing changed (inputs unchanged) {where}", file=out)
            continue
        packages = outcome.lock.packages
        transitive = [p for p in packages if not p.top_level]
        verb = "wrote" if outcome.changed else "re-resolved, same pins in"
        say(
            f"{name}: {verb} {where}: {len(packages)} packages "
            f"({len(packages) - len(transitive)} approved, {len(transitive)} transitive) "
            f"in {result.seconds:.1f} s",
            file=out,
        )
        for line in _pin_changes(outcome.previous, outcome.lock, verbose=verbose):
            say(f"  {line}", file=out)


def _pin_changes(previous: Lock | None, lock: Lock, *, verbose: bool) -> list[str]:
    """``+ name==v via ...`` for a new pin, ``~ name a -> b`` for a changed one, ``- name==v``
    for one gone; with ``verbose`` every transitive pin, as before."""
    if verbose:
        return [
            f"transitive {p.name}=={p.version} via {', '.join(p.via)}"
            for p in lock.packages
            if not p.top_level
        ]
    old = {p.name: p for p in previous.packages} if previous is not None else {}
    new = {p.name: p for p in lock.packages}
    lines = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before is None and after is not None:
            lines.append(f"+ {name}=={after.version} via {', '.join(after.via)}")
        elif after is None and before is not None:
            lines.append(f"- {name}=={before.version}")
        elif before is not None and after is not None and before.version != after.version:
            lines.append(f"~ {name} {before.version} -> {after.version}")
    return lines


def check_text(report: CheckReport, out: TextIO) -> None:
    for finding in report.findings:
        where = display_path(finding.entry.location.path)
        version = f"=={finding.version}" if finding.version else ""
        say(
            f"{where}:{finding.entry.location.line}: {finding.severity.value}: "
            f"{finding.package}{version} [{finding.rule}] {finding.message}",
            file=out,
        )
        if len(finding.chain) > 1:
            say(f"  brought in by {' > '.join(finding.chain)}", file=out)
        if finding.targets:
            say(f"  targets: {', '.join(finding.targets)}", file=out)
        say(f"  what to do: {finding.hint}", file=out)
    if not report.errors:
        say(f"check: {report.summary}", file=out)


def audit_text(report: AuditReport, out: TextIO) -> None:
    header = ["PACKAGE", "VERSION", "ID (ALIASES)", "FIXED IN", "BROUGHT IN BY"]
    for result in report.results:
        accepted = [f for f in result.findings if f.accepted]
        say(
            f"{result.target.name}: {result.packages} packages audited, "
            f"{len(result.unaccepted)} known vulnerabilities not accepted, "
            f"{len(accepted)} accepted",
            file=out,
        )
        for finding in result.unaccepted:
            if finding.vulnerability.malicious:
                say(
                    f"  {finding.package}=={finding.version}: known malicious release "
                    f"({finding.vulnerability.id}); remove it",
                    file=out,
                )
        if result.unaccepted:
            for line in _table([_finding_row(f) for f in result.unaccepted], header):
                say(line, file=out)
        for finding in result.unaccepted:
            if finding.expired is not None:
                say(
                    f"  {finding.expired.location}: the exception for "
                    f"{finding.vulnerability.id} in {finding.package} expired on "
                    f"{finding.expired.expires}",
                    file=out,
                )
        for finding in accepted:
            assert finding.accepted_by is not None
            say(
                f"  accepted {finding.vulnerability.id} in {finding.package} until "
                f"{finding.accepted_by.expires} ({finding.accepted_by.location})",
                file=out,
            )
    for exception in report.stale:
        say(
            f"{exception.location}: stale exception: {exception.id} matches no finding "
            f"in {exception.package}; remove it",
            file=out,
        )


def download_text(report: DownloadSummary, out: TextIO) -> None:
    for r in report.downloads:
        say(
            f"{r.target}: {len(r.files)} files, {r.fetched} fetched "
            f"({r.fetched_bytes / 1e6:.1f} MB), {r.cached} already cached",
            file=out,
        )


def upload_text(report: UploadReport, out: TextIO) -> None:
    published = report.publish
    say(
        f"{report.registry}: {published.files} files, {published.present} already present, "
        f"{published.uploaded} uploaded ({published.uploaded_bytes / 1e6:.1f} MB), "
        f"{published.verified} verified by hash",
        file=out,
    )


def render_text(report: RenderReport, out: TextIO) -> None:
    verb = "would write" if report.dry_run else "wrote"
    for item in report.written:
        if item.changed:
            say(f"{verb} {display_path(item.path)}", file=out)
    unchanged = sum(not w.changed for w in report.written)
    say(f"{verb} {len(report.written) - unchanged} files, {unchanged} unchanged", file=out)
    for target, missing in report.uncached:
        say(
            f"{target}: {missing} locked files are not in the cache, so its install order is "
            "not rendered: a dry run fetches nothing (run 'pipgate download' first)",
            file=out,
        )
    for target, missing in report.unpublished:
        say(
            f"{target}: pylock.toml not written: the registry does not hold {missing} of its "
            "locked files yet (publish them with 'pipgate upload', then render again)",
            file=out,
        )
    for path in report.removed:
        say(f"{'would remove' if report.dry_run else 'removed'} {display_path(path)}", file=out)


def outdated_text(report: OutdatedReport, out: TextIO, *, verbose: bool = False) -> None:
    say(f"vulnerability data: {report.source}", file=out)
    for status in report.entries:
        entry = status.entry
        where = str(status.location)
        if status.note:
            say(f"{entry.spelled} {entry.version}: {status.note} ({where})", file=out)
            continue
        known = ", ".join(v.id for v in status.vulnerabilities)
        pinned = f" (known vulnerable: {known})" if known else ""
        newest = status.newest
        if newest is None:
            say(f"{entry.spelled} {entry.version}{pinned}: the newest release ({where})", file=out)
            continue
        if status.passing is not None:
            line = f"{entry.spelled} {entry.version} -> {status.passing.version}{pinned}"
        else:
            line = f"{entry.spelled} {entry.version}{pinned}: no newer release passes"
        if newest.refused:
            line += f"; newest {newest.version}: {'; '.join(newest.refused)}"
        say(f"{line} ({where})", file=out)
        if verbose:
            for release in status.releases:
                said = "; ".join(release.refused) or "passes"
                say(f"    {release.version}: {said}", file=out)
    say(
        f"{len(report.outdated)} of {len(report.entries)} entries have a newer release that "
        "passes the policy",
        file=out,
    )


def bump_text(report: BumpReport, out: TextIO) -> None:
    for edit in report.edits:
        say(f"{edit.location}: {edit.name} {edit.old} -> {edit.new}", file=out)
    for name, why in report.skipped:
        say(f"{name}: left as it is: {why}", file=out)
    count = len(report.edits)
    say(
        f"bumped {count} entr{'y' if count == 1 else 'ies'}; the allowlist is valid"
        + (" (lock, check and audit judge the new pins: open a pull request)" if count else ""),
        file=out,
    )


def bundle_text(report: BundleReport, out: TextIO) -> None:
    for b in report.bundles:
        say(
            f"{b.target.name}: {display_path(b.path)}: {b.files} files ({b.bytes / 1e6:.1f} MB)",
            file=out,
        )


def verify_text(report: VerifyReport, out: TextIO) -> None:
    for d in report.drift:
        where = f" ({', '.join(d.targets)})" if d.targets else ""
        say(f"{d.kind}: {d.filename} sha256 {d.sha256}{where}", file=out)
    say(
        f"{report.registry}: {report.locked} locked files, {report.held} held; "
        + (
            "in step with every lock"
            if report.in_step
            else ", ".join(f"{len(report.of(k))} {k}" for k in ("missing", "conflict", "extra"))
        ),
        file=out,
    )


def prune_text(report: PruneReport, out: TextIO) -> None:
    verb = "removed" if report.applied else "would remove"
    for item in report.items:
        shown = {"remove": verb, "retain": "retained", "keep": "kept"}[item.action]
        reason = f" ({item.reason})" if item.reason else ""
        say(f"{shown}: {item.filename}{reason}", file=out)
    going = len(report.of("remove"))
    tail = ""
    if going and not report.applied:
        tail = "; run with --apply to remove them"
    say(
        f"{report.registry}: {report.held} files held; {verb} {going}, retained "
        f"{len(report.of('retain'))} for the last {report.commits} commits of generated/, "
        f"kept {len(report.of('keep'))}{tail}",
        file=out,
    )


def review_text(report: ReviewReport, out: TextIO) -> None:
    out.write(report.markdown)


def sync_text(report: SyncReport, out: TextIO) -> None:
    if report.failed is not None:
        return  # the error says where it stopped
    ran = [s.step for s in report.steps if s.status is StepStatus.RAN]
    published = next(s.status for s in report.steps if s.step == "publish")
    registry = (
        "the registry holds every locked file, verified by hash"
        if published is StepStatus.RAN
        else "publish skipped: the registry was verified for these locks before"
    )
    say(f"sync: done in {report.seconds:.1f} s; ran {', '.join(ran)}; {registry}", file=out)
