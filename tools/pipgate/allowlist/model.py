"""The allowlist as typed, validated values. Everything here is made by ``load``."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from pathlib import Path

from pipgate.bounds import Limits
from pipgate.names import ExactVersion, NormalizedName, PythonVersion, Version
from pipgate.problems import Location


class RegistryKind(enum.Enum):
    FILE = "file"
    HTTP = "http"
    ARTIFACT_REGISTRY = "artifact-registry"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RegistrySpec:
    """Where approved files go, parsed from ``registry`` in config.yaml."""

    kind: RegistryKind
    url: str
    """As written (never holds credentials: those are refused)."""
    path: Path | None = None
    """For ``file://``: the directory, made absolute against the repository root."""
    location: str | None = None
    project: str | None = None
    repository: str | None = None
    simple: str | None = None
    """The simple index, where the long form names it apart from the upload URL."""
    server: str | None = None
    """The long form's ``server`` (``pypiserver``, ``devpi``): whose deletion API to use."""

    @property
    def upload_url(self) -> str:
        if self.kind is RegistryKind.ARTIFACT_REGISTRY:
            return f"https://{self.location}-python.pkg.dev/{self.project}/{self.repository}/"
        return self.url

    @property
    def in_each_clone(self) -> bool:
        """An embedded registry given as a relative file:// path: a folder of each clone's
        own, so what names it (pip.conf, pylock.toml paths) must not name one machine's."""
        return self.kind is RegistryKind.FILE and not self.url.removeprefix("file://").startswith(
            "/"
        )

    @property
    def simple_url(self) -> str:
        if self.kind is RegistryKind.FILE:
            assert self.path is not None
            return self.path.joinpath("simple").as_uri() + "/"
        if self.simple is not None:
            return self.simple
        return self.upload_url.rstrip("/") + "/simple/"


class SdistPolicy(enum.Enum):
    DENY = "deny"
    ALLOW = "allow"


class TransitivePolicy(enum.Enum):
    AUTO = "auto"
    EXPLICIT = "explicit"


class AuditService(enum.Enum):
    PYPI = "pypi"
    OSV = "osv"


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditPolicy:
    service: AuditService = AuditService.PYPI
    url: str | None = None
    """With service osv: a self-hosted OSV query URL."""
    database: Path | None = None
    """An offline OSV export, served locally for the audit; wins over ``service``."""
    max_data_age_days: int = 2
    """An offline export older than this fails the audit (exit 3); 0: no limit."""

    def describe(self) -> str:
        if self.database is not None:
            return f"offline OSV export {self.database}"
        if self.service is AuditService.OSV:
            return f"OSV API at {self.url}" if self.url else "the public OSV API"
        return "pip-audit's default service (PyPI)"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Signals:
    """policy.signals: the patterns of real incidents (0 or False: off)."""

    dormant_years: int = 2
    new_project_days: int = 90
    late_file_days: int = 14
    missing_files: bool = True
    provenance: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class Policy:
    sdists: SdistPolicy = SdistPolicy.DENY
    transitive: TransitivePolicy = TransitivePolicy.AUTO
    min_release_age_days: int = 7
    audit: AuditPolicy = dataclasses.field(default_factory=AuditPolicy)
    licenses_deny: tuple[str, ...] = ()
    max_exception_days: int = 365
    signals: Signals = dataclasses.field(default_factory=Signals)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    python: PythonVersion
    platforms: tuple[str, ...]
    implementation: str = "cp"
    location: Location


@dataclasses.dataclass(frozen=True, kw_only=True)
class Bootstrap:
    file: str
    """The package file's name under allowlist/."""
    targets: tuple[str, ...]
    """Empty: every target."""
    location: Location

    def enabled_for(self, target: Target) -> bool:
        return not self.targets or target.name in self.targets


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    path: Path
    registry: RegistrySpec
    upstream: str | None
    targets: tuple[Target, ...]
    policy: Policy
    bootstrap: Bootstrap | None = None
    upstream_file_hosts: tuple[str, ...] = ()
    """Origins (``scheme://host:port``) the upstream's pages may link files on."""
    limits: Limits = dataclasses.field(default_factory=Limits)
    lock_engine: str = "pip-tools"
    """``lock.engine``: ``pip-tools`` (pip-compile under each target's Python) or ``uv``."""

    def target(self, name: str) -> Target | None:
        for target in self.targets:
            if target.name == name:
                return target
        return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PackageEntry:
    name: NormalizedName
    spelled: str
    """The name as the entry writes it, for messages."""
    version: ExactVersion
    reason: str
    requested_by: str
    extras: tuple[NormalizedName, ...] = ()
    targets: tuple[str, ...] = ()
    """Empty: every target."""
    sdist: bool = False
    internal: bool = False
    cooldown_exempt: str | None = None
    """Why this release may skip the minimum release age."""
    not_a_typosquat_of: NormalizedName | None = None
    location: Location

    @property
    def requirement(self) -> str:
        """The one line pip sees: ``name[extra,...]==version``, built from checked parts only."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version}"

    @property
    def pinned(self) -> Version:
        """The entry's version, parsed (checked to parse when the file was read)."""
        return Version(self.version)

    def applies_to(self, target: Target) -> bool:
        return not self.targets or target.name in self.targets


@dataclasses.dataclass(frozen=True, kw_only=True)
class VulnerabilityException:
    id: str
    package: NormalizedName
    reason: str
    approved_by: str
    expires: datetime.date
    expired: bool = False
    """Past its expiry: it no longer applies (loaded so the audit can say so)."""
    location: Location


@dataclasses.dataclass(frozen=True, kw_only=True)
class Allowlist:
    root: Path
    """The repository root: the allowlist folder's parent."""
    config: Config
    packages: tuple[PackageEntry, ...]
    exceptions: tuple[VulnerabilityException, ...]
    package_files: tuple[Path, ...]

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file read, config and exceptions included, in a stable order."""
        exceptions = self.root_folder / "exceptions.yaml"
        extra = (exceptions,) if exceptions.is_file() else ()
        return (self.config.path, *self.package_files, *extra)

    @property
    def root_folder(self) -> Path:
        """The allowlist folder itself."""
        return self.config.path.parent

    def packages_for(self, target: Target) -> tuple[PackageEntry, ...]:
        return tuple(p for p in self.packages if p.applies_to(target))

    def bootstrap_packages(self) -> tuple[PackageEntry, ...]:
        """The entries of the bootstrap file; empty when no bootstrap is configured."""
        if self.config.bootstrap is None:
            return ()
        return tuple(p for p in self.packages if p.location.path.name == self.config.bootstrap.file)
