"""The published JSON Schemas: current, and in agreement with the validator."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipgate.allowlist import jsonschema as schemas
from pipgate.allowlist.spec import FILES
from tests.conftest import EXAMPLE_ALLOWLIST, REPO

SCHEMA_DIR = REPO / "tools" / "pipgate" / "schemas"


@pytest.mark.parametrize("name", sorted(FILES))
def test_committed_schemas_are_current(name: str) -> None:
    committed = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == schemas.render(name), "run: pipgate schema --output tools/pipgate/schemas"


def _as_json(value: object) -> object:
    # YAML dates are strings to a JSON Schema validator in an editor.
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def _kind(path: Path) -> str:
    return path.stem if path.stem in ("config", "exceptions") else "packages"


@pytest.mark.parametrize("path", sorted(EXAMPLE_ALLOWLIST.glob("*.yaml")), ids=lambda p: p.name)
def test_example_files_reference_and_satisfy_their_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    kind = _kind(path)
    first = text.splitlines()[0]
    assert first == f"# yaml-language-server: $schema=../tools/pipgate/schemas/{kind}.schema.json"
    referenced = (path.parent / first.split("=", 1)[1]).resolve()
    assert referenced.is_file()
    schema = json.loads(referenced.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(
        _as_json(yaml.safe_load(text)),
        schema,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        ("packages", {"packages": [{"name": "a", "version": "1", "reason": "r"}]}),
        (
            "packages",
            {
                "packages": [
                    {
                        "name": "a",
                        "version": "1",
                        "reason": "r",
                        "requested_by": "x",
                        "extra": ["s"],
                    }
                ]
            },
        ),
        (
            "packages",
            {"packages": [{"name": "-i x", "version": "1", "reason": "r", "requested_by": "x"}]},
        ),
        (
            "packages",
            {"packages": [{"name": "a", "version": 1.1, "reason": "r", "requested_by": "x"}]},
        ),
        ("packages", {"packages": []}),
        ("config", {"registry": "file://.registry", "targets": []}),
        (
            "config",
            {
                "registry": "file://.registry",
                "targets": [{"name": "py", "python": "3.11.2", "platforms": ["x"]}],
            },
        ),
        (
            "config",
            {
                "registry": "file://.registry",
                "policy": {"sdists": "maybe"},
                "targets": [{"name": "py", "python": "3.11", "platforms": ["x"]}],
            },
        ),
        (
            "exceptions",
            {
                "vulnerabilities": [
                    {"id": "GHSA-1", "package": "a", "approved_by": "s", "expires": "2027-01-01"}
                ]
            },
        ),
    ],
)
def test_schema_rejects_what_the_validator_rejects(kind: str, document: object) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schemas.schema(kind))
