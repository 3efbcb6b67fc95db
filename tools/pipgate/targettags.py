"""Which files a consumer on a target can install: wheel tags for a Python and platforms."""

from __future__ import annotations

import functools
import re

from packaging import tags

from pipgate.names import wheel_tags

_MANYLINUX = re.compile(r"^manylinux_(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<arch>.+)$")
_MUSLLINUX = re.compile(r"^musllinux_(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<arch>.+)$")
_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_MACOS = re.compile(r"^macosx_(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<arch>.+)$")


def expand_platform(platform: str) -> list[str]:
    """Every platform tag a machine of ``platform`` accepts, as pip does for ``--platform``."""
    for legacy, (major, minor) in _LEGACY_MANYLINUX.items():
        if platform.startswith(legacy + "_"):
            platform = f"manylinux_{major}_{minor}_{platform[len(legacy) + 1 :]}"
    match = _MANYLINUX.match(platform)
    if match:
        major, minor, arch = int(match["major"]), int(match["minor"]), match["arch"]
        out = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, -1, -1)]
        out += [
            f"{legacy}_{arch}"
            for legacy, glibc in _LEGACY_MANYLINUX.items()
            if glibc <= (major, minor)
        ]
        return out
    match = _MUSLLINUX.match(platform)
    if match:
        major, minor, arch = int(match["major"]), int(match["minor"]), match["arch"]
        return [f"musllinux_{major}_{m}_{arch}" for m in range(minor, -1, -1)]
    match = _MACOS.match(platform)
    if match:
        version = (int(match["major"]), int(match["minor"]))
        return list(tags.mac_platforms(version, match["arch"]))
    return [platform]


@functools.cache
def ranked_tags(
    python: str, platforms: tuple[str, ...], implementation: str = "cp"
) -> tuple[tags.Tag, ...]:
    """The wheel tags installable by ``implementation`` ``python`` on any of ``platforms``,
    most preferred first (packaging's order, which is pip's)."""
    major, minor = (int(x) for x in python.split("."))
    expanded = [p for platform in platforms for p in expand_platform(platform)]
    version = (major, minor)
    ranked: list[tags.Tag] = []
    if implementation == "cp":
        abi = f"cp{major}{minor}"
        ranked.extend(tags.cpython_tags(version, abis=[abi], platforms=expanded))
    ranked.extend(tags.compatible_tags(version, f"{implementation}{major}{minor}", expanded))
    return tuple(dict.fromkeys(ranked))


@functools.cache
def supported_tags(
    python: str, platforms: tuple[str, ...], implementation: str = "cp"
) -> frozenset[tags.Tag]:
    """The wheel tags installable by ``implementation`` ``python`` on any of ``platforms``."""
    return frozenset(ranked_tags(python, platforms, implementation))


def preference(filename: str, ranked: tuple[tags.Tag, ...]) -> tuple[int, str]:
    """How much a target prefers a file (lower first): the rank of the wheel's best tag,
    then any sdist; the name breaks ties, so every machine chooses the same file."""
    file_tags = wheel_tags(filename) if filename.endswith(".whl") else None
    if file_tags:
        order = {tag: i for i, tag in enumerate(ranked)}
        best = min((order[t] for t in file_tags if t in order), default=len(ranked))
        return best, filename
    return len(ranked) + 1, filename


def is_sdist(filename: str) -> bool:
    return filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz"))


def wheel_fits(filename: str, supported: frozenset[tags.Tag]) -> bool:
    """True when ``filename`` is a wheel whose tags a consumer with ``supported`` accepts."""
    if not filename.endswith(".whl"):
        return False
    file_tags = wheel_tags(filename)
    return file_tags is not None and not file_tags.isdisjoint(supported)
