"""A package whose sdist could not be built to read its metadata, named with why.

pip (under pip-compile) and uv both say which package failed to build, and
both quote the build's own output; pipgate turns that into a problem at the
allowlist entry that brings the package in, quoting the last lines that say
why (a missing compiler, a missing header), instead of the tail of a pip
traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pipgate.allowlist import PackageEntry, Target
from pipgate.lock.interface import LockInputError
from pipgate.names import NormalizedName, normalize, parse_version
from pipgate.problems import Problem
from pipgate.runner import redact

QUOTED_LINES = 12
_PIP_FAILED = re.compile(r"Failed to build '(?P<name>[A-Za-z0-9._-]+)'")
_PIP_OUTPUT = re.compile(
    r"\[\d+ lines? of output\]\n(?P<body>.*?)\n\s*\[end of output\]", re.DOTALL
)
_PIP_FROM = re.compile(
    r"Collecting (?P<name>[A-Za-z0-9._-]+)\S* \(from (?P<parent>[A-Za-z0-9._-]+)"
)
_UV_FAILED = re.compile(r"Failed to build `(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^`]+)`")
_UV_STREAM = re.compile(
    r"\[(?:stdout|stderr)\]\n(?P<body>.*?)(?=\n\s*\[(?:stdout|stderr)\]|\n\s*hint:|\Z)", re.DOTALL
)
_SDIST = re.compile(r"(?P<stem>[A-Za-z0-9._-]+)-(?P<version>[0-9][^\s/]*?)\.(?:tar\.gz|zip)\b")


def build_failure(
    output: str, entries: Sequence[PackageEntry], target: Target
) -> LockInputError | None:
    """The problem when ``output`` (pip's or uv's) says an sdist failed to build; else None."""
    text = redact(output)
    by_name = {e.name: e for e in entries}
    uv = _UV_FAILED.search(text)
    pip = _PIP_FAILED.search(text)
    if uv is not None:
        name, version = normalize(uv["name"]), uv["version"]
        quoted = "\n".join(m["body"] for m in _UV_STREAM.finditer(text[uv.end() :]))
    elif pip is not None:
        name = normalize(pip["name"])
        version = _version_of(text, name, by_name)
        bodies = [m["body"] for m in _PIP_OUTPUT.finditer(text)]
        quoted = bodies[-1] if bodies else ""
    else:
        return None
    lines = [line.strip() for line in quoted.splitlines() if line.strip()]
    why = "\n".join(lines[-QUOTED_LINES:]) or "(the build printed nothing)"
    parent = None
    for match in _PIP_FROM.finditer(text):
        if normalize(match["name"]) == name:
            parent = normalize(match["parent"])
    entry = by_name.get(name) or (by_name.get(parent) if parent else None)
    if entry is None:
        entry = next((e for e in entries if re.search(rf"\b{re.escape(e.spelled)}\b", text)), None)
    entry = entry or entries[0]
    needed = "" if name in by_name else f", needed by {entry.spelled}"
    shown = f"{name}=={version}" if version else name
    return LockInputError(
        f"the lock of {target.name} needs {shown} built from its sdist, and the build failed",
        [
            Problem(
                entry.location,
                f"{shown} cannot be built from its sdist to read its metadata{needed} "
                f"(Python {target.python}); the build said:\n{why}",
                "pick a version that publishes a wheel for the target, or make the build "
                "work where the lock runs (what it says is missing)",
            )
        ],
        hint="the problem above quotes the build's own output",
    )


def _version_of(
    text: str, name: NormalizedName, by_name: Mapping[NormalizedName, PackageEntry]
) -> str:
    if name in by_name:
        return str(by_name[name].version)
    for match in _SDIST.finditer(text):
        if normalize(match["stem"]) == name and parse_version(match["version"]) is not None:
            return match["version"]
    return ""
