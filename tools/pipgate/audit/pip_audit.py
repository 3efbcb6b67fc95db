"""pip-audit as a subprocess, against the service the policy names.

pip-audit runs with ``--disable-pip`` on the hashed lock (no re-resolution)
and its JSON output is what counts, never its exit code, which is 1 both for
findings and for crashes.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipgate.allowlist.model import AuditService
from pipgate.audit.interface import (
    OFFLINE_HINT,
    AuditedPackage,
    Auditor,
    AuditServiceError,
    SkippedPackage,
    Source,
    Vulnerability,
)
from pipgate.names import normalize, parse_version
from pipgate.runner import redact, run, tool_environment

_UNREACHABLE = (
    "ConnectionError",
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Could not connect",
    "NameResolutionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Connection refused",
    "Temporary failure in name resolution",
)


class PipAuditor(Auditor):
    """pip-audit as a subprocess, against the service the policy names."""

    def __init__(self, service: AuditService, osv_url: str | None, source: Source) -> None:
        self.service = service
        self.osv_url = osv_url
        self.source = source

    def audit(self, lock_file: Path) -> tuple[list[AuditedPackage], list[SkippedPackage]]:
        with tempfile.TemporaryDirectory(prefix="pipgate-audit-") as scratch:
            output = Path(scratch) / "pip-audit.json"
            args = [
                sys.executable,
                "-m",
                "pip_audit",
                "--requirement",
                str(lock_file),
                "--disable-pip",
                "--format",
                "json",
                "--output",
                str(output),
                "--progress-spinner",
                "off",
                "--aliases",
                "on",
                "--desc",
                "on",
                "--timeout",
                "15",
                "--cache-dir",
                str(Path(scratch) / "cache"),
                "--vulnerability-service",
                self.service.value,
            ]
            if self.osv_url:
                args += ["--osv-url", self.osv_url]
            result = run(args, env=tool_environment(), timeout=1800)
            try:
                document = json.loads(output.read_text(encoding="utf-8"))
            except (FileNotFoundError, ValueError):
                document = None
        if not isinstance(document, dict) or "dependencies" not in document:
            text = result.output
            if any(marker in text for marker in _UNREACHABLE):
                raise AuditServiceError(
                    f"could not reach the vulnerability service ({self.source.description})",
                    hint=OFFLINE_HINT.replace(
                        "the service answered for none of them, so it is not usable from here; ", ""
                    ),
                )

            raise AuditServiceError(
                f"pip-audit gave no result (exit {result.returncode}):\n"
                f"{redact(text.strip())[-1500:]}",
                hint="run again; if it persists, run pip-audit by hand on the lock",
            )
        return _parse(document)


def _parse(document: dict[str, Any]) -> tuple[list[AuditedPackage], list[SkippedPackage]]:
    audited, skipped = [], []
    for item in document.get("dependencies", []):
        name = normalize(str(item.get("name", "")))
        version = parse_version(str(item.get("version")))
        if "skip_reason" in item or version is None:
            reason = str(item.get("skip_reason", "pip-audit gave no version"))
            skipped.append(SkippedPackage(name, reason))
            continue
        vulns = tuple(
            Vulnerability(
                id=str(v["id"]),
                aliases=tuple(sorted(str(a) for a in v.get("aliases") or ())),
                fix_versions=tuple(str(f) for f in v.get("fix_versions") or ()),
                description=" ".join(str(v.get("description") or "").split()),
            )
            for v in item.get("vulns") or ()
        )
        audited.append(AuditedPackage(name, version, vulns))
    return audited, skipped
