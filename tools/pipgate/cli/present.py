"""Presenters: one text and one JSON rendering of every report, chosen once per run.

``presenter_for(format)`` gives a ``Text`` or a ``Json`` presenter (pip-audit's
format classes); commands hand it the pipeline's report and nothing else
formats output. Text goes to standard output, progress and errors to
standard error; JSON is one document on standard output per run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pipgate import review as review_report
from pipgate.allowlist import Allowlist
from pipgate.audit import Finding, audit_document
from pipgate.download import DownloadReport
from pipgate.errors import PipgateError
from pipgate.lock import Lock
from pipgate.markdown import visible
from pipgate.options import Format
from pipgate.pipeline import (
    AuditReport,
    BundleReport,
    CheckReport,
    DownloadSummary,
    LockReport,
    RenderReport,
    ReviewReport,
    StepResult,
    StepStatus,
    SyncReport,
    UploadReport,
)
from pipgate.problems import Problem, display_path


def say(line: str, file: TextIO | None = None) -> None:
    """One line for a person: what servers and packages said cannot act on the terminal."""
    print(visible(line), file=file or sys.stdout, flush=file is sys.stderr)


def progress(message: str) -> None:
    say(message, file=sys.stderr)


def emit_json(document: dict[str, object], out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(document, indent=2, sort_keys=False) + "\n")


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


def _summary(allowlist: Allowlist) -> dict[str, object]:
    return {
        "files": [display_path(p) for p in allowlist.files],
        "package_files": len(allowlist.package_files),
        "packages": len(allowlist.packages),
        "targets": [t.name for t in allowlist.config.targets],
        "exceptions": len(allowlist.exceptions),
        "registry": allowlist.config.registry.kind.value,
    }


def _download_json(reports: Sequence[DownloadReport]) -> list[dict[str, object]]:
    return [
        {
            "target": r.target,
            "files": len(r.files),
            "fetched": r.fetched,
            "fetched_bytes": r.fetched_bytes,
            "cached": r.cached,
        }
        for r in reports
    ]


# -- JSON -----------------------------------------------------------------------------------------


def lock_json(report: LockReport) -> dict[str, object]:
    targets = []
    for result in report.results:
        packages = result.outcome.lock.packages
        targets.append(
            {
                "target": result.target.name,
                "path": display_path(result.outcome.path),
                "status": result.status,
                "packages": len(packages),
                "top_level": sum(p.top_level for p in packages),
                "transitive": [
                    {"name": p.name, "version": str(p.version), "via": list(p.via)}
                    for p in packages
                    if not p.top_level
                ],
                "seconds": round(result.seconds, 3),
            }
        )
    return {"command": "lock", "ok": True, "targets": targets, "index_bytes": report.index_bytes}


def check_json(report: CheckReport) -> dict[str, object]:
    return {
        "command": "check",
        "ok": not report.errors,
        "targets": [t.name for t in report.targets],
        "findings": [f.as_json() for f in report.findings],
    }


def audit_json(report: AuditReport) -> dict[str, object]:
    return {
        "command": "audit",
        "ok": not report.failing,
        "source": report.source.as_json(),
        "targets": [audit_document(r) for r in report.results],
        "stale_exceptions": [
            {
                "id": e.id,
                "package": e.package,
                "file": display_path(e.location.path),
                "line": e.location.line,
            }
            for e in report.stale
        ],
    }


def download_json(report: DownloadSummary) -> dict[str, object]:
    return {
        "command": "download",
        "ok": True,
        "targets": _download_json(report.downloads),
        "index_bytes": report.index_bytes,
    }


def upload_json(report: UploadReport) -> dict[str, object]:
    published = report.publish
    return {
        "command": "upload",
        "ok": True,
        "registry": report.registry,
        "downloaded": _download_json(report.downloads),
        "files": published.files,
        "already_present": published.present,
        "uploaded": published.uploaded,
        "uploaded_bytes": published.uploaded_bytes,
        "verified": published.verified,
        "index_bytes": report.index_bytes,
    }


def render_json(report: RenderReport) -> dict[str, object]:
    return {
        "command": "render",
        "ok": True,
        "dry_run": report.dry_run,
        "files": [{"path": display_path(w.path), "changed": w.changed} for w in report.written],
        "uncached": [{"target": t, "missing_files": n} for t, n in report.uncached],
    }


def bundle_json(report: BundleReport) -> dict[str, object]:
    return {
        "command": "bundle",
        "ok": True,
        "bundles": [
            {
                "target": b.target.name,
                "path": display_path(b.path),
                "files": b.files,
                "bytes": b.bytes,
            }
            for b in report.bundles
        ],
    }


def review_json(report: ReviewReport) -> dict[str, object]:
    return review_report.as_json(report.review)


def step_json(step: StepResult) -> dict[str, object]:
    out: dict[str, object] = {"step": step.step, "status": step.status.value}
    if step.error is not None:
        out["exit_code"] = int(step.error.exit_code)
    out["seconds"] = round(step.seconds, 3)
    return out


def sync_json(report: SyncReport) -> dict[str, object]:
    steps = [step_json(s) for s in report.steps]
    failed = report.failed
    if failed is None or failed.error is None:
        return {"command": "sync", "ok": True, "seconds": round(report.seconds, 3), "steps": steps}
    return {
        "command": "sync",
        "ok": False,
        "steps": steps,
        "error": {
            "message": sync_error_message(failed),
            "hint": failed.error.hint or "",
            "exit_code": int(failed.error.exit_code),
        },
    }


def sync_error_message(failed: StepResult) -> str:
    assert failed.error is not None
    return f"sync stopped at {failed.step}: {failed.error.message}"


# -- text -----------------------------------------------------------------------------------------


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


def bundle_text(report: BundleReport, out: TextIO) -> None:
    for b in report.bundles:
        say(
            f"{b.target.name}: {display_path(b.path)}: {b.files} files ({b.bytes / 1e6:.1f} MB)",
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


# -- the presenters -------------------------------------------------------------------------------

_JSON = {
    LockReport: lock_json,
    CheckReport: check_json,
    AuditReport: audit_json,
    DownloadSummary: download_json,
    UploadReport: upload_json,
    RenderReport: render_json,
    BundleReport: bundle_json,
    ReviewReport: review_json,
    SyncReport: sync_json,
}
_TEXT = {
    LockReport: lock_text,
    CheckReport: check_text,
    AuditReport: audit_text,
    DownloadSummary: download_text,
    UploadReport: upload_text,
    RenderReport: render_text,
    BundleReport: bundle_text,
    ReviewReport: review_text,
    SyncReport: sync_text,
}


class Presenter:
    """Shows reports and errors in one format."""

    format: Format

    def report(self, report: object) -> None:
        raise NotImplementedError

    def step(self, step: StepResult) -> None:
        """A sync step's own report, as it ends: text, on standard error under JSON."""
        produced = step.produced if step.error is None else step.error.report
        if produced is not None and type(produced) in _TEXT:
            _TEXT[type(produced)](produced, self.step_stream)  # type: ignore[operator]

    @property
    def step_stream(self) -> TextIO:
        return sys.stdout

    def error(self, error: PipgateError) -> None:
        raise NotImplementedError

    def sync_failed(self, report: SyncReport) -> None:
        raise NotImplementedError

    def validation_failed(self, directory: Path, problems: Sequence[Problem]) -> None:
        raise NotImplementedError

    def validated(self, directory: Path, allowlist: Allowlist) -> None:
        raise NotImplementedError


