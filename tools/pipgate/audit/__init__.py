"""The audit port: known vulnerabilities of every lock, failing closed.

- ``interface.py``: the ``Auditor`` port, its result types and errors.
- ``pip_audit.py``: pip-audit as a subprocess.
- ``osv.py``: an offline OSV export and the OSV query API served from it.
- ``decide.py``: exceptions applied, the gate's verdict, audit.json and the SBOM.
"""

from pipgate.audit.decide import (
    AUDIT_NAME,
    SBOM_NAME,
    Finding,
    TargetAudit,
    audit_document,
    audit_target,
    decide,
    sbom_document,
    stale_exceptions,
    write_reports,
)
from pipgate.audit.interface import (
    OFFLINE_HINT,
    AuditedPackage,
    AuditError,
    Auditor,
    AuditServiceError,
    FindingsError,
    NotAuditedError,
    SkippedPackage,
    Source,
    Vulnerability,
)
from pipgate.audit.pip_audit import PipAuditor

__all__ = [
    "AUDIT_NAME",
    "OFFLINE_HINT",
    "SBOM_NAME",
    "AuditError",
    "AuditServiceError",
    "AuditedPackage",
    "Auditor",
    "Finding",
    "FindingsError",
    "NotAuditedError",
    "PipAuditor",
    "SkippedPackage",
    "Source",
    "TargetAudit",
    "Vulnerability",
    "audit_document",
    "audit_target",
    "decide",
    "sbom_document",
    "stale_exceptions",
    "write_reports",
]
