"""The frozen ``Options`` made from the parsed command line, in one place."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pipgate.options import Format, Options


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def _names(value: object) -> tuple[str, ...]:
    """NAME arguments: a list (nargs='*'), one name (nargs='?') or none."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(n) for n in value) if isinstance(value, list) else ()


def from_args(args: argparse.Namespace) -> Options:
    """Options from ``args``; a command's parser defines only the options it takes."""

    values: dict[str, Any] = vars(args)

    def given(name: str, default: Any = None) -> Any:  # noqa: ANN401 - argparse's values
        return values.get(name, default)

    return Options(
        allowlist=Path(str(given("allowlist", "allowlist"))),
        format=Format(given("format", "text")),
        verbose=bool(given("verbose", False)),
        targets=tuple(given("target") or ()),
        output=_path(given("output")),
        cache=_path(given("cache")),
        upgrade=bool(given("upgrade", False)),
        database=_path(given("database")),
        max_data_age_days=given("max_data_age_days"),
        jobs=int(given("jobs", 4)),
        force=bool(given("force", False)),
        verify=bool(given("verify", False)),
        dry_run=bool(given("dry_run", False)),
        apply=bool(given("apply", False)),
        keep_commits=int(given("keep_commits", 10)),
        retry_backoff=float(os.environ.get("PIPGATE_RETRY_BACKOFF") or 1.0),
        base=str(given("base")) if given("base") else None,
        report=_path(given("report")),
        bootstrap=bool(given("bootstrap", False)),
        bundle_out=_path(given("bundle_out")),
        json_key=_path(given("json_key")),
        conf_output=_path(given("conf_output")),
        names=_names(given("names")),
        version=str(given("version")) if given("version") else None,
        every=bool(given("every", False)),
        only_security=bool(given("only_security", False)),
    )
