"""A strict YAML reader that keeps every value's line.

The allowlist is reviewed by people and read by a machine, so the two must see
the same thing. This reader works on PyYAML's event stream and builds its own
small tree, refusing what makes YAML surprising:

- bytes that are not UTF-8, tab characters, files larger than ``MAX_BYTES``;
- several documents in one file;
- anchors and aliases: they are refused as events, before anything is
  expanded, so an alias bomb costs nothing;
- explicit tags (``!!python/object``, ``!!str``, ``!custom``);
- duplicate keys (PyYAML keeps the last one silently) and keys that are not text;
- nesting deeper than ``MAX_DEPTH``.

Plain scalars are resolved as YAML 1.1 does (so ``1.10`` is the float 1.1 and
``no`` is False); the node keeps the raw text and whether it was quoted, so the
validator can say "quote it" instead of reporting a mysterious number.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Protocol

import yaml
import yaml.constructor
import yaml.events
import yaml.nodes
import yaml.resolver

from pipgate.problems import Location, Problem

MAX_BYTES = 1024 * 1024
"""The largest allowlist file read: far above any real one, far below harm."""

MAX_DEPTH = 32

ScalarValue = str | int | float | bool | None | datetime.date | datetime.datetime


@dataclasses.dataclass(frozen=True)
class Scalar:
    value: ScalarValue
    raw: str
    quoted: bool
    location: Location
    span: tuple[int, int] = dataclasses.field(default=(0, 0), compare=False)
    """Where the scalar's text (quotes included) starts and ends in the decoded file, in
    characters: what ``pipgate bump`` rewrites, and nothing else."""
    style: str = dataclasses.field(default="", compare=False)
    """PyYAML's style: '' plain, '"' or "'" quoted, '|' or '>' a block."""

    @property
    def is_text(self) -> bool:
        return isinstance(self.value, str)


@dataclasses.dataclass(frozen=True)
class Mapping:
    items: tuple[tuple[Scalar, Node], ...]
    location: Location


@dataclasses.dataclass(frozen=True)
class Sequence:
    items: tuple[Node, ...]
    location: Location


Node = Scalar | Mapping | Sequence


@dataclasses.dataclass(frozen=True)
class Document:
    """The result of reading one file: a tree (``None`` when unreadable) and its problems."""

    path: Path
    root: Node | None
    problems: tuple[Problem, ...]


_RESOLVER = yaml.resolver.Resolver()
_CORE = "tag:yaml.org,2002:"


def resolve_plain(text: str, location: Location) -> ScalarValue:
    # PyYAML's resolver is untyped; it maps plain text to the YAML 1.1 tag it implies.
    tag = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
        yaml.nodes.ScalarNode, text, (True, False)
    )
    if tag == "tag:yaml.org,2002:str":
        return text
    node = yaml.nodes.ScalarNode(tag, text)
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError):
        # Looks like a timestamp or number but is not one (2025-13-45): keep the text.
        return text
    if isinstance(value, (str, int, float, bool, datetime.date)) or value is None:
        return value
    return text  # pragma: no cover - the safe resolver yields nothing else for plain scalars


class _Mark(Protocol):
    line: int
    column: int


