"""The lock port: one hashed lock per target.

- ``interface.py``: the ``Locker`` port (a resolver engine) and its errors.
- ``piptools.py``: the pip-tools engine, pip-compile under the target's Python.
- ``uv.py``: the uv engine, uv pip compile for any Python and platform.
- ``lockfile.py``: the lock file format, read and written.
- ``select.py``: which files of a pin a target may install (pure).
- ``core.py``: locking one target from the allowlist, an engine and the index pages.
"""

from pipgate.lock.core import (
    Outcome,
    blame,
    chain_to_entry,
    describe_sources,
    lock_target,
)
from pipgate.lock.interface import (
    Builds,
    Locker,
    LockError,
    LockInputError,
    LockPolicyError,
    LockToolError,
    Pin,
    Request,
)
from pipgate.lock.lockfile import (
    LOCK_FORMAT,
    LOCK_NAME,
    TOP_LEVEL,
    Lock,
    LockedPackage,
    inputs_digest,
    lock_path,
    read_lock,
    render_lock,
)
from pipgate.lock.piptools import PipToolsLocker
from pipgate.lock.select import Selection, installable_files
from pipgate.lock.uv import UvLocker

__all__ = [
    "LOCK_FORMAT",
    "LOCK_NAME",
    "TOP_LEVEL",
    "Builds",
    "Lock",
    "LockError",
    "LockInputError",
    "LockPolicyError",
    "LockToolError",
    "LockedPackage",
    "Locker",
    "Outcome",
    "Pin",
    "PipToolsLocker",
    "Request",
    "Selection",
    "UvLocker",
    "blame",
    "chain_to_entry",
    "describe_sources",
    "inputs_digest",
    "installable_files",
    "lock_path",
    "lock_target",
    "read_lock",
    "render_lock",
]
