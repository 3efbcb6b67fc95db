"""The one options object every command and the pipeline receive (twine's ``Settings``).

Made once from the parsed command line (``pipgate.cli.options``), frozen,
keyword-only; the core never sees ``argparse``.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path


class Format(enum.Enum):
    TEXT = "text"
    JSON = "json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    allowlist: Path = Path("allowlist")
    format: Format = Format.TEXT
    verbose: bool = False
    """Text reports in full (every pin of a lock, not only what changed)."""
    targets: tuple[str, ...] = ()
    """Only these targets; empty for every target."""
    output: Path | None = None
    """The generated/ tree; None for generated/ beside the allowlist folder."""
    cache: Path | None = None
    """The file cache; None for the default under pipgate's cache folder."""
    upgrade: bool = False
    database: Path | None = None
    """An offline OSV export for this run, overriding policy.audit."""
    max_data_age_days: int | None = None
    """This run's policy.audit.max_data_age_days, where given."""
    jobs: int = 4
    force: bool = False
    verify: bool = False
    """sync: prove a remote registry still holds what was published, and restore it."""
    dry_run: bool = False
    apply: bool = False
    """prune: delete; without it, only say what would go."""
    keep_commits: int = 10
    """prune: the files the locks of this many recent commits of generated/ need are kept."""
    retry_backoff: float = 1.0
    """Seconds before the first retry of an upload whose outcome is unknown."""
    base: str | None = None
    report: Path | None = None
    bootstrap: bool = False
    bundle_out: Path | None = None
    json_key: Path | None = None
    conf_output: Path | None = None
    """Where ``pip-conf`` writes its file (mode 0600); None for standard output."""
    names: tuple[str, ...] = ()
    """outdated, bump: only these entries (by name)."""
    version: str | None = None
    """bump: the version to write (one name); None for the newest passing release."""
    every: bool = False
    """bump --all: every entry with a newer passing release."""
    only_security: bool = False
    """bump --only-security: only pins with a known vulnerability a passing release fixes."""

    @property
    def text(self) -> bool:
        return self.format is Format.TEXT
