"""The downloader port: every file a target's consumers install, into the cache by sha256.

A backend fetches what the cache lacks and admits a file only when it hashes
to a value the lock records. A new backend is one module beside this one.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from pathlib import Path

from pipgate.allowlist import Target
from pipgate.errors import ExternalError
from pipgate.lock import Lock
from pipgate.names import NormalizedName, Version


class DownloadError(ExternalError):
    """A file could not be fetched, or did not match the lock (exit 3)."""


@dataclasses.dataclass(frozen=True, order=True)
class CachedFile:
    name: NormalizedName
    version: Version
    filename: str
    sha256: str
    path: Path
    size: int


@dataclasses.dataclass(frozen=True)
class DownloadReport:
    target: str
    files: tuple[CachedFile, ...]
    fetched: int
    fetched_bytes: int
    cached: int
    missing: int = 0
    """Locked files neither cached nor fetched (asked not to fetch)."""


class Downloader(abc.ABC):
    """Makes the cache hold one installable file per locked package of a target."""

    @abc.abstractmethod
    def download(
        self,
        target: Target,
        lock: Lock,
        *,
        progress: Callable[[str], None] | None = None,
        fetch: bool = True,
    ) -> DownloadReport:
        """The target's files, fetched where the cache lacks them; raises DownloadError.
        With ``fetch=False`` nothing is fetched: the report holds what the cache has and
        counts the rest as missing (a dry run)."""
