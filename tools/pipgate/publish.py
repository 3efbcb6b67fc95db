"""Upload only what the registry lacks, survive its faults, and prove the result by hash.

The registry is asked what it holds (file name and sha256 from its own
index); only missing files are uploaded, a few at a time. After an error the
state of a file is unknown, so it is reconciled by hash: the same hash means
the upload happened; another hash is a conflict that stops the run and
changes nothing; no file means it is tried again, with backoff. A file the
registry holds under the same name with another hash is never overwritten.
Finally the index pages of the projects that received files are read again,
and every file must be listed with the right hash.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from pipgate.download import CachedFile
from pipgate.errors import ExternalError
from pipgate.fsutil import sha256_of
from pipgate.registry import (
    Held,
    Registry,
    RegistryConflictError,
    RegistryError,
    UploadRefusedError,
)

ATTEMPTS = 5
BACKOFF = 1.0


class PublishError(ExternalError):
    """The registry could not be brought to hold every file (exit 3)."""


class VerificationError(PublishError):
    """After the upload, the registry's index does not list every file with its hash."""


@dataclasses.dataclass(frozen=True)
class PublishReport:
    files: int
    present: int
    uploaded: int
    uploaded_bytes: int
    verified: int


def _conflict(registry: Registry, cached: CachedFile, held: Held) -> RegistryConflictError:
    size = registry.size(held)
    if size is not None and size < cached.size:
        what = (
            f"the registry holds {cached.filename} with {size} bytes, but the locked file has "
            f"{cached.size}: most likely a partial file an interrupted upload left behind"
        )
    else:
        there = f", {size} bytes" if size is not None else ""
        what = (
            f"the registry holds {cached.filename} with sha256 {held.sha256}{there}, but the "
            f"lock says {cached.sha256}, {cached.size} bytes: another file under that name"
        )
    return RegistryConflictError(
        what,
        hint=f"a file in the registry is never overwritten: check which one is right, "
        f"{registry.removal_hint}, then run again",
    )


def _upload_one(registry: Registry, cached: CachedFile, backoff: float) -> None:
    if sha256_of(cached.path) != cached.sha256:
        raise PublishError(
            f"the cached {cached.filename} no longer has its sha256",
            hint="delete pipgate's cache folder and run again",
        )
    last: RegistryError | None = None
    for attempt in range(ATTEMPTS):
        try:
            registry.upload(cached.path, cached.sha256)
        except (RegistryConflictError, UploadRefusedError):
            raise
        except RegistryError as error:
            last = error
        else:
            return
        # The outcome is unknown: ask the registry, by hash.
        try:
            now = registry.list([cached.name]).get(cached.filename)
        except RegistryError as error:
            last = error
            now = None
        if now is not None:
            if now.sha256 == cached.sha256:
                return
            raise _conflict(registry, cached, now)
        time.sleep(backoff * (2**attempt))
    assert last is not None
    raise PublishError(
        f"{cached.filename} could not be uploaded after {ATTEMPTS} attempts: {last.message}",
        hint="run again; what was uploaded stays uploaded",
    )


def publish(
    registry: Registry,
    files: Sequence[CachedFile],
    *,
    workers: int = 4,
    backoff: float = BACKOFF,
    progress: Callable[[str], None] | None = None,
) -> PublishReport:
    unique = {f.sha256: f for f in files}
    wanted = sorted(unique.values())
    projects = sorted({f.name for f in wanted})
    held = registry.list(projects)
    missing = []
    for cached in wanted:
        found = held.get(cached.filename)
        if found is None:
            missing.append(cached)
        elif found.sha256 != cached.sha256:
            raise _conflict(registry, cached, found)
    uploaded_bytes = 0
    if missing:
        total = sum(f.size for f in missing)
        done = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(_upload_one, registry, f, backoff): f for f in missing}
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
                    cached = futures[future]
                    done += 1
                    uploaded_bytes += cached.size
                    if progress is not None:
                        progress(
                            f"uploaded {done}/{len(missing)} files, "
                            f"{uploaded_bytes / 1e6:.1f}/{total / 1e6:.1f} MB: "
                            f"{cached.filename}"
                        )
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        # The pages of projects that received files are read again; the others were read
        # moments ago and nothing was sent to them.
        held.update(registry.list(sorted({f.name for f in missing})))
    verified = _check(held, wanted)
    return PublishReport(
        len(wanted), len(wanted) - len(missing), len(missing), uploaded_bytes, verified
    )


def _check(held: Mapping[str, Held], files: Sequence[CachedFile]) -> int:
    """Every file must be listed in the registry's index with its sha256."""
    wrong = []
    for cached in files:
        found = held.get(cached.filename)
        if found is None:
            wrong.append(f"{cached.filename}: missing")
        elif found.sha256 != cached.sha256:
            wrong.append(f"{cached.filename}: sha256 {found.sha256}, expected {cached.sha256}")
    if wrong:
        raise VerificationError(
            f"the registry does not hold every locked file: {'; '.join(wrong[:10])}",
            hint="run again to finish the upload; a wrong hash must be fixed by hand",
        )
    return len(files)
