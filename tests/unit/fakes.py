"""Fakes of the ports, for unit tests of the pipeline's decisions.

The pipeline itself, the lock file, the policy checks, the decision of the
audit, publishing and rendering all run for real; only the engines behind
the ports are fakes: a locker that returns fixed pins instead of running
pip-compile, an auditor that answers from a table instead of pip-audit, a
downloader that copies from a folder instead of running pip, and a registry
in memory with fault injection. The index pages are a local find-links
folder of small real wheels, so nothing leaves the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from pipgate.allowlist import Allowlist, Target
from pipgate.audit import (
    AuditedPackage,
    Auditor,
    AuditServiceError,
    SkippedPackage,
    Source,
    Vulnerability,
)
from pipgate.download import CachedFile, Downloader, DownloadError, DownloadReport, FileCache
from pipgate.fsutil import sha256_of
from pipgate.index import Source as IndexSource
from pipgate.lock import Lock, Locker, Pin, Request, read_lock
from pipgate.names import NormalizedName, Version, file_release, normalize
from pipgate.pipeline import Adapters, memoized
from pipgate.registry import Held, Registry, RegistryError, Removal
from tests.universe import Dist, build_wheel


class FakeLocker(Locker):
    """Resolves to fixed pins: each entry's own, plus ``extra`` transitive ones."""

    def __init__(self, index: Path, extra: Sequence[tuple[str, str, str]] = ()) -> None:
        self.index = index
        self.extra = extra
        """(name, version, parent) of each transitive pin."""
        self.resolved = 0
        self.requests: list[Request] = []

    def sources(self, target: Target) -> tuple[IndexSource, ...]:
        return (IndexSource(self.index.as_uri(), find_links=True),)

    def resolve(self, request: Request) -> list[Pin]:
        self.resolved += 1
        self.requests.append(request)
        pins = [Pin(e.name, e.pinned, (), True) for e in request.entries]
        pins += [
            Pin(normalize(name), Version(version), (normalize(parent),), False)
            for name, version, parent in self.extra
        ]
        return pins


@dataclasses.dataclass
class FakeAuditor(Auditor):
    """Answers from ``known``: (name, version) -> vulnerability ids; or fails when ``down``."""

    known: dict[tuple[str, str], tuple[str, ...]] = dataclasses.field(default_factory=dict)
    down: bool = False
    source: Source = dataclasses.field(default_factory=lambda: Source("the fake auditor"))
    audited: int = 0

    def audit(self, lock_file: Path) -> tuple[list[AuditedPackage], list[SkippedPackage]]:
        if self.down:
            raise AuditServiceError("could not reach the vulnerability service (fake)")
        self.audited += 1
        lock = read_lock(lock_file, "any")
        assert lock is not None
        return [
            AuditedPackage(
                p.name,
                p.version,
                tuple(
                    Vulnerability(v, (), (), "")
                    for v in self.known.get((p.name, str(p.version)), ())
                ),
            )
            for p in lock.packages
        ], []


class FolderDownloader(Downloader):
    """Copies each locked file from the index folder into the cache, checked by hash."""

    def __init__(self, index: Path, cache: FileCache) -> None:
        self.index = index
        self.cache = cache
        self.fetched = 0

    def download(
        self,
        target: Target,
        lock: Lock,
        *,
        progress: Callable[[str], None] | None = None,
        fetch: bool = True,
    ) -> DownloadReport:
        assert fetch, "the fake downloader always fetches"
        by_hash = {sha256_of(p): p for p in self.index.iterdir()}
        files = []
        for package in lock.packages:
            digest = next((h for h in sorted(package.hashes) if h in by_hash), None)
            if digest is None:
                raise DownloadError(f"no file of {package.name} in the folder")
            path = self.cache.get(digest)
            if path is None:
                with self.cache.scratch() as scratch:
                    copy = Path(scratch) / by_hash[digest].name
                    shutil.copyfile(by_hash[digest], copy)
                    path = self.cache.add(copy, digest)
                self.fetched += 1
            files.append(
                CachedFile(
                    package.name, package.version, path.name, digest, path, path.stat().st_size
                )
            )
        return DownloadReport(target.name, tuple(sorted(files)), self.fetched, 0, 0)


