"""The pip backend of the downloader: ``pip download`` per target, checked against the lock.

pip downloads (``--no-deps --require-hashes`` with the target's platform,
Python version, implementation and ABI; ``--only-binary=:all:`` except for
entries marked ``sdist: true``) into a scratch folder inside the cache; each
file is hashed again, checked against the lock, and moved into place only
when complete. The file pip chose for each package is found again by its
hash, so a lock that has not changed costs no index traffic at all: every
file it needs is already in the cache. ``internal: true`` packages come from
the private registry, never from upstream.
"""

from __future__ import annotations

import functools
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipgate.allowlist import Allowlist, Target
from pipgate.allowlist.model import SdistPolicy
from pipgate.download.cache import FileCache, fetch_checked
from pipgate.download.interface import CachedFile, Downloader, DownloadError, DownloadReport
from pipgate.fsutil import sha256_of
from pipgate.lock import Lock, LockedPackage
from pipgate.names import NormalizedName, file_release
from pipgate.registry import Registry
from pipgate.runner import redact, run, tool_environment
from pipgate.targettags import expand_platform


def _requirement_lines(packages: Sequence[LockedPackage]) -> str:
    lines = []
    for package in packages:
        hashes = " ".join(f"--hash=sha256:{h}" for h in package.hashes)
        lines.append(f"{package.name}=={package.version} {hashes}")
    return "\n".join(lines) + "\n"