class _Builder:
    """Builds the tree from events with an explicit stack (no recursion)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []
        # Each frame: [kind, location, items, pending_key]
        self.stack: list[_Frame] = []
        self.root: Node | None = None

    def loc(self, mark: _Mark | None) -> Location:
        if mark is None:
            return Location(self.path)
        return Location(self.path, mark.line + 1, mark.column + 1)

    def problem(self, location: Location, message: str, hint: str = "") -> None:
        self.problems.append(Problem(location, message, hint))

    def check_event(self, event: yaml.events.NodeEvent) -> None:
        location = self.loc(event.start_mark)
        if event.anchor is not None:
            self.problem(
                location,
                f"anchor '&{event.anchor}' is not allowed",
                "write the value out in full; anchors and aliases hide what is approved",
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
            self.problem(
                location,
                f"tag '{shown}' is not allowed",
                "remove the tag; quote the value if it must be text",
            )

    def push(self, frame: _Frame) -> None:
        if len(self.stack) >= MAX_DEPTH:
            self.problem(
                frame.location,
                f"nesting deeper than {MAX_DEPTH} levels",
                "the allowlist needs at most four levels; flatten the file",
            )
            raise _AbortError
        self.stack.append(frame)

    def add(self, node: Node) -> None:
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        if isinstance(frame, _SeqFrame):
            frame.items.append(node)
            return
        if frame.key is None:
            if not isinstance(node, Scalar) or not node.is_text:
                self.problem(
                    node.location,
                    "a key must be plain text",
                    "use a name such as 'packages' or 'version' as the key",
                )
                frame.key = _IGNORED
            else:
                assert isinstance(node.value, str)
                key: Scalar | object = node
                first = frame.seen.get(node.value)
                if first is not None:
                    self.problem(
                        node.location,
                        f"duplicate key '{node.value}' (first at line {first.line})",
                        "YAML would silently keep only the last one; remove one of them",
                    )
                    key = _IGNORED
                else:
                    frame.seen[node.value] = node.location
                frame.key = key
            return
        if isinstance(frame.key, Scalar):
            frame.items.append((frame.key, node))
        frame.key = None

    def run(self, text: str) -> None:
        documents = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.events.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    self.problem(
                        self.loc(event.start_mark),
                        "a second YAML document ('---') in one file",
                        "keep one document per file; split it into two files",
                    )
                    raise _AbortError
            elif isinstance(event, yaml.events.AliasEvent):
                self.problem(
                    self.loc(event.start_mark),
                    f"alias '*{event.anchor}' is not allowed",
                    "write the value out in full; anchors and aliases hide what is approved",
                )
                raise _AbortError
            elif isinstance(event, yaml.events.ScalarEvent):
                self.check_event(event)
                location = self.loc(event.start_mark)
                quoted = event.style is not None and event.style != ""
                value: ScalarValue = (
                    event.value
                    if quoted or event.tag is not None
                    else resolve_plain(event.value, location)
                )
                start, end = event.start_mark, event.end_mark
                span = (start.index, end.index) if start and end else (0, 0)
                self.add(Scalar(value, event.value, quoted, location, span, event.style or ""))
            elif isinstance(event, yaml.events.MappingStartEvent):
                self.check_event(event)
                self.push(_MapFrame(self.loc(event.start_mark)))
            elif isinstance(event, yaml.events.SequenceStartEvent):
                self.check_event(event)
                self.push(_SeqFrame(self.loc(event.start_mark)))
            elif isinstance(event, yaml.events.MappingEndEvent):
                frame = self.stack.pop()
                assert isinstance(frame, _MapFrame)  # the parser balances start and end
                self.add(Mapping(tuple(frame.items), frame.location))
            elif isinstance(event, yaml.events.SequenceEndEvent):
                frame_s = self.stack.pop()
                assert isinstance(frame_s, _SeqFrame)
                self.add(Sequence(tuple(frame_s.items), frame_s.location))


class _AbortError(Exception):
    """Stop reading a file after a problem that makes the rest meaningless."""


_IGNORED = object()


class _MapFrame:
    def __init__(self, location: Location) -> None:
        self.location = location
        self.items: list[tuple[Scalar, Node]] = []
        self.key: Scalar | object | None = None
        self.seen: dict[str, Location] = {}


class _SeqFrame:
    def __init__(self, location: Location) -> None:
        self.location = location
        self.items: list[Node] = []


_Frame = _MapFrame | _SeqFrame


def _decode(path: Path, data: bytes) -> tuple[str | None, list[Problem]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(
                Location(path, line, column),
                f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded",
                "save the file as UTF-8",
            )
        ]
    text = text.removeprefix("\ufeff")
    problems = [
        Problem(
            Location(path, number, line.index("\t") + 1),
            "tab character",
            "YAML indentation and values must use spaces; replace the tab with spaces",
        )
        for number, line in enumerate(text.splitlines(), start=1)
        if "\t" in line
    ]
    return text, problems


def read(path: Path) -> Document:
    """Read one YAML file strictly. Never raises for bad content; I/O errors are problems too."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return Document(
            path, None, (Problem(Location(path, 1, 1), f"cannot read: {exc.strerror}"),)
        )
    return parse(path, data)


def parse(path: Path, data: bytes) -> Document:
    """Parse ``data`` (the contents of ``path``) strictly."""
    if len(data) > MAX_BYTES:
        return Document(
            path,
            None,
            (
                Problem(
                    Location(path, 1, 1),
                    f"larger than {MAX_BYTES // 1024} KiB",
                    "split the packages into several files",
                ),
            ),
        )
    text, problems = _decode(path, data)
    if text is None or problems:
        return Document(path, None, tuple(problems))
    builder = _Builder(path)
    try:
        builder.run(text)
    except _AbortError:
        return Document(path, None, tuple(builder.problems))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{exc.context}, {what}"
        builder.problems.append(
            Problem(builder.loc(mark), f"not valid YAML: {what}", "fix the syntax")
        )
        return Document(path, None, tuple(builder.problems))
    except yaml.YAMLError as exc:
        # ReaderError (a control character) carries a position, not a mark.
        position = getattr(exc, "position", None)
        location = Location(path)
        if isinstance(position, int):
            line = text.count("\n", 0, position) + 1
            location = Location(path, line, position - (text.rfind("\n", 0, position) + 1) + 1)
        builder.problems.append(
            Problem(
                location,
                "not valid YAML: the file holds a control character",
                "remove it; only printable characters are allowed",
            )
        )
        return Document(path, None, tuple(builder.problems))
    if builder.root is None:
        builder.problems.append(
            Problem(Location(path, 1, 1), "the file is empty", "add the content or delete the file")
        )
    return Document(path, builder.root, tuple(builder.problems))
