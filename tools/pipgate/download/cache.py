"""The file cache: files by sha256, admitted only when they hash to what was asked.

``<root>/sha256/<ab>/<digest>/<filename>``; fetching goes through a scratch
folder on the cache's own file system, so a file appears whole or not at all.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from pipgate import index
from pipgate.download.interface import DownloadError
from pipgate.toolenv import cache_dir


class FileCache:
    """Files by sha256: ``<root>/sha256/<ab>/<digest>/<filename>``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir() / "files"

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

    def scratch(self) -> tempfile.TemporaryDirectory[str]:
        """A folder on the cache's file system, so that moving into place is a rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".download-", dir=self.root)

    def add(self, source: Path, digest: str) -> Path:
        """Move ``source`` (already checked to hash to ``digest``) into the cache."""
        folder = self._folder(digest)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / source.name
        source.replace(target)
        return target


def fetch_to_cache(cache: FileCache, url: str, filename: str, sha256: str) -> Path:
    """One file from an index, streamed into the cache and checked against ``sha256``.

    Used where pipgate needs a file's metadata before a download (the licence
    check): no pip, nothing built or run. A mismatch keeps nothing.
    """
    found = cache.get(sha256)
    if found is not None:
        return found

    def fetch(target: Path) -> str:
        try:
            return index.download(url, target)
        except index.IndexReadError as error:
            raise DownloadError(error.message, hint=error.hint) from None

    return fetch_checked(
        cache, filename, sha256, fetch, "the index serves a file the lock does not record"
    )


def fetch_checked(
    cache: FileCache, filename: str, sha256: str, fetch: Callable[[Path], str], hint: str
) -> Path:
    """``fetch`` one file into a scratch folder of the cache; admitted only when it hashes
    to ``sha256``, so a mismatch or a failure keeps nothing."""
    with cache.scratch() as scratch:
        target = Path(scratch) / filename
        digest = fetch(target)
        if digest != sha256:
            raise DownloadError(
                f"{filename} (sha256 {digest}) does not match the lock; it was not kept",
                hint=hint,
            )
        return cache.add(target, sha256)
