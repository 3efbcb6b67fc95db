"""Which files of a pinned release a target's consumers may install: pure, no I/O.

Every wheel whose tags the target accepts and whose ``requires-python``
admits the target's Python, and the sdist where the entry or the policy
allows sdists. Their sha256 are what the lock records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from packaging import tags
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from pipgate import index
from pipgate.allowlist import Target
from pipgate.index import IndexFile
from pipgate.targettags import is_sdist, supported_tags, wheel_fits


@dataclasses.dataclass(frozen=True)
class Selection:
    release: tuple[IndexFile, ...]
    """Every file of the release the index lists for the target's Python."""
    wheels: tuple[IndexFile, ...]
    sdists: tuple[IndexFile, ...]

    @property
    def chosen(self) -> tuple[IndexFile, ...]:
        return (*self.wheels, *self.sdists)

    @property
    def hashes(self) -> tuple[str, ...]:
        """The sha256 of every selected file, sorted, once each (files the page listed
        without one are hashed first: ``index.with_hashes``)."""
        return tuple(sorted({f.sha256 for f in self.chosen if f.sha256 is not None}))


def python_allows(requires_python: str | None, python: str) -> bool:
    """Whether a file's Requires-Python admits the target's ``MAJOR.MINOR``: some patch
    release of it (``>=3.9,!=3.9.0,!=3.9.1`` admits a 3.9 target, as pip on 3.9.18 would)."""
    if not requires_python:
        return True
    try:
        specifier = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True
    return any(Version(f"{python}.{patch}") in specifier for patch in range(100))


def installable_files(
    files: Iterable[IndexFile],
    project: str,
    version: Version,
    target: Target,
    *,
    sdist_ok: bool,
    supported: frozenset[tags.Tag] | None = None,
) -> Selection:
    """The files of ``project==version`` among ``files`` that ``target`` may install."""
    if supported is None:
        supported = supported_tags(target.python, target.platforms, target.implementation)
    release = tuple(
        f
        for f in index.files_for_version(files, project, version)
        if python_allows(f.requires_python, target.python)
    )
    wheels = tuple(f for f in release if wheel_fits(f.filename, supported))
    sdists = tuple(f for f in release if is_sdist(f.filename)) if sdist_ok else ()
    return Selection(release, wheels, sdists)
