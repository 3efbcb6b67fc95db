"""The auditor port: a vulnerability source that audits one lock file as it stands.

Results are frozen values; a package the source could not audit is a
``SkippedPackage``, never a silent pass. One base error with its kinds.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path

from pipgate.allowlist.spec import is_malicious_id
from pipgate.errors import ExternalError, PipgateError, PolicyError
from pipgate.names import NormalizedName, Version

OFFLINE_HINT = (
    "the service answered for none of them, so it is not usable from here; where no "
    "vulnerability service is reachable, set policy.audit.database in allowlist/config.yaml "
    "to an offline OSV export (a folder of OSV records such as a clone of the PyPA advisory "
    "database, or an all.zip), or pass --database PATH; pipgate serves it on 127.0.0.1 for "
    "the audit"
)


class AuditError(PipgateError):
    """Base of the auditor's errors."""


class AuditServiceError(AuditError, ExternalError):
    """The vulnerability service could not be reached or gave no answer (exit 3)."""


class NotAuditedError(AuditError, ExternalError):
    """Some locked package could not be audited (exit 3)."""


class FindingsError(AuditError, PolicyError):
    """Known vulnerabilities that no exception accepts (exit 1)."""


@dataclasses.dataclass(frozen=True)
class Vulnerability:
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]
    description: str

    @property
    def names(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))

    @property
    def malicious(self) -> bool:
        """A report of a malicious release (OSV's MAL- series, from the OpenSSF
        malicious-packages project), not a flaw to weigh: no exception accepts it."""
        return any(is_malicious_id(name) for name in self.names)


@dataclasses.dataclass(frozen=True)
class AuditedPackage:
    name: NormalizedName
    version: Version
    vulnerabilities: tuple[Vulnerability, ...]


@dataclasses.dataclass(frozen=True)
class SkippedPackage:
    name: NormalizedName
    reason: str


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the vulnerability data came from, for the report."""

    description: str
    records: int | None = None
    newest: str | None = None
    fetched: str | None = None
    """When the export was fetched, where it records that (``pipgate-osv.json``)."""

    def as_json(self) -> dict[str, object]:
        return {
            "description": self.description,
            "records": self.records,
            "newest": self.newest,
            "fetched": self.fetched,
        }

    def summary(self) -> str:
        """One line: where the data came from, how many records, how new."""
        if self.records is None:
            return self.description
        fetched = f", fetched {self.fetched}" if self.fetched else ""
        return f"{self.description} ({self.records} records, newest {self.newest}{fetched})"


class Auditor(abc.ABC):
    """Audits one lock file as it stands."""

    source: Source

    @abc.abstractmethod
    def audit(self, lock_file: Path) -> tuple[list[AuditedPackage], list[SkippedPackage]]:
        """Every package of the lock, audited or skipped; raises AuditError without an answer."""