class MemoryRegistry(Registry):
    """A registry in memory: uploads are kept by name; faults are injected per call."""

    def __init__(self, spec: object = None) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self.fail_uploads = 0
        """Uploads that fail (outcome unknown) before uploads work."""
        self.lose_uploads = False
        """Accept every upload and keep nothing (a registry that lies)."""
        self.lists = 0
        self.uploads = 0
        self.unit = Removal.FILE
        """What one deletion removes."""
        self.ignore_removals = False
        """Accept every deletion and keep the files (a registry that lies)."""
        self.removed: list[list[str]] = []

    @property
    def simple_url(self) -> str:
        return "memory://registry/simple/"

    def list(self, projects: Iterable[NormalizedName]) -> dict[str, Held]:
        self.lists += 1
        wanted = set(projects)
        out = {}
        for filename, (digest, _) in self.files.items():
            release = file_release(filename)
            if release is not None and release[0] in wanted:
                out[filename] = Held(filename, digest, f"memory://{filename}")
        return out

    def projects(self) -> tuple[NormalizedName, ...]:
        return tuple(sorted({r[0] for name in self.files if (r := file_release(name))}))

    def upload(self, path: Path, sha256: str) -> None:
        self.uploads += 1
        if self.fail_uploads > 0:
            self.fail_uploads -= 1
            raise RegistryError(f"uploading {path.name}: injected fault")
        if not self.lose_uploads:
            self.files[path.name] = (sha256, path.read_bytes())

    @property
    def removal(self) -> Removal:
        return self.unit

    def remove(self, files: Sequence[Held]) -> None:
        if self.unit is Removal.NONE:
            super().remove(files)
        names = [h.filename for h in files]
        if self.unit is Removal.RELEASE:
            release = {file_release(n) for n in names}
            assert len(release) == 1
            # Like pypiserver and Artifact Registry: the whole release goes.
            names = [n for n in self.files if file_release(n) in release]
        self.removed.append(sorted(names))
        if not self.ignore_removals:
            for name in names:
                self.files.pop(name, None)

    def fetch(self, held: Held, target: Path) -> str:
        digest, data = self.files[held.filename]
        target.write_bytes(data)
        return digest


@dataclasses.dataclass
class World:
    """An allowlist folder, an index folder of small wheels, and the fakes over them."""

    root: Path
    index: Path
    locker: FakeLocker
    auditor: FakeAuditor
    registry: MemoryRegistry
    downloader: FolderDownloader
    cache: FileCache

    @property
    def allowlist_dir(self) -> Path:
        return self.root / "allowlist"

    @property
    def generated(self) -> Path:
        return self.root / "generated"

    @property
    def consumers(self) -> Path:
        """Where pip.conf and uv.toml go: beside the registry at a relative file:// path."""
        return self.root / ".registry"

    def adapters(self) -> Adapters:
        @contextlib.contextmanager
        def auditor() -> Iterator[Auditor]:
            yield self.auditor

        return Adapters(
            locker=self.locker,
            downloader=self.downloader,
            cache=self.cache,
            registry=memoized(lambda: self.registry),
            auditor=auditor,
        )

    def allowlist(self) -> Allowlist:
        from pipgate.allowlist import load

        return load(self.allowlist_dir)


CONFIG = """\
registry: file://.registry
upstream: null
targets:
  - name: py311
    python: "3.11"
    platforms: [manylinux_2_17_x86_64]
policy:
  sdists: deny
  transitive: auto
  min_release_age_days: 0
"""


def entries_text(*pins: str) -> str:
    lines = ["packages:"]
    for pin in pins:
        name, version = pin.split("==")
        lines.append(
            f'  - name: {name}\n    version: "{version}"\n'
            "    reason: needed by the tests\n    requested_by: tests"
        )
    return "\n".join(lines) + "\n"


def make_world(
    tmp: Path,
    dists: Sequence[Dist],
    pins: Sequence[str],
    extra: Sequence[tuple[str, str, str]] = (),
) -> World:
    index = tmp / "index"
    index.mkdir()
    for dist in dists:
        for tag in dist.wheel_tags:
            build_wheel(dist, tag, index)
    allowlist = tmp / "repo" / "allowlist"
    allowlist.mkdir(parents=True)
    (allowlist / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (allowlist / "team.yaml").write_text(entries_text(*pins), encoding="utf-8")
    cache = FileCache(tmp / "cache")
    return World(
        root=tmp / "repo",
        index=index,
        locker=FakeLocker(index, extra),
        auditor=FakeAuditor(),
        registry=MemoryRegistry(),
        downloader=FolderDownloader(index, cache),
        cache=cache,
    )
