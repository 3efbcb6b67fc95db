"""Check a YAML tree against a ``MapSpec``: keys, required keys and value types.

The checks here are structural; meaning (is this a real version, does the
target exist) is checked by the loader over the values this returns. Every
problem is collected; nothing stops at the first one.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib

from pipgate.allowlist.spec import Field, Kind, MapSpec
from pipgate.problems import Location, Problems
from pipgate.yamlsafe import Mapping, Node, Scalar, Sequence


@dataclasses.dataclass(frozen=True)
class Value:
    """A checked value and where it was written."""

    value: object
    location: Location


@dataclasses.dataclass(frozen=True)
class Record:
    """The checked keys of one mapping. ``complete`` is False when any key was wrong."""

    location: Location
    values: dict[str, Value]
    complete: bool

    def text(self, key: str) -> str | None:
        found = self.values.get(key)
        return found.value if found is not None and isinstance(found.value, str) else None

    def where(self, key: str) -> Location:
        found = self.values.get(key)
        return found.location if found is not None else self.location


def _describe(node: Node) -> str:
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, Sequence):
        return "a list"
    value = node.value
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, datetime.date):
        return "a date"
    return "text"


def _quote_hint(key: str, node: Scalar) -> str:
    return f'quote it: {key}: "{node.raw}"'


def _check_text(key: str, node: Node, problems: Problems) -> str | None:
    if isinstance(node, Scalar) and isinstance(node.value, str):
        if not node.value.strip():
            problems.add(node.location, f"'{key}' is empty", "give a value")
            return None
        return node.value
    if isinstance(node, Scalar) and node.value is not None and not node.quoted:
        # YAML turned plain text into something else: 1.10 -> 1.1, no -> False, 2024-01-01 -> date.
        if isinstance(node.value, float) and str(node.value) != node.raw:
            problems.add(
                node.location,
                f"'{key}' was read as the number {node.value!r}, not the text '{node.raw}'",
                _quote_hint(key, node),
            )
        else:
            problems.add(
                node.location,
                f"'{key}' must be text, but YAML read '{node.raw}' as {_describe(node)}",
                _quote_hint(key, node),
            )
        return None
    if isinstance(node, Scalar) and node.value is None:
        problems.add(node.location, f"'{key}' is empty", "give a value")
        return None
    problems.add(
        node.location, f"'{key}' must be text, not {_describe(node)}", "give a single quoted value"
    )
    return None


def _check_scalar(field: Field, node: Node, problems: Problems) -> object | None:
    key = field.key
    if field.kind is Kind.TEXT:
        return _check_text(key, node, problems)
    if field.kind is Kind.OPTIONAL_TEXT:
        if isinstance(node, Scalar) and node.value is None and not node.quoted:
            return None
        return _check_text(key, node, problems)
    if field.kind is Kind.BOOL:
        if isinstance(node, Scalar) and isinstance(node.value, bool) and not node.quoted:
            return node.value
        problems.add(
            node.location,
            f"'{key}' must be true or false, not {_describe(node)}",
            f"write {key}: true or {key}: false, without quotes",
        )
        return None
    if field.kind is Kind.INT:
        if (
            isinstance(node, Scalar)
            and isinstance(node.value, int)
            and not isinstance(node.value, bool)
            and not node.quoted
        ):
            return node.value
        problems.add(
            node.location,
            f"'{key}' must be a whole number, not {_describe(node)}",
            f"write {key}: 7, without quotes",
        )
        return None
    if field.kind is Kind.DATE:
        if isinstance(node, Scalar):
            value = node.value
            if isinstance(value, datetime.datetime):
                return value.date()
            if isinstance(value, datetime.date):
                return value
            if isinstance(value, str):
                try:
                    return datetime.date.fromisoformat(value.strip())
                except ValueError:
                    pass
        problems.add(
            node.location,
            f"'{key}' must be a date, not {_describe(node)}",
            f"write {key}: YYYY-MM-DD, for example {key}: 2027-01-31",
        )
        return None
    raise AssertionError(field.kind)  # pragma: no cover


def _check_pattern(field: Field, value: str, location: Location, problems: Problems) -> bool:
    if field.enum and value not in field.enum:
        close = difflib.get_close_matches(value, field.enum, n=1)
        hint = f"did you mean '{close[0]}'?" if close else ""
        problems.add(
            location,
            f"'{field.key}' must be one of {', '.join(field.enum)}, not '{value}'",
            hint or f"use one of {', '.join(field.enum)}",
        )
        return False
    return True


def check_list(field: Field, node: Node, problems: Problems) -> list[tuple[Node, Location]] | None:
    """Check that ``node`` is a list (with ``min_items``); return its items."""
    if not isinstance(node, Sequence):
        example = "[a, b]" if field.kind is Kind.TEXT_LIST else "a list of '- key: value' items"
        problems.add(
            node.location,
            f"'{field.key}' must be a list, not {_describe(node)}",
            f"write it as {example}",
        )
        return None
    if field.min_items is not None and len(node.items) < field.min_items:
        what = "omit the key instead" if not field.required else "add at least one item"
        problems.add(node.location, f"'{field.key}' is an empty list", what)
        return None
    return [(item, item.location) for item in node.items]


def read_map(spec: MapSpec, node: Node, problems: Problems, *, where: str = "") -> Record | None:
    """Check one mapping against ``spec``. Returns None when ``node`` is not a mapping."""
    label = where or spec.title
    if not isinstance(node, Mapping):
        problems.add(
            node.location,
            f"{label} must be a mapping of keys to values, not {_describe(node)}",
            f"expected keys: {', '.join(spec.keys)}",
        )
        return None
    values: dict[str, Value] = {}
    complete = True
    for key_node, value_node in node.items:
        key = key_node.value
        assert isinstance(key, str)
        field = spec.field(key)
        if field is None:
            complete = False
            close = difflib.get_close_matches(key, spec.keys, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(spec.keys)}"
            problems.add(key_node.location, f"unknown key '{key}' in {label}", hint)
            continue
        checked = _check_value(field, value_node, problems)
        if checked is _INVALID:
            complete = False
            continue
        values[key] = Value(checked, value_node.location)
    present = {k.value for k, _ in node.items}
    for field in spec.fields:
        if field.required and field.key not in present:
            complete = False
            problems.add(
                node.location,
                f"{label} is missing the required key '{field.key}'",
                f"add {field.key}: ({field.description})",
            )
    return Record(node.location, values, complete)


_INVALID = object()


def _check_value(field: Field, node: Node, problems: Problems) -> object:
    if field.kind is Kind.TEXT_OR_MAP:
        if isinstance(node, Mapping):
            assert field.children is not None
            record = read_map(field.children, node, problems, where=f"'{field.key}'")
            return record if record is not None and record.complete else _INVALID
        text = _check_text(field.key, node, problems)
        return _INVALID if text is None else text
    if field.kind is Kind.MAP:
        assert field.children is not None
        record = read_map(field.children, node, problems, where=f"'{field.key}'")
        return record if record is not None and record.complete else _INVALID
    if field.kind is Kind.MAP_LIST:
        assert field.children is not None
        items = check_list(field, node, problems)
        if items is None:
            return _INVALID
        records: list[Record | None] = [
            read_map(
                field.children, item, problems, where=f"{field.children.title} in '{field.key}'"
            )
            for item, _ in items
        ]
        return records
    if field.kind is Kind.TEXT_LIST:
        items = check_list(field, node, problems)
        if items is None:
            return _INVALID
        texts: list[Value] = []
        ok = True
        for item, location in items:
            text = _check_text(field.key, item, problems)
            if text is None:
                ok = False
            else:
                texts.append(Value(text, location))
        return texts if ok else _INVALID
    value = _check_scalar(field, node, problems)
    if value is None and not (
        field.kind is Kind.OPTIONAL_TEXT and isinstance(node, Scalar) and node.value is None
    ):
        return _INVALID
    if isinstance(value, str) and not _check_pattern(field, value, node.location, problems):
        return _INVALID
    return value
