"""The registry port: where approved files go, and what every backend must answer.

Every backend lists what it holds as file name and sha256 from its own index,
so that only missing files are uploaded and the result is verified by hash.
A new backend is one module beside this one.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipgate.allowlist import RegistrySpec
from pipgate.errors import ExternalError, InputError
from pipgate.names import NormalizedName
from pipgate.urls import redact_url


class RegistryError(ExternalError):
    """The registry failed or answered something unexpected (exit 3)."""


class RegistryConflictError(RegistryError):
    """The registry holds a file of the same name with a different hash."""


class RegistryKindError(InputError):
    """The configured registry is a kind that cannot hold only approved files (exit 2)."""


class UploadRefusedError(RegistryError):
    """An upload was refused for a reason retrying cannot fix."""


class RemovalUnsupportedError(InputError):
    """The registry offers pipgate no way to delete files (exit 2)."""


class Removal(enum.Enum):
    """What one deletion removes on a registry."""

    NONE = "none"
    """The registry cannot delete through an API pipgate speaks."""
    FILE = "file"
    """One file at a time (the embedded registry, devpi)."""
    RELEASE = "release"
    """A release, every file of it at once (pypiserver, Artifact Registry)."""


@dataclasses.dataclass(frozen=True)
class Held:
    filename: str
    sha256: str
    url: str = ""
    """Where the registry serves the file (without credentials)."""
    owner: str = ""
    """The registry's own name of the release the file belongs to, where its API has one
    (Artifact Registry: ``projects/P/locations/L/repositories/R/packages/N/versions/V``)."""
    upload_time: str | None = None
    """When the registry received it, where its page or API says (PEP 700, createTime)."""


class Registry(abc.ABC):
    """Where approved files go."""

    spec: RegistrySpec

    @property
    @abc.abstractmethod
    def simple_url(self) -> str:
        """The PEP 503 index root consumers use (``…/simple/``)."""

    @abc.abstractmethod
    def list(self, projects: Iterable[NormalizedName]) -> dict[str, Held]:
        """The files the registry holds for ``projects``, by file name."""

    @abc.abstractmethod
    def projects(self) -> tuple[NormalizedName, ...]:
        """Every project the registry holds files of (its simple index's root page)."""

    @abc.abstractmethod
    def upload(self, path: Path, sha256: str) -> None:
        """Upload one file; raises RegistryError when the outcome is unknown or refused."""

    @abc.abstractmethod
    def fetch(self, held: Held, target: Path) -> str:
        """Stream one file the registry holds to ``target``; its sha256."""

    def upload_times(self, projects: Iterable[NormalizedName]) -> dict[str, str]:
        """When the registry received each file of ``projects``, by file name, where its
        pages do not say (``Held.upload_time`` from ``list`` does where they do): a backend
        whose API has the times overrides it; the others have nothing more."""
        del projects
        return {}

    def inventory(self, also: Iterable[NormalizedName] = ()) -> dict[str, Held]:
        """Every file the registry holds, by file name: the projects its root page names
        and ``also`` (the locked ones), listed; a backend with a listing API overrides it."""
        return self.list(sorted({*self.projects(), *also}))

    @property
    def removal(self) -> Removal:
        """What :meth:`remove` removes at once; ``Removal.NONE`` when it cannot."""
        return Removal.NONE

    def remove(self, files: Sequence[Held]) -> None:
        """Delete ``files``: with ``Removal.RELEASE``, they are every file the registry holds
        of one release. Raises RegistryError when the registry refuses."""
        raise RemovalUnsupportedError(
            f"pipgate cannot delete files from {self.describe()}", hint=self.removal_hint
        )

    def check_usable(self) -> None:  # noqa: B027 - a hook: most registries are always usable
        """Raise when this registry cannot be the private registry (the wrong kind of
        repository); called before publishing to it or rendering for it."""

    def size(self, held: Held) -> int | None:
        """The size of a file the registry holds, where it can tell cheaply; else None."""
        return None

    @property
    def removal_hint(self) -> str:
        """How a person removes a wrong file from this registry."""
        return "remove it with the registry's own tools"

    def pip_index_url(self) -> str:
        """The simple index as pip needs it, credentials included: for a child process's
        environment only, never for an argument, a file or a message."""
        return self.simple_url

    def describe(self) -> str:
        return redact_url(self.simple_url)
