"""The file cache: files by sha256, admitted only when they hash to what was asked.

``<root>/sha256/<ab>/<digest>/<filename>``; fetching goes through a scratch
folder on the cache's own file system, so a file appears whole or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from pipgate import index
from pipgate.download.interface import DownloadError
from pipgate.fsutil import owned_scratch, sweep_scratch
from pipgate.toolenv import cache_dir

SCRATCH_PREFIX = ".download-"


class FileCache:
    """Files by sha256: ``<root>/sha256/<ab>/<digest>/<filename>``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir() / "files"
        self._swept = False
        self._sweeping = threading.Lock()

    def _folder(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def get(self, digest: str) -> Path | None:
        folder = self._folder(digest)
        if not folder.is_dir():
            return None
        for item in folder.iterdir():
            if not item.name.startswith("."):
                return item
        return None

    def scratch(self) -> AbstractContextManager[Path]:
        """A folder on the cache's file system, so that moving into place is a rename.

        The first use in a run removes what a killed run left half-written.
        """
        with self._sweeping:
            if not self._swept:
                sweep_scratch(self.root, SCRATCH_PREFIX)
                self._swept = True
        return owned_scratch(self.root, SCRATCH_PREFIX)

    def add(self, source: Path, digest: str) -> Path:
        """Move ``source`` (already checked to hash to ``digest``) into the cache."""
        folder = self._folder(digest)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / source.name
        source.replace(target)
        return target


def fetch_to_cache(cache: FileCache, item: index.IndexFile, sha256: str) -> Path:
    """One listed file, streamed into the cache and checked against ``sha256``: for the
    download, and where pipgate needs a file's metadata (the licence check). Nothing is
    built or run; a mismatch keeps nothing."""
    found = cache.get(sha256)
    if found is not None:
        return found

    def fetch(target: Path) -> str:
        try:
            return index.download(item, target)
        except index.IndexReadError as error:
            raise DownloadError(error.message, hint=error.hint) from None

    return fetch_checked(
        cache,
        item.filename,
        sha256,
        fetch,
        "the index serves a file other than the one the lock records: nothing was kept; "
        "check the index, or re-lock on purpose",
    )


def fetch_checked(
    cache: FileCache, filename: str, sha256: str, fetch: Callable[[Path], str], hint: str
) -> Path:
    """``fetch`` one file into a scratch folder of the cache; admitted only when it hashes
    to ``sha256``, so a mismatch or a failure keeps nothing. The local name is the file's
    own only when it is a plain distribution file name; nothing else becomes a path."""
    if not index.safe_filename(filename):
        raise DownloadError(
            f"refusing the file name {filename[:200]!r}: not a plain wheel or sdist name",
            hint="the index or registry listed a name that could write outside pipgate's "
            "folders: check it",
        )
    with cache.scratch() as scratch:
        target = scratch / filename
        digest = fetch(target)
        if digest != sha256:
            raise DownloadError(
                f"{filename} (sha256 {digest}) does not match the lock; it was not kept",
                hint=hint,
            )
        return cache.add(target, sha256)