def pip_download_args(target: Target, *, binary_only: bool) -> list[str]:
    major, minor = target.python.split(".")
    args = [
        "--no-deps",
        "--require-hashes",
        "--python-version",
        f"{major}{minor}",
        "--implementation",
        target.implementation,
        "--abi",
        f"{target.implementation}{major}{minor}",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    # Every tag the target accepts: pip expands only the legacy manylinux aliases itself,
    # so --platform manylinux_2_28_x86_64 alone would refuse a manylinux_2_17 wheel that
    # such a machine installs (and that the lock therefore holds).
    platforms = dict.fromkeys(p for platform in target.platforms for p in expand_platform(platform))
    for platform in platforms:
        args += ["--platform", platform]
    args += ["--only-binary=:all:"] if binary_only else ["--prefer-binary"]
    return args


class PipDownloader(Downloader):
    """``pip download`` from the upstream; internal packages from the private registry."""

    def __init__(
        self,
        allowlist: Allowlist,
        cache: FileCache,
        registry: Callable[[], Registry] | None = None,
    ) -> None:
        self.allowlist = allowlist
        self.cache = cache
        self.registry = registry

    def download(
        self,
        target: Target,
        lock: Lock,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> DownloadReport:
        return download_target(
            self.allowlist, target, lock, self.cache, progress=progress, registry=self.registry
        )


def download_target(
    allowlist: Allowlist,
    target: Target,
    lock: Lock,
    cache: FileCache,
    *,
    progress: Callable[[str], None] | None = None,
    registry: Callable[[], Registry] | None = None,
) -> DownloadReport:
    """Make the cache hold one installable file per locked package; fetch only what it lacks.

    A package whose lock hashes name a cached file costs nothing: no pip run, no index
    page. The lock's hashes are only those of files the target can install, so a cached
    file with one of them is a file the target's consumers install. ``internal: true``
    packages come from the private registry (``registry``), never from upstream.
    """
    files: list[CachedFile] = []
    wanted: list[LockedPackage] = []
    for package in lock.packages:
        found = next(((h, p) for h in sorted(package.hashes) if (p := cache.get(h))), None)
        if found is None:
            wanted.append(package)
        else:
            digest, path = found
            files.append(
                CachedFile(
                    package.name, package.version, path.name, digest, path, path.stat().st_size
                )
            )
    cached = len(files)
    internal = {e.name for e in allowlist.packages_for(target) if e.internal}
    from_registry = [p for p in wanted if p.name in internal]
    wanted = [p for p in wanted if p.name not in internal]
    fetched = fetched_bytes = 0
    if from_registry:
        if registry is None:
            raise DownloadError(
                "internal packages come from the private registry, and none was given",
                hint="run the download through pipgate's command line",
            )
        for internal_file in _from_registry(registry(), from_registry, cache):
            files.append(internal_file)
            fetched += 1
            fetched_bytes += internal_file.size
    if not wanted:
        return DownloadReport(target.name, tuple(sorted(files)), fetched, fetched_bytes, cached)

    sdist_ok = {e.name for e in allowlist.packages_for(target) if e.sdist}
    if allowlist.config.policy.sdists is SdistPolicy.ALLOW:
        sdist_ok = {p.name for p in lock.packages}
    groups = [
        ([p for p in wanted if p.name not in sdist_ok], True),
        ([p for p in wanted if p.name in sdist_ok], False),
    ]
    by_name = {p.name: p for p in lock.packages}
    with cache.scratch() as scratch:
        folder = Path(scratch)
        for packages, binary_only in groups:
            if not packages:
                continue
            if progress is not None:
                progress(
                    f"{target.name}: downloading {len(packages)} of "
                    f"{len(lock.packages)} packages ({cached} already cached)"
                )
            requirements = folder / f"requirements-{binary_only}.txt"
            requirements.write_text(_requirement_lines(packages), encoding="utf-8")
            out = folder / f"files-{binary_only}"
            out.mkdir()
            args = [
                "-m",
                "pip",
                "download",
                *pip_download_args(target, binary_only=binary_only),
                "--dest",
                str(out),
                "--progress-bar",
                "off",
                "-r",
                str(requirements),
            ]
            upstream = allowlist.config.upstream
            if upstream:
                args += ["--index-url", upstream]
            result = run(
                [sys.executable, *args],
                env=tool_environment(isolate_pip=upstream is not None),
                on_line=_counter(target.name, len(packages), progress),
            )
            if result.returncode != 0:
                raise DownloadError(
                    f"pip download failed for target {target.name}:\n"
                    f"{redact(result.output.strip())[-1500:]}",
                    hint="a hash mismatch means the index serves a different file than the "
                    "lock records: nothing was kept; check the index, or re-lock on purpose",
                )
            for item in sorted(out.iterdir()):
                files.append(_admit(item, by_name, cache))
                fetched += 1
                fetched_bytes += files[-1].size
    names = {f.name for f in files}
    missing = sorted(p.name for p in lock.packages if p.name not in names)
    if missing:
        raise DownloadError(f"pip downloaded no file for {', '.join(missing)} ({target.name})")
    return DownloadReport(target.name, tuple(sorted(files)), fetched, fetched_bytes, cached)


_FETCHING = re.compile(
    r"^\s*(?:Downloading|Using cached)\s+(?P<what>\S+)(?:\s+\((?P<size>[^)]*)\))?"
)


def _counter(
    target: str, total: int, progress: Callable[[str], None] | None
) -> Callable[[str], None] | None:
    """A reader of pip's output that reports each file it fetches as ``[i/N] file (size)``."""
    if progress is None:
        return None
    count = 0

    def on_line(line: str) -> None:
        nonlocal count
        match = _FETCHING.match(line)
        if match is None:
            return
        count += 1
        name = urllib.parse.unquote(match["what"].rsplit("/", 1)[-1].partition("#")[0])
        size = f" ({match['size']})" if match["size"] else ""
        progress(f"{target}: [{count}/{total}] {name}{size}")

    return on_line


def _from_registry(
    registry: Registry, packages: Sequence[LockedPackage], cache: FileCache
) -> list[CachedFile]:
    """Internal packages' files, from the registry by their locked hashes."""
    held = registry.list(sorted({p.name for p in packages}))
    out = []
    for package in packages:
        candidates = sorted(
            (h for h in held.values() if h.sha256 in package.hashes),
            key=lambda h: (not h.filename.endswith(".whl"), h.filename),
        )
        if not candidates:
            raise DownloadError(
                f"the private registry holds no file of {package.name}=={package.version} "
                "with a locked hash",
                hint="publish the internal package to the registry, then lock again",
            )
        chosen = candidates[0]
        path = fetch_checked(
            cache,
            chosen.filename,
            chosen.sha256,
            functools.partial(registry.fetch, chosen),
            "the registry serves a file other than the one it lists: check it",
        )
        out.append(
            CachedFile(
                package.name, package.version, path.name, chosen.sha256, path, path.stat().st_size
            )
        )
    return out


def _admit(
    item: Path, by_name: Mapping[NormalizedName, LockedPackage], cache: FileCache
) -> CachedFile:
    release = file_release(item.name)
    digest = sha256_of(item)
    package = by_name.get(release[0]) if release else None
    if package is None or digest not in package.hashes:
        item.unlink(missing_ok=True)
        raise DownloadError(
            f"{item.name} (sha256 {digest}) does not match the lock; it was not kept",
            hint="the index serves a file the lock does not record: check the index",
        )
    size = item.stat().st_size
    path = cache.add(item, digest)
    return CachedFile(package.name, package.version, path.name, digest, path, size)
