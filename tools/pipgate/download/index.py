"""The index backend of the downloader: every file of the lock, fetched by its hash.

The lock records the sha256 of every file a target's consumers may install;
the index pages say where each one is. Every such file is fetched through
the one HTTP client (bounded by the size the index published, on an allowed
origin, within the time limit), hashed again and admitted to the cache only
when it matches, so the registry receives every file of every lock, whatever
machine runs the download, and nothing pip might prefer on that machine
decides which. ``internal: true`` packages come from the private registry,
never from upstream. A lock whose files are all cached costs no request.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from pipgate import index
from pipgate.allowlist import Allowlist, Target
from pipgate.download.cache import FileCache, fetch_checked, fetch_to_cache
from pipgate.download.interface import CachedFile, Downloader, DownloadError, DownloadReport
from pipgate.index import IndexFile, Source
from pipgate.lock import Lock, LockedPackage
from pipgate.names import NormalizedName
from pipgate.registry import Held, Registry

WORKERS = 4
"""Files fetched at once."""

Fetch = Callable[[FileCache, IndexFile], Path]
"""Fetches one planned file into the cache, checked by its hash."""


class IndexDownloader(Downloader):
    """Every locked file from the upstream's pages; internal ones from the registry."""

    def __init__(
        self,
        allowlist: Allowlist,
        cache: FileCache,
        sources: Callable[[Target], Sequence[Source]],
        registry: Callable[[], Registry] | None = None,
    ) -> None:
        self.allowlist = allowlist
        self.cache = cache
        self.sources = sources
        self.registry = registry

    def download(
        self,
        target: Target,
        lock: Lock,
        *,
        progress: Callable[[str], None] | None = None,
        fetch: bool = True,
    ) -> DownloadReport:
        files: list[CachedFile] = []
        missing: list[tuple[LockedPackage, str]] = []
        for package in lock.packages:
            for digest in sorted(package.hashes):
                path = self.cache.get(digest)
                if path is None:
                    missing.append((package, digest))
                else:
                    files.append(_cached(package, digest, path.name, path))
        cached = len(files)
        if not missing or not fetch:
            return DownloadReport(target.name, tuple(sorted(files)), 0, 0, cached, len(missing))
        internal = {e.name for e in self.allowlist.packages_for(target) if e.internal}
        plan = self._plan(target, [m for m in missing if m[0].name not in internal])
        plan += self._from_registry([m for m in missing if m[0].name in internal])
        total = sum(item.size or 0 for _, item, _ in plan)
        if progress is not None:
            progress(
                f"{target.name}: downloading {len(plan)} of {len(plan) + cached} files"
                + (f" ({total / 1e6:.1f} MB)" if total else "")
                + f", {cached} already cached"
            )
        fetched = fetched_bytes = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = [pool.submit(fetch, self.cache, item) for _, item, fetch in plan]
            try:
                for position, ((package, item, _), future) in enumerate(
                    zip(plan, futures, strict=True), 1
                ):
                    path = future.result()
                    assert item.sha256 is not None
                    files.append(_cached(package, item.sha256, item.filename, path))
                    fetched += 1
                    fetched_bytes += files[-1].size
                    if progress is not None:
                        progress(
                            f"{target.name}: [{position}/{len(plan)}] {item.filename} "
                            f"({files[-1].size / 1e6:.1f} MB)"
                        )
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return DownloadReport(target.name, tuple(sorted(files)), fetched, fetched_bytes, cached)

    def _plan(
        self, target: Target, wanted: Sequence[tuple[LockedPackage, str]]
    ) -> list[tuple[LockedPackage, IndexFile, Fetch]]:
        """Where each wanted file is, from the upstream pages of its package."""
        if not wanted:
            return []
        sources = self.sources(target)
        names = sorted({package.name for package, _ in wanted})
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            found_pages = pool.map(functools.partial(_release_files, sources), names)
            pages = dict(zip(names, found_pages, strict=True))
        plan: list[tuple[LockedPackage, IndexFile, Fetch]] = []
        for package, digest in wanted:
            release = index.files_for_version(pages[package.name], package.name, package.version)
            found = next((f for f in index.with_hashes(release) if f.sha256 == digest), None)
            if found is None:
                where = ", ".join(s.url for s in sources) or "the upstream"
                raise DownloadError(
                    f"{where} lists no file of {package.name}=={package.version} with the "
                    f"locked sha256 {digest}",
                    hint="the index no longer serves a file the lock records (removed, or "
                    "replaced under its name): check the index, or re-lock on purpose",
                )
            plan.append((package, found, _from_index))
        return plan

    def _from_registry(
        self, wanted: Sequence[tuple[LockedPackage, str]]
    ) -> list[tuple[LockedPackage, IndexFile, Fetch]]:
        """Internal packages' files, from the registry by their locked hashes."""
        if not wanted:
            return []
        if self.registry is None:
            raise DownloadError(
                "internal packages come from the private registry, and none was given",
                hint="run the download through pipgate's command line",
            )
        registry = self.registry()
        held = registry.list(sorted({package.name for package, _ in wanted}))
        by_hash = {h.sha256: h for h in held.values()}
        plan: list[tuple[LockedPackage, IndexFile, Fetch]] = []
        for package, digest in wanted:
            found = by_hash.get(digest)
            if found is None:
                raise DownloadError(
                    f"the private registry holds no file of {package.name}=={package.version} "
                    f"with the locked sha256 {digest}",
                    hint="publish the internal package to the registry, then lock again",
                )
            item = IndexFile(found.filename, found.url, found.sha256)
            plan.append((package, item, functools.partial(_from_held, registry, found)))
        return plan


def _release_files(sources: Sequence[Source], name: NormalizedName) -> list[IndexFile]:
    return [f for source in sources for f in index.project_files(source, name)]


def _from_index(cache: FileCache, item: IndexFile) -> Path:
    assert item.sha256 is not None  # planned by its locked hash
    return fetch_to_cache(cache, item, item.sha256)


def _from_held(registry: Registry, held: Held, cache: FileCache, item: IndexFile) -> Path:
    return fetch_checked(
        cache,
        held.filename,
        held.sha256,
        functools.partial(registry.fetch, held),
        "the registry serves a file other than the one it lists: check it",
    )


def _cached(package: LockedPackage, digest: str, filename: str, path: Path) -> CachedFile:
    return CachedFile(package.name, package.version, filename, digest, path, path.stat().st_size)
