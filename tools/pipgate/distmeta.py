"""The core metadata a wheel or sdist carries about itself (METADATA, PKG-INFO).

Read from the archive on disk; nothing is imported or executed.
"""

from __future__ import annotations

import dataclasses
import email.parser
import tarfile
import zipfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement


def metadata_text(path: Path) -> str | None:
    """A wheel's ``*.dist-info/METADATA`` or an sdist's ``PKG-INFO``; None when it has none."""
    try:
        if path.name.endswith(".whl"):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.count("/") == 1 and name.endswith(".dist-info/METADATA"):
                        return archive.read(name).decode("utf-8", "replace")
        elif path.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path) as archive:
                for member in archive.getmembers():
                    if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                        handle = archive.extractfile(member)
                        return None if handle is None else handle.read().decode("utf-8", "replace")
    except (zipfile.BadZipFile, tarfile.TarError, OSError):
        return None
    return None


@dataclasses.dataclass(frozen=True)
class CoreMetadata:
    name: str
    version: str
    requires_python: str | None
    requires_dist: tuple[Requirement, ...]
    license: str | None
    license_expression: str | None
    classifiers: tuple[str, ...]


class MetadataError(ValueError):
    """A file's metadata is missing or cannot be read."""


def read(path: Path) -> CoreMetadata:
    """The metadata of the wheel or sdist at ``path``; raises MetadataError."""
    text = metadata_text(path)
    if text is None:
        raise MetadataError(f"{path.name} carries no METADATA or PKG-INFO")
    return parse(text, path.name)


def parse(text: str, name: str) -> CoreMetadata:
    """Core metadata from its text (a METADATA file, or an index's PEP 658 copy of it)."""
    path = Path(name)
    headers = email.parser.Parser().parsestr(text, headersonly=True)
    requirements = []
    for line in headers.get_all("Requires-Dist") or ():
        try:
            requirements.append(Requirement(str(line)))
        except InvalidRequirement as error:
            raise MetadataError(f"{path.name}: invalid Requires-Dist '{line}': {error}") from None
    return CoreMetadata(
        name=str(headers.get("Name") or ""),
        version=str(headers.get("Version") or ""),
        requires_python=headers.get("Requires-Python"),
        requires_dist=tuple(requirements),
        license=headers.get("License"),
        license_expression=headers.get("License-Expression"),
        classifiers=tuple(str(c) for c in headers.get_all("Classifier") or ()),
    )
