"""JSON Schemas for the allowlist files, generated from ``spec`` for editors.

The files under ``pipgate/schemas/`` are this module's output, committed so
that editors (via the ``yaml-language-server`` comment in each file) validate
while people type. ``pipgate schema --check`` fails when they are stale.
"""

from __future__ import annotations

import json

from pipgate.allowlist.spec import FILES, Field, Kind, MapSpec

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _field(field: Field) -> dict[str, object]:
    out: dict[str, object] = {"description": field.description}
    if field.kind is Kind.TEXT:
        out["type"] = "string"
        out["minLength"] = 1
    elif field.kind is Kind.OPTIONAL_TEXT:
        out["type"] = ["string", "null"]
    elif field.kind is Kind.BOOL:
        out["type"] = "boolean"
    elif field.kind is Kind.INT:
        out["type"] = "integer"
    elif field.kind is Kind.DATE:
        out["type"] = "string"
        out["format"] = "date"
    elif field.kind is Kind.TEXT_LIST:
        out["type"] = "array"
        out["items"] = {"type": "string", "minLength": 1}
        out["uniqueItems"] = True
    elif field.kind is Kind.MAP:
        assert field.children is not None
        out.update(_object(field.children))
    elif field.kind is Kind.TEXT_OR_MAP:
        assert field.children is not None
        out["oneOf"] = [{"type": "string", "minLength": 1}, _object(field.children)]
    elif field.kind is Kind.MAP_LIST:
        assert field.children is not None
        out["type"] = "array"
        out["items"] = _object(field.children)
    if field.enum:
        out["enum"] = list(field.enum)
    if field.pattern is not None:
        out["pattern"] = field.pattern
    if field.minimum is not None:
        out["minimum"] = field.minimum
    if field.min_items is not None:
        out["minItems"] = field.min_items
    if field.default is not None:
        out["default"] = field.default
    return out


def _object(spec: MapSpec) -> dict[str, object]:
    return {
        "type": "object",
        "title": spec.title,
        "description": spec.description,
        "additionalProperties": False,
        "required": [f.key for f in spec.fields if f.required],
        "properties": {f.key: _field(f) for f in spec.fields},
    }


def schema(name: str) -> dict[str, object]:
    """The JSON Schema of one allowlist file kind (``config``, ``packages``, ``exceptions``)."""
    body = _object(FILES[name])
    return {"$schema": SCHEMA_DRAFT, "$id": f"pipgate/{name}.schema.json", **body}


def render(name: str) -> str:
    return json.dumps(schema(name), indent=2, ensure_ascii=False) + "\n"
