"""``pipgate bump``: a new version written into an entry's YAML, in place.

Only the characters of the version's scalar change, found at the positions the
strict reader gives it (``yamlsafe.Scalar.span``): comments, key order, quoting,
indentation, line endings and a byte-order mark stay as they were, byte for byte.
A quoted version stays quoted the same way; a plain one stays plain unless the new
version would read as a number (``2.0``), then it is double-quoted, as the
validator asks. The allowlist is validated after the edit; a file the edit would
leave invalid is put back as it was.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from pipgate import yamlsafe
from pipgate.errors import InputError
from pipgate.fsutil import write_atomic
from pipgate.names import NormalizedName, normalize
from pipgate.problems import Location

_PLAIN_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_-]*$")


class BumpError(InputError):
    """The version cannot be written where the entry has it (exit 2)."""


@dataclasses.dataclass(frozen=True)
class Edit:
    """One version scalar rewritten."""

    name: NormalizedName
    location: Location
    old: str
    new: str


def version_scalars(document: yamlsafe.Document, name: NormalizedName) -> Iterator[yamlsafe.Scalar]:
    """The ``version`` scalar of each entry of ``name`` in a package file."""
    root = document.root
    if not isinstance(root, yamlsafe.Mapping):
        return
    for key, value in root.items:
        if key.value != "packages" or not isinstance(value, yamlsafe.Sequence):
            continue
        for item in value.items:
            if not isinstance(item, yamlsafe.Mapping):
                continue
            fields = {k.value: v for k, v in item.items}
            spelled = fields.get("name")
            version = fields.get("version")
            if (
                isinstance(spelled, yamlsafe.Scalar)
                and isinstance(spelled.value, str)
                and normalize(spelled.value) == name
                and isinstance(version, yamlsafe.Scalar)
            ):
                yield version


def scalar_text(scalar: yamlsafe.Scalar, version: str) -> str:
    """``version`` written as ``scalar`` was written (its quotes; plain where plain reads
    as the same text)."""
    if not _PLAIN_VERSION.fullmatch(version):
        raise BumpError(f"{version!r} is not a version pipgate writes into an allowlist")
    if scalar.style == '"':
        return f'"{version}"'
    if scalar.style == "'":
        return f"'{version}'"
    if scalar.style in ("|", ">"):
        raise BumpError(
            f"{scalar.location}: the version is a block scalar; write it on one line, "
            "quoted, then run bump again"
        )
    if yamlsafe.resolve_plain(version, scalar.location) == version:
        return version
    return f'"{version}"'


def rewrite(
    data: bytes, path: Path, edits: dict[NormalizedName, tuple[str, str]]
) -> tuple[bytes, list[Edit]]:
    """``data`` (the bytes of the package file ``path``) with each named entry's version
    ``old`` replaced by ``new``; the edits made."""
    document = yamlsafe.parse(path, data)
    if document.problems:
        raise BumpError(f"{document.problems[0].location}: {document.problems[0].message}")
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    text = data.decode("utf-8").removeprefix(bom)
    changes: list[tuple[int, int, str]] = []
    made: list[Edit] = []
    for name, (old, new) in edits.items():
        for scalar in version_scalars(document, name):
            if str(scalar.value) != old and scalar.raw != old:
                continue
            written = scalar_text(scalar, new)
            start, end = scalar.span
            if text[start:end].strip("'\"") != scalar.raw:
                raise BumpError(f"{scalar.location}: the version's text is not where it was read")
            changes.append((start, end, written))
            made.append(Edit(name, scalar.location, old, new))
    for start, end, replacement in sorted(changes, reverse=True):
        text = text[:start] + replacement + text[end:]
    return (bom + text).encode("utf-8"), made


@dataclasses.dataclass(frozen=True)
class BumpReport:
    edits: tuple[Edit, ...]
    skipped: tuple[tuple[NormalizedName, str], ...] = ()
    """Entries asked for that were left as they are, with why."""


def apply(plan: dict[Path, dict[NormalizedName, tuple[str, str]]]) -> list[Edit]:
    """Every file's edits written (each file atomically); the edits made. The caller keeps
    ``originals`` first and, when this or the validation after it fails, ``restore``s them."""
    made: list[Edit] = []
    for path, edits in sorted(plan.items()):
        data = path.read_bytes()
        new, edited = rewrite(data, path, edits)
        missing = set(edits) - {e.name for e in edited}
        if missing:
            raise BumpError(
                f"{path}: no entry of {', '.join(sorted(missing))} with the version read; "
                "the file changed while bump ran"
            )
        write_atomic(path, new)
        made += edited
    return made


def originals(plan: dict[Path, dict[NormalizedName, tuple[str, str]]]) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in plan}


def restore(saved: dict[Path, bytes]) -> None:
    for path, data in saved.items():
        write_atomic(path, data)
