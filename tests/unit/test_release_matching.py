"""The first look at an entry's page keeps exactly the releases its pin matches."""

from __future__ import annotations

import itertools

import pytest
from packaging.specifiers import SpecifierSet

from pipgate.index import release_matching
from pipgate.names import Version

SPELLINGS = (
    "1.0", "1.0.0", "1.00", "1", "1.0.0.0", "1.0+evil", "1.0.0+x", "1.0.post1",
    "1.0.0.post1", "1.0rc1", "1.0.0rc1", "1.0a1", "1.0.dev0", "1.0.post1.dev2", "1.1",
    "10.0", "0.10", "0.1", "2!1.0", "2024.1", "2024.01.0",
)  # fmt: skip


@pytest.mark.parametrize("pinned", SPELLINGS)
def test_the_kept_files_are_those_of_every_release_the_pin_matches(pinned: str) -> None:
    keep = release_matching(Version(pinned))
    specifier = SpecifierSet(f"=={Version(pinned)}")
    for listed, kind in itertools.product(SPELLINGS, ("sdist", "wheel")):
        name = f"pkg-{listed}.tar.gz" if kind == "sdist" else f"pkg-{listed}-py3-none-any.whl"
        assert keep(name) == specifier.contains(Version(listed), prereleases=True), name
