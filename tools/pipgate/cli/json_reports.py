"""The JSON rendering of every report: one document per run, on standard output."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from pipgate import review as review_report
from pipgate.allowlist import Allowlist
from pipgate.audit import audit_document
from pipgate.bump import BumpReport
from pipgate.download import DownloadReport
from pipgate.outdated import Candidate, OutdatedReport
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
from pipgate.problems import display_path


def emit_json(document: dict[str, object], out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def summary(allowlist: Allowlist) -> dict[str, object]:
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
        "unpublished": [{"target": t, "missing_files": n} for t, n in report.unpublished],
        "removed": [display_path(p) for p in report.removed],
    }


def _candidate(candidate: Candidate | None) -> dict[str, object] | None:
    if candidate is None:
        return None
    return {
        "version": str(candidate.version),
        "passes": not candidate.refused,
        "refused": list(candidate.refused),
        "vulnerabilities": list(candidate.vulnerabilities),
    }


def outdated_json(report: OutdatedReport) -> dict[str, object]:
    return {
        "command": "outdated",
        "ok": True,
        "vulnerability_data": report.source,
        "outdated": len(report.outdated),
        "entries": [
            {
                "name": s.entry.name,
                "version": s.entry.version,
                "file": display_path(s.location.path),
                "line": s.location.line,
                "targets": list(s.targets),
                "vulnerabilities": [v.id for v in s.vulnerabilities],
                "newest_passing": _candidate(s.passing),
                "newest": _candidate(s.newest),
                "releases": [_candidate(c) for c in s.releases],
                "security_fix": s.security_fix,
                "note": s.note or None,
            }
            for s in report.entries
        ],
    }


def bump_json(report: BumpReport) -> dict[str, object]:
    return {
        "command": "bump",
        "ok": True,
        "bumped": [
            {
                "name": e.name,
                "file": display_path(e.location.path),
                "line": e.location.line,
                "from": e.old,
                "to": e.new,
            }
            for e in report.edits
        ],
        "skipped": [{"name": n, "reason": why} for n, why in report.skipped],
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


def verify_json(report: VerifyReport) -> dict[str, object]:
    return {
        "command": "verify",
        "ok": report.in_step,
        "registry": report.registry,
        "locked_files": report.locked,
        "held_files": report.held,
        **{
            kind: [
                {
                    "package": d.package,
                    "file": d.filename,
                    "sha256": d.sha256,
                    "targets": list(d.targets),
                }
                for d in report.of(kind)
            ]
            for kind in ("missing", "conflict", "extra")
        },
    }


def prune_json(report: PruneReport) -> dict[str, object]:
    return {
        "command": "prune",
        "ok": True,
        "applied": report.applied,
        "registry": report.registry,
        "removal": report.removal,
        "commits_kept": report.commits,
        "held_files": report.held,
        **{
            key: [
                {"package": i.package, "file": i.filename, "sha256": i.sha256}
                | ({"reason": i.reason} if i.reason else {})
                for i in report.of(action)
            ]
            for key, action in (
                ("removed" if report.applied else "would_remove", "remove"),
                ("retained", "retain"),
                ("kept", "keep"),
            )
        },
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
