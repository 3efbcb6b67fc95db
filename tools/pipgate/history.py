"""The locks of recent commits: what a rollback of ``generated/`` would need again.

``pipgate prune`` keeps every file a lock of the last N commits that touched
``generated/`` names, read with git (``git log`` and ``git show``, through the
one subprocess wrapper). A history that cannot be read is an error, never an
empty one: a prune that cannot see what a rollback needs must not delete.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from pipgate.errors import InputError
from pipgate.lock.lockfile import LOCK_NAME
from pipgate.problems import display_path
from pipgate.runner import ToolError, run

_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class HistoryError(InputError):
    """The history of generated/ cannot be read as deep as the retention asks (exit 2)."""


@dataclasses.dataclass(frozen=True)
class Retained:
    commits: tuple[str, ...]
    """The commits read, newest first."""
    hashes: dict[str, str]
    """sha256 -> where a lock of those commits names it (``COMMIT:PATH``), the newest."""


def _git(root: Path, *args: str) -> str:
    try:
        result = run(["git", "-C", str(root), *args], timeout=300)
    except ToolError as error:
        raise HistoryError(
            f"cannot run git to read the history of {display_path(root)}: {error.message}",
            hint="install git, or pass --keep-commits 0 to keep only what the current locks need",
        ) from None
    if result.returncode != 0:
        said = result.output.strip().splitlines()
        raise HistoryError(
            f"git cannot read the history of {display_path(root)}: "
            f"{said[-1][:300] if said else 'failed'}",
            hint="run in a clone of the allowlist repository, or pass --keep-commits 0 to "
            "keep only what the current locks need",
        )
    return result.stdout


def recent_locks(generated: Path, commits: int) -> Retained:
    """Every sha256 the locks under ``generated`` name in the last ``commits`` commits."""
    if commits <= 0:
        return Retained((), {})
    folder = generated.resolve()
    if not folder.is_dir():
        return Retained((), {})
    root = Path(_git(folder, "rev-parse", "--show-toplevel").strip())
    relative = folder.relative_to(root.resolve()).as_posix()
    log = _git(root, "log", f"-n{commits}", "--format=%H", "--", relative).split()
    found = [c for c in log if _COMMIT.fullmatch(c)]
    if (
        len(found) < commits
        and _git(root, "rev-parse", "--is-shallow-repository").strip() == "true"
    ):
        raise HistoryError(
            f"the clone is shallow: {len(found)} of the last {commits} commits of "
            f"{relative}/ are here",
            hint="fetch the history first ('git fetch --unshallow', or a clone with "
            "--depth of at least the commits kept), or lower --keep-commits",
        )
    hashes: dict[str, str] = {}
    for commit in found:
        listed = _git(root, "ls-tree", "-r", "--name-only", commit, "--", relative).split("\n")
        for path in (p for p in listed if p.endswith("/" + LOCK_NAME)):
            text = _git(root, "show", f"{commit}:{path}")
            for digest in _HASH.findall(text):
                hashes.setdefault(digest, f"{commit[:12]}:{path}")
    return Retained(tuple(found), hashes)