def _error_lines(error: PipgateError, message: str | None = None) -> None:
    say(f"pipgate: error: {message or error.message}", file=sys.stderr)
    if error.hint:
        say(f"  hint: {error.hint}", file=sys.stderr)


class Text(Presenter):
    format = Format.TEXT

    def __init__(self, *, verbose: bool = False) -> None:
        self.verbose = verbose

    def report(self, report: object) -> None:
        if isinstance(report, LockReport):
            lock_text(report, sys.stdout, verbose=self.verbose)
            return
        _TEXT[type(report)](report, sys.stdout)  # type: ignore[operator]

    def sync_failed(self, report: SyncReport) -> None:
        failed = report.failed
        assert failed is not None
        assert failed.error is not None
        for problem in getattr(failed.error, "problems", ()):
            say(problem.render())
        _error_lines(failed.error, sync_error_message(failed))

    def error(self, error: PipgateError) -> None:
        if error.report is not None and type(error.report) in _TEXT:
            self.report(error.report)
        for problem in getattr(error, "problems", ()):
            say(problem.render())
        _error_lines(error)

    def validation_failed(self, directory: Path, problems: Sequence[Problem]) -> None:
        for problem in problems:
            say(problem.render())
        count = len(problems)
        say(
            f"{count} problem{'s' if count != 1 else ''} in {display_path(directory)}/; "
            "fix each at the file and line shown",
            file=sys.stderr,
        )

    def validated(self, directory: Path, allowlist: Allowlist) -> None:
        summary = _summary(allowlist)
        targets = ", ".join(t.name for t in allowlist.config.targets)
        say(
            f"{display_path(directory)}/ is valid: {summary['packages']} packages in "
            f"{summary['package_files']} package files, "
            f"targets {targets}, {summary['exceptions']} accepted vulnerabilities"
        )


class Json(Presenter):
    format = Format.JSON

    def report(self, report: object) -> None:
        emit_json(_JSON[type(report)](report))  # type: ignore[operator]

    @property
    def step_stream(self) -> TextIO:
        return sys.stderr  # standard output holds the one document of the sync

    def sync_failed(self, report: SyncReport) -> None:
        failed = report.failed
        assert failed is not None
        assert failed.error is not None
        self.report(report)
        _error_lines(failed.error, sync_error_message(failed))

    def error(self, error: PipgateError) -> None:
        if error.report is not None and type(error.report) in _JSON:
            self.report(error.report)  # the document says why; one document per run
            return
        problems: Sequence[Problem] = getattr(error, "problems", ())
        emit_json(
            {
                "ok": False,
                "error": {
                    "message": error.message,
                    "hint": error.hint or "",
                    "exit_code": int(error.exit_code),
                },
                "problems": [p.as_json() for p in problems],
            }
        )
        _error_lines(error)

    def validation_failed(self, directory: Path, problems: Sequence[Problem]) -> None:
        emit_json(
            {
                "command": "validate",
                "ok": False,
                "allowlist": display_path(directory),
                "problems": [p.as_json() for p in problems],
            }
        )

    def validated(self, directory: Path, allowlist: Allowlist) -> None:
        emit_json(
            {
                "command": "validate",
                "ok": True,
                "allowlist": display_path(directory),
                "problems": [],
                "summary": _summary(allowlist),
            }
        )


def presenter_for(fmt: Format, *, verbose: bool = False) -> Presenter:
    return Json() if fmt is Format.JSON else Text(verbose=verbose)
