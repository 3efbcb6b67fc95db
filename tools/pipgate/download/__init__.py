"""The download port: each target's files, hash-checked, in a cache by sha256.

- ``interface.py``: the ``Downloader`` port, ``CachedFile`` and the report.
- ``pip.py``: the pip backend (and internal packages from the private registry).
- ``cache.py``: the content-addressed file cache.
"""

from pipgate.download.cache import FileCache, fetch_checked, fetch_to_cache
from pipgate.download.interface import CachedFile, Downloader, DownloadError, DownloadReport
from pipgate.download.pip import PipDownloader, download_target, pip_download_args

__all__ = [
    "CachedFile",
    "DownloadError",
    "DownloadReport",
    "Downloader",
    "FileCache",
    "PipDownloader",
    "download_target",
    "fetch_checked",
    "fetch_to_cache",
    "pip_download_args",
]
