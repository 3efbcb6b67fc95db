"""The download port: each target's files, hash-checked, in a cache by sha256.

- ``interface.py``: the ``Downloader`` port, ``CachedFile`` and the report.
- ``index.py``: every locked file from the index pages (and internal packages from the
  private registry), through the one bounded HTTP client.
- ``cache.py``: the content-addressed file cache.
"""

from pipgate.download.cache import FileCache, fetch_checked, fetch_to_cache
from pipgate.download.index import IndexDownloader
from pipgate.download.interface import CachedFile, Downloader, DownloadError, DownloadReport

__all__ = [
    "CachedFile",
    "DownloadError",
    "DownloadReport",
    "Downloader",
    "FileCache",
    "IndexDownloader",
    "fetch_checked",
    "fetch_to_cache",
]
