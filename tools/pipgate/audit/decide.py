"""The vulnerability gate's decision, and the files it writes.

Every locked package must come back audited: a package the auditor skipped
stops the gate (exit 3) instead of passing it. Findings are accepted only by
an unexpired exception in ``allowlist/exceptions.yaml`` that names the
package and the advisory's id or one of its aliases.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

from pipgate.allowlist import Allowlist, PackageEntry, Target, VulnerabilityException
from pipgate.audit.interface import (
    OFFLINE_HINT,
    AuditedPackage,
    Auditor,
    NotAuditedError,
    SkippedPackage,
    Source,
    Vulnerability,
)
from pipgate.errors import InputError
from pipgate.fsutil import write_atomic
from pipgate.lock import Lock, chain_to_entry, lock_path, read_lock
from pipgate.names import NormalizedName, Version, normalize
from pipgate.problems import display_path

AUDIT_NAME = "audit.json"
SBOM_NAME = "sbom.cdx.json"


@dataclasses.dataclass(frozen=True)
class Finding:
    package: NormalizedName
    version: Version
    vulnerability: Vulnerability
    entry: PackageEntry
    chain: tuple[str, ...]
    """From the allowlist entry to the package: (entry,) when direct."""
    accepted_by: VulnerabilityException | None
    expired: VulnerabilityException | None
    """An exception that would have accepted it, had it not expired."""

    @property
    def accepted(self) -> bool:
        return self.accepted_by is not None

    def as_json(self) -> dict[str, object]:
        exception = self.accepted_by or self.expired
        return {
            "package": self.package,
            "version": str(self.version),
            "id": self.vulnerability.id,
            "aliases": list(self.vulnerability.aliases),
            "fix_versions": list(self.vulnerability.fix_versions),
            "description": self.vulnerability.description,
            "status": "accepted" if self.accepted else "not accepted",
            "malicious": self.vulnerability.malicious,
            "exception": None
            if exception is None
            else {
                "id": exception.id,
                "reason": exception.reason,
                "approved_by": exception.approved_by,
                "expires": exception.expires.isoformat(),
                "expired": exception.expired,
                "file": display_path(exception.location.path),
                "line": exception.location.line,
            },
            "brought_in_by": {
                "entry": f"{self.entry.spelled}=={self.entry.version}",
                "file": display_path(self.entry.location.path),
                "line": self.entry.location.line,
                "chain": list(self.chain),
            },
        }


@dataclasses.dataclass(frozen=True)
class TargetAudit:
    target: Target
    lock: Lock
    source: Source
    packages: int
    findings: tuple[Finding, ...]

    @property
    def unaccepted(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.accepted)


def decide(
    target: Target,
    *,
    lock: Lock,
    audited: Sequence[AuditedPackage],
    skipped: Sequence[SkippedPackage],
    allowlist: Allowlist,
    source: Source,
) -> TargetAudit:
    """Apply the exceptions; raise NotAuditedError when any locked package went unaudited."""
    locked = {p.name: p.version for p in lock.packages}
    seen = {p.name for p in audited}
    problems = [f"{s.name}: {s.reason}" for s in skipped]
    problems += [
        f"{name}=={version}: missing from pip-audit's answer"
        for name, version in sorted(locked.items())
        if name not in seen and not any(normalize(s.name) == name for s in skipped)
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        everything = len(problems) >= len(locked)
        # pip-audit words a skip "<why>: <name> (<version>)"; the why, once.
        reasons = {s.reason.rsplit(": ", 1)[0] for s in skipped}
        if everything and len(reasons) == 1 and len(skipped) == len(problems):
            # One answer for every package ("Dependency not found on PyPI"): no service
            # answered at all. Said once, not once per package.
            names = sorted(str(s.name) for s in skipped)
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            shown = (
                f"it answered '{next(iter(reasons))}' for every one of them "
                f"({', '.join(names[:10])}{more})"
            )
        raise NotAuditedError(
            f"{len(problems)} of {len(locked)} packages of {target.name} could not be audited "
            f"by {source.description}: {shown}",
            hint=(
                OFFLINE_HINT
                if everything
                else "a package that cannot be audited is not let through: audit against a "
                "service that knows it (policy.audit), such as an OSV API or an offline "
                "OSV export"
            ),
        )
    entries = {e.name: e for e in allowlist.packages_for(target)}
    findings = []
    for package in audited:
        for vuln in package.vulnerabilities:
            entry, chain = chain_to_entry(package.name, lock, entries)
            matching = [
                e for e in allowlist.exceptions if e.package == package.name and e.id in vuln.names
            ]
            if vuln.malicious:
                matching = []  # a known malicious release: no exception accepts it
            valid = next((e for e in matching if not e.expired), None)
            expired = next((e for e in matching if e.expired), None)
            findings.append(
                Finding(
                    package.name,
                    package.version,
                    vuln,
                    entry,
                    chain,
                    valid,
                    None if valid else expired,
                )
            )
    # Known malicious releases first: the first thing anyone reads.
    findings.sort(key=lambda f: (not f.vulnerability.malicious, f.package, f.vulnerability.id))
    return TargetAudit(target, lock, source, len(locked), tuple(findings))


def stale_exceptions(
    allowlist: Allowlist, results: Sequence[TargetAudit]
) -> list[VulnerabilityException]:
    used = {id(f.accepted_by or f.expired) for r in results for f in r.findings}
    return [e for e in allowlist.exceptions if id(e) not in used]


def audit_document(result: TargetAudit) -> dict[str, object]:
    return {
        "generated_by": "pipgate audit",
        "target": result.target.name,
        "lock_inputs": result.lock.digest,
        "source": result.source.as_json(),
        "packages": result.packages,
        "findings": [f.as_json() for f in result.findings],
        "verdict": "fail" if result.unaccepted else "pass",
    }


def sbom_document(result: TargetAudit) -> dict[str, object]:
    """A CycloneDX 1.5 SBOM of the lock, with the findings; deterministic for equal inputs."""
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"pipgate:{result.target.name}:{result.lock.digest}:{result.source.newest}",
    )
    components = [
        {
            "type": "library",
            "bom-ref": f"pkg:pypi/{p.name}@{p.version}",
            "name": p.name,
            "version": str(p.version),
            "purl": f"pkg:pypi/{p.name}@{p.version}",
            "hashes": [{"alg": "SHA-256", "content": h} for h in p.hashes],
        }
        for p in sorted(result.lock.packages, key=lambda p: p.name)
    ]
    vulnerabilities = []
    for finding in result.findings:
        item: dict[str, object] = {
            "id": finding.vulnerability.id,
            "description": finding.vulnerability.description,
            "references": [
                {"id": a, "source": {"name": "alias"}} for a in finding.vulnerability.aliases
            ],
            "affects": [{"ref": f"pkg:pypi/{finding.package}@{finding.version}"}],
        }
        if finding.accepted_by is not None:
            item["analysis"] = {
                "state": "exploitable",
                "response": ["will_not_fix"],
                "detail": f"accepted until {finding.accepted_by.expires}: "
                f"{finding.accepted_by.reason}",
            }
        vulnerabilities.append(item)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "pipgate"}]},
            "component": {
                "type": "application",
                "name": f"pipgate-{result.target.name}",
                "bom-ref": f"target:{result.target.name}",
            },
            # Where the vulnerability data came from: its source, record count and newest.
            "properties": [
                {"name": "pipgate:vulnerability-data", "value": result.source.summary()}
            ],
        },
        "components": components,
        "dependencies": [
            {
                "ref": f"pkg:pypi/{p.name}@{p.version}",
                "dependsOn": sorted(
                    f"pkg:pypi/{c.name}@{c.version}"
                    for c in result.lock.packages
                    if p.name in c.via
                ),
            }
            for p in sorted(result.lock.packages, key=lambda p: p.name)
        ],
        "vulnerabilities": vulnerabilities,
    }


def write_reports(result: TargetAudit, folder: Path) -> None:
    write_atomic(folder / AUDIT_NAME, json.dumps(audit_document(result), indent=2) + "\n")
    write_atomic(folder / SBOM_NAME, json.dumps(sbom_document(result), indent=2) + "\n")


def audit_target(
    allowlist: Allowlist, target: Target, auditor: Auditor, output: Path | None = None
) -> TargetAudit:
    path = lock_path(allowlist, target, output)
    lock = read_lock(path, target.name)
    if lock is None:
        raise InputError(
            f"no lock for target {target.name} at {display_path(path)}",
            hint="run 'pipgate lock' first",
        )
    audited, skipped = auditor.audit(path)
    result = decide(
        target,
        lock=lock,
        audited=audited,
        skipped=skipped,
        allowlist=allowlist,
        source=auditor.source,
    )
    write_reports(result, path.parent)
    return result
