"""The locker port: a resolver that turns exact top-level pins into every pin of a target.

One base error with the three kinds the command line maps to exit codes. A
new engine is one module beside this one.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipgate.allowlist import PackageEntry, Target
from pipgate.errors import ExternalError, InputError, PipgateError, PolicyError
from pipgate.index import IndexFile, Source
from pipgate.lock.lockfile import via
from pipgate.names import NormalizedName, Version
from pipgate.problems import Problem


class LockError(PipgateError):
    """Base of the locker's errors."""


class _ProblemsError(LockError):
    """A lock error that carries the problems to show, each at an allowlist entry."""

    def __init__(self, message: str, problems: Sequence[Problem], *, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.problems = tuple(problems)


class LockInputError(_ProblemsError, InputError):
    """The allowlist asks for something that cannot be locked (exit 2)."""


class LockPolicyError(_ProblemsError, PolicyError):
    """The lock breaks a policy: an unlisted transitive package, a missing wheel (exit 1)."""


class LockToolError(LockError, ExternalError):
    """pip-compile or an index failed (exit 3)."""


@dataclasses.dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    parents: tuple[NormalizedName, ...]
    top_level: bool

    @property
    def via(self) -> tuple[str, ...]:
        return via(self.top_level, self.parents)


@dataclasses.dataclass(frozen=True)
class Builds:
    """Which packages the resolver may build from an sdist (running their build code)."""

    any: bool
    """policy.sdists: allow."""
    allowed: tuple[NormalizedName, ...] = ()
    """Under deny: the entries with ``sdist: true`` that have no wheel for the target."""

    def pip_options(self) -> list[str]:
        """The requirement-file options that say so to pip (and so to pip-compile)."""
        if self.any:
            return []
        return ["--only-binary :all:", *(f"--no-binary {name}" for name in self.allowed)]


@dataclasses.dataclass(frozen=True)
class Request:
    """What a resolver is asked for one target."""

    target: Target
    entries: tuple[PackageEntry, ...]
    """The target's allowlist entries: each becomes ``name[extras]==version``."""
    builds: Builds
    upgrade: bool = False
    previous: Path | None = None
    """The current lock, whose pins the resolver keeps where it can."""
    index: str | None = None
    """The resolver's one index for everything public (``pipgate.lock.front``): the pages
    pipgate read and checked, served on 127.0.0.1. None: the engine's own sources."""
    held_index: str | None = None
    """The same pages held to the cooldown (policy.min_release_age_days): no transitive
    release younger than it. An entry's own pinned release is always there: refusing a
    young entry is the check's, by name and line (or not, for ``cooldown_exempt``). None
    when there is no cooldown."""
    constraints: tuple[str, ...] = ()
    """``name==version`` pins the resolution must keep (a re-lock that adds entries to a
    lock holds its other pins so); they add no requirement of their own."""

    @property
    def requirements(self) -> list[str]:
        return [e.requirement for e in self.entries]


class Locker(abc.ABC):
    """Resolves exact top-level requirements into every pin, for one target."""

    @abc.abstractmethod
    def resolve(self, request: Request) -> list[Pin]:
        """The pins; raises a LockError naming the entries when it cannot. No package
        outside ``request.builds`` is built from an sdist, not even for its metadata."""

    def cannot_lock(self, target: Target) -> str | None:
        """Why this engine cannot lock ``target`` on this machine, or None."""
        return None

    @abc.abstractmethod
    def sources(self, target: Target) -> tuple[Source, ...]:
        """Where this locker takes packages from, in order."""

    def internal_files(self, names: Iterable[NormalizedName]) -> dict[str, list[IndexFile]]:
        """The files of ``internal: true`` packages, from the private registry only."""
        raise LockInputError(
            "internal packages need the private registry, and this locker has none",
            [],
            hint="lock with pipgate's own locker",
        )
