"""Files written atomically: a reader sees the old content or the new, never half."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, data: str | bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Returns False (and writes nothing) when the file already holds exactly
    ``data``, so unchanged outputs keep their timestamps.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private; generated files are meant to be read.
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()
        raise
    return True


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in chunks (memory stays flat for large files)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_OWNER = ".owner"


_NEW = ".new"
STALE_NEW_SECONDS = 3600


@contextlib.contextmanager
def owned_scratch(parent: Path, prefix: str) -> Iterator[Path]:
    """A scratch folder in ``parent``, removed afterwards, held by a lock while in use.

    A run killed while it held one leaves it behind; the next ``sweep_scratch`` of
    ``parent`` takes the lock of each left folder and, where nobody holds it any
    more, removes the folder. The folder takes its swept name only once its lock is
    held (a rename), so a sweep never sees a live folder unlocked.
    """
    parent.mkdir(parents=True, exist_ok=True)
    making = Path(tempfile.mkdtemp(prefix=_NEW + prefix, dir=parent))
    folder = making
    try:
        with (making / _OWNER).open("w") as owner:
            fcntl.flock(owner.fileno(), fcntl.LOCK_EX)
            folder = making.with_name(making.name.removeprefix(_NEW))
            making.rename(folder)
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_scratch(parent: Path, prefix: str) -> int:
    """Remove the scratch folders of ``parent`` that no live run holds; how many."""
    removed = 0
    try:
        candidates = [p for p in parent.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return 0
    for folder in candidates:
        if folder.name.startswith(_NEW + prefix):
            # Killed between making and naming it (a moment): removed once surely stale.
            with contextlib.suppress(FileNotFoundError):
                if time.time() - folder.stat().st_mtime > STALE_NEW_SECONDS:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            continue
        if not folder.name.startswith(prefix):
            continue
        try:
            handle = (folder / _OWNER).open("a")
        except FileNotFoundError:
            continue  # being removed right now
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run holds it
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (made if missing) across processes, while in the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
