"""Problems found in input files, collected so that one run reports them all."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path


@dataclasses.dataclass(frozen=True, order=True)
class Location:
    """A place in an input file; ``line`` and ``column`` count from 1, 0 when unknown."""

    path: Path
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return display_path(self.path)
        return f"{display_path(self.path)}:{self.line}"


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where, what, and what to do."""

    location: Location
    message: str
    hint: str = ""

    def render(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "file": display_path(self.location.path),
            "line": self.location.line,
            "column": self.location.column,
            "message": self.message,
            "hint": self.hint,
        }


class Problems:
    """An ordered collection of problems, kept in file and line order."""

    def __init__(self) -> None:
        self._items: list[Problem] = []

    def add(self, location: Location, message: str, hint: str = "") -> None:
        self._items.append(Problem(location, message, hint))

    def extend(self, problems: Iterable[Problem]) -> None:
        self._items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.sorted())

    def sorted(self) -> list[Problem]:
        return sorted(
            self._items,
            key=lambda p: (str(p.location.path), p.location.line, p.location.column),
        )


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
