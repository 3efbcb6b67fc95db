"""Which files of a pinned release a target may install: the lock's hash selection, pure."""

from __future__ import annotations

from pathlib import Path

from pipgate.allowlist.model import Target
from pipgate.index import IndexFile
from pipgate.lock import installable_files
from pipgate.lock.select import python_allows
from pipgate.names import PythonVersion, Version
from pipgate.problems import Location

TARGET = Target(
    name="py311",
    python=PythonVersion("3.11"),
    platforms=("manylinux_2_28_x86_64",),
    location=Location(Path("config.yaml"), 4),
)

FILES = (
    IndexFile("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "u1", "a1"),
    IndexFile("pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", "u2", "a2"),
    IndexFile("pkg-1.0-cp311-cp311-musllinux_1_2_x86_64.whl", "u3", "a3"),
    IndexFile("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "u4", "a4"),
    IndexFile("pkg-1.0-cp311-cp311-win_amd64.whl", "u5", "a5"),
    IndexFile("pkg-1.0-cp311-cp311-manylinux_2_34_x86_64.whl", "u6", "a6"),
    IndexFile("pkg-1.0.tar.gz", "u7", "a7"),
    IndexFile("pkg-1.1-py3-none-any.whl", "u8", "a8"),
    IndexFile("pkg-1.0+local-py3-none-any.whl", "u9", "a9"),
    IndexFile("other-1.0-py3-none-any.whl", "u10", "a10"),
)


def test_every_wheel_the_target_accepts_and_nothing_else() -> None:
    chosen = installable_files(FILES, "pkg", Version("1.0"), TARGET, sdist_ok=False)
    # manylinux 2.17 and 2.28 run on a 2.28 machine; musl, 3.12, Windows and glibc 2.34 do not;
    # another version, a local-version sibling and another project are other releases.
    assert chosen.hashes == ("a1", "a2")
    assert not chosen.sdists


def test_the_sdist_only_when_allowed() -> None:
    assert installable_files(FILES, "pkg", Version("1.0"), TARGET, sdist_ok=True).hashes == (
        "a1",
        "a2",
        "a7",
    )


def test_requires_python_that_excludes_the_target_drops_the_file() -> None:
    files = (
        IndexFile("pkg-2.0-py3-none-any.whl", "u", "new", requires_python=">=3.12"),
        IndexFile("pkg-2.0-py2.py3-none-any.whl", "v", "old", requires_python=">=3.8"),
    )
    chosen = installable_files(files, "pkg", Version("2.0"), TARGET, sdist_ok=False)
    assert chosen.hashes == ("old",)
    assert [f.sha256 for f in chosen.release] == ["old"]


def test_no_installable_file_is_an_empty_selection_of_a_listed_release() -> None:
    files = (IndexFile("pkg-3.0-cp311-cp311-win_amd64.whl", "u", "w"),)
    chosen = installable_files(files, "pkg", Version("3.0"), TARGET, sdist_ok=False)
    assert chosen.release and not chosen.hashes


def test_requires_python_excluding_early_patches_admits_the_target() -> None:
    # cryptography's own: a 3.9 target is some 3.9.x, and pip on 3.9.18 takes the file.
    assert python_allows(">=3.9,!=3.9.0,!=3.9.1", "3.9")
    assert not python_allows(">=3.10", "3.9")
    assert not python_allows("<3.9", "3.9")
    assert python_allows("~=3.9.2", "3.9") and not python_allows("~=3.10.2", "3.9")
