"""The reviewed input: config.yaml, package files and exceptions.yaml."""

from __future__ import annotations

from pipgate.allowlist.load import InvalidAllowlistError, load
from pipgate.allowlist.model import (
    Allowlist,
    Config,
    PackageEntry,
    Policy,
    RegistryKind,
    RegistrySpec,
    Target,
    VulnerabilityException,
)

__all__ = [
    "Allowlist",
    "Config",
    "InvalidAllowlistError",
    "PackageEntry",
    "Policy",
    "RegistryKind",
    "RegistrySpec",
    "Target",
    "VulnerabilityException",
    "load",
]
