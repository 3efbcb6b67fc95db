"""Presenters: a text and a JSON presenter of every report, chosen once per run.

``presenter_for(format)`` gives a ``Text`` or a ``Json`` presenter (pip-audit's
format classes); commands hand it the pipeline's report and nothing else
formats output. The renderings themselves are ``text_reports.py`` and
``json_reports.py``, one function per report type. Text goes to standard
output, progress and errors to standard error; JSON is one document on
standard output per run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pipgate.allowlist import Allowlist
from pipgate.bump import BumpReport
from pipgate.cli.json_reports import (
    audit_json,
    bump_json,
    bundle_json,
    check_json,
    download_json,
    emit_json,
    lock_json,
    outdated_json,
    prune_json,
    render_json,
    review_json,
    summary,
    sync_error_message,
    sync_json,
    upload_json,
    verify_json,
)
from pipgate.cli.text_reports import (
    audit_text,
    bump_text,
    bundle_text,
    check_text,
    download_text,
    lock_text,
    outdated_text,
    progress,
    prune_text,
    render_text,
    review_text,
    say,
    sync_text,
    upload_text,
    verify_text,
)
from pipgate.errors import PipgateError
from pipgate.options import Format
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
    StepResult,
    SyncReport,
    UploadReport,
    VerifyReport,
)
from pipgate.problems import Problem, display_path

__all__ = ["Json", "Presenter", "Text", "emit_json", "presenter_for", "progress", "say"]


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
    VerifyReport: verify_json,
    PruneReport: prune_json,
    OutdatedReport: outdated_json,
    BumpReport: bump_json,
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
    VerifyReport: verify_text,
    PruneReport: prune_text,
    OutdatedReport: outdated_text,
    BumpReport: bump_text,
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
    # A tool's output quoted in the message keeps its lines, each indented under the
    # error, so no quoted line can pass for one of pipgate's own.
    first, *rest = (message or error.message).split("\n")
    say(f"pipgate: error: {first}", file=sys.stderr)
    for line in rest:
        say(f"    {line}", file=sys.stderr)
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
        if isinstance(report, OutdatedReport):
            outdated_text(report, sys.stdout, verbose=self.verbose)
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
        counts = summary(allowlist)
        targets = ", ".join(t.name for t in allowlist.config.targets)
        say(
            f"{display_path(directory)}/ is valid: {counts['packages']} packages in "
            f"{counts['package_files']} package files, "
            f"targets {targets}, {counts['exceptions']} accepted vulnerabilities"
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
                "summary": summary(allowlist),
            }
        )


def presenter_for(fmt: Format, *, verbose: bool = False) -> Presenter:
    return Json() if fmt is Format.JSON else Text(verbose=verbose)
