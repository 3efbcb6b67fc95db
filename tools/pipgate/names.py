"""Package names, versions, Python versions and platform tags: checked and typed in one place.

Everything that later reaches pip as a requirement line is built from the
values made here, so a line is always exactly ``name[extra,...]==version``.
The checks are allow-lists of characters, not filters of bad ones: an option
(``--index-url``), a URL, a path, a marker or a comment cannot be spelled with
the characters a name or a version may contain. The helpers that explain *why*
a value was refused exist only to tell the person what to do.
"""

from __future__ import annotations

import functools
import re
from typing import NewType

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

__all__ = [
    "ExactVersion",
    "NormalizedName",
    "PythonVersion",
    "Version",
    "check_exact_version",
    "check_name",
    "check_platform_tag",
    "check_python_version",
    "file_release",
    "normalize",
    "parse_version",
    "wheel_tags",
]

# PEP 508 names: ASCII letters and digits, with . _ - inside.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
# A PEP 440 version as a person writes one: starts with a digit, then only the
# characters a version can hold. packaging then decides if it is really one.
_VERSION_CHARS = re.compile(r"^[0-9][0-9A-Za-z.!+_-]*$")
_PYTHON = re.compile(r"^(?P<major>[0-9])\.(?P<minor>[0-9]{1,2})$")
_PLATFORM = re.compile(
    r"^(?:"
    r"manylinux_[0-9]+_[0-9]+_(?:x86_64|aarch64|i686|ppc64le|s390x|armv7l|ppc64|riscv64)"
    r"|manylinux(?:1|2010|2014)_(?:x86_64|i686|aarch64|ppc64le|s390x|armv7l|ppc64)"
    r"|musllinux_[0-9]+_[0-9]+_(?:x86_64|aarch64|i686|ppc64le|s390x|armv7l|riscv64)"
    r"|macosx_[0-9]+_[0-9]+_(?:x86_64|arm64|universal2|intel|universal)"
    r"|win_amd64|win_arm64|win32"
    r")$"
)

ExactVersion = NewType("ExactVersion", str)
"""A single exact PEP 440 version as written in the allowlist (``"2.32.3"``)."""

PythonVersion = NewType("PythonVersion", str)
"""A target's Python as ``MAJOR.MINOR`` (``"3.11"``)."""

MIN_PYTHON = (3, 7)


def normalize(name: str) -> NormalizedName:
    """The PEP 503 normalised form of an already checked name."""
    return canonicalize_name(name)


def parse_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version, or None when it is not one."""
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


def exact(version: Version) -> str:
    """A version as one exact string: PEP 440 normalised, but never equal to another
    spelling that PEP 440 compares equal (``1.0`` is not ``1.0.0``; ``1.0`` is not
    ``1.0+local``): what a pin means in pipgate."""
    return str(version)


@functools.lru_cache(maxsize=65536)
def file_release(filename: str) -> tuple[NormalizedName, Version] | None:
    """The project and version a wheel or sdist file name carries, or None. (Memoised: a
    lock of 400 pins reads a hundred thousand file names, each asked more than once.)"""
    try:
        if filename.endswith(".whl"):
            name, parsed, _, _ = parse_wheel_filename(filename)
        else:
            name, parsed = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return name, parsed


def wheel_tags(filename: str) -> frozenset[Tag] | None:
    """The tags of a wheel file name, or None when it is not a valid wheel name."""
    try:
        return parse_wheel_filename(filename)[3]
    except (InvalidWheelFilename, InvalidVersion):
        return None


def _explain_not_plain(value: str, what: str) -> str | None:
    """Why ``value`` looks like more than a plain name or version, or None."""
    stripped = value.strip()
    if any(ch in value for ch in "\r\n\x0b\x0c\x85\u2028\u2029"):
        return f"{what} contains a line break"
    if stripped.startswith("-"):
        return f"{what} looks like a pip option ('{_first_word(stripped)}')"
    if "://" in stripped or stripped.startswith(("git+", "hg+", "svn+", "bzr+")):
        return f"{what} looks like a URL or VCS reference"
    if ";" in stripped:
        return f"{what} contains ';' (an environment marker)"
    if "@" in stripped:
        return f"{what} contains '@' (a direct URL reference)"
    if "${" in stripped or "$" in stripped:
        return f"{what} contains '$' (an environment variable)"
    if "\\" in stripped:
        return f"{what} contains a backslash"
    if "#" in stripped:
        return f"{what} contains '#' (a comment or URL fragment)"
    if value != stripped or any(ch.isspace() for ch in value):
        return f"{what} contains whitespace"
    if "/" in stripped or stripped.startswith("."):
        return f"{what} looks like a file path"
    if any(op in stripped for op in ("==", "!=", "<", ">", "~=", "===", ",")):
        return f"{what} contains a version specifier"
    if "*" in stripped:
        return f"{what} contains a wildcard"
    return None


def _first_word(text: str) -> str:
    return text.split(maxsplit=1)[0] if text.split() else text


def check_name(value: str) -> str | None:
    """Return why ``value`` is not a valid PEP 508 project name, or None."""
    if not value:
        return "the name is empty"
    if _NAME.fullmatch(value):
        return None
    if "[" in value or "]" in value:
        return "extras go in the 'extras' list, not in the name"
    reason = _explain_not_plain(value, "the name")
    if reason is not None:
        return reason
    return (
        f"'{value}' is not a valid package name "
        "(letters, digits and . _ - only, starting and ending with a letter or digit)"
    )


def check_exact_version(value: str) -> str | None:
    """Return why ``value`` is not one exact PEP 440 version, or None."""
    if not value:
        return "the version is empty"
    reason = _explain_not_plain(value, "the version")
    if reason is not None:
        if "version specifier" in reason:
            return f"'{value}' is a range or specifier, not one exact version"
        if "wildcard" in reason:
            return f"'{value}' is a wildcard, not one exact version"
        return reason
    if value[:1] in "vV":
        return f"'{value}' starts with '{value[0]}', which is not part of a version"
    if not _VERSION_CHARS.fullmatch(value):
        return f"'{value}' is not a PEP 440 version"
    try:
        Version(value)
    except InvalidVersion:
        return f"'{value}' is not a PEP 440 version"
    return None


def check_python_version(value: str) -> str | None:
    """Return why ``value`` is not a ``MAJOR.MINOR`` Python version pipgate can target, or None."""
    match = _PYTHON.fullmatch(value)
    if match is None:
        return f"'{value}' is not a Python version; write MAJOR.MINOR such as \"3.11\""
    major, minor = int(match["major"]), int(match["minor"])
    if (major, minor) < MIN_PYTHON or major != 3:
        return f"Python {value} is not supported; targets need Python 3.7 or newer"
    return None


def check_platform_tag(value: str) -> str | None:
    """Return why ``value`` is not a platform tag wheels can be published for, or None."""
    if _PLATFORM.fullmatch(value):
        return None
    if value.startswith("linux_"):
        return (
            f"'{value}' wheels are not portable and no index serves them; "
            "use a manylinux tag such as 'manylinux_2_17_x86_64'"
        )
    if value == "any":
        return "'any' is not a platform; name the platforms the target runs on"
    return (
        f"'{value}' is not a platform tag; use one such as 'manylinux_2_17_x86_64', "
        "'musllinux_1_2_x86_64', 'macosx_11_0_arm64' or 'win_amd64'"
    )
