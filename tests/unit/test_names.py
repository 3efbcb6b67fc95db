"""Names, versions, Python versions and platform tags."""

from __future__ import annotations

import pytest

from pipgate.names import (
    check_exact_version,
    check_name,
    check_platform_tag,
    check_python_version,
    normalize,
)


@pytest.mark.parametrize("name", ["requests", "Foo_Bar", "zope.interface", "a", "A1", "x-y_z.w"])
def test_valid_names(name: str) -> None:
    assert check_name(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("-i", "pip option ('-i')"),
        ("--extra-index-url=https://x", "pip option"),
        ("-e .", "pip option ('-e')"),
        ("-r other.txt", "pip option ('-r')"),
        ("-c c.txt", "pip option ('-c')"),
        ("--trusted-host", "pip option"),
        ("https://host/pkg.whl", "URL"),
        ("git+https://host/repo", "URL or VCS"),
        ("pkg @ https://host/x.whl", "URL"),
        ("pkg@file:///x", "URL"),
        ("./pkg", "file path"),
        ("/abs/pkg", "file path"),
        ("pkg; python_version<'3.8'", "environment marker"),
        ("${EVIL}", "environment variable"),
        ("pkg\\x", "backslash"),
        ("pkg#egg", "comment"),
        ("pkg name", "whitespace"),
        ("pkg\n-i https://x", "line break"),
        (" pkg", "whitespace"),
        ("pkg[extra]", "extras"),
        ("pkg==1.0", "version specifier"),
        ("pkg>=1", "version specifier"),
        ("_pkg", "not a valid package name"),
        ("pkg-", "not a valid package name"),
        ("pàckage", "not a valid package name"),
    ],
)
def test_invalid_names(name: str, fragment: str) -> None:
    reason = check_name(name)
    assert reason is not None
    assert fragment in reason


@pytest.mark.parametrize(
    "version",
    ["1.0", "2.32.3", "1!2.0", "1.0rc1", "1.0.post1", "1.0.dev3", "2023.07.22", "1.0+local.1", "0"],
)
def test_valid_versions(version: str) -> None:
    assert check_exact_version(version) is None


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ("v1.0", "starts with 'v'"),
        ("V2", "starts with 'V'"),
        (">=1.0", "range or specifier"),
        ("==1.0", "range or specifier"),
        ("===1.0", "range or specifier"),
        ("~=1.0", "range or specifier"),
        ("1.0,<2", "range or specifier"),
        ("1.0.*", "wildcard"),
        ("*", "wildcard"),
        ("1.0 ", "whitespace"),
        ("1.0\n", "line break"),
        ("1.0; python_version<'3'", "marker"),
        ("-e", "pip option"),
        ("1.0#x", "comment"),
        ("latest", "not a PEP 440 version"),
        ("1.0-foo-bar", "not a PEP 440 version"),
        ("", "empty"),
    ],
)
def test_invalid_versions(version: str, fragment: str) -> None:
    reason = check_exact_version(version)
    assert reason is not None
    assert fragment in reason


def test_normalize_joins_spellings() -> None:
    assert normalize("Foo_Bar") == normalize("foo-bar") == normalize("FOO.bar") == "foo-bar"


@pytest.mark.parametrize("value", ["3.7", "3.11", "3.12", "3.13", "3.14"])
def test_valid_pythons(value: str) -> None:
    assert check_python_version(value) is None


@pytest.mark.parametrize("value", ["3", "3.11.7", "2.7", "3.6", "py311", "3.x", "4.0", " 3.11"])
def test_invalid_pythons(value: str) -> None:
    assert check_python_version(value) is not None


@pytest.mark.parametrize(
    "tag",
    [
        "manylinux_2_17_x86_64",
        "manylinux2014_aarch64",
        "musllinux_1_2_x86_64",
        "macosx_11_0_arm64",
        "win_amd64",
    ],
)
def test_valid_platforms(tag: str) -> None:
    assert check_platform_tag(tag) is None


@pytest.mark.parametrize(
    ("tag", "fragment"),
    [
        ("linux_x86_64", "not portable"),
        ("any", "not a platform"),
        ("manylinux_2_17", "not a platform tag"),
        ("x86_64", "not a platform tag"),
    ],
)
def test_invalid_platforms(tag: str, fragment: str) -> None:
    reason = check_platform_tag(tag)
    assert reason is not None and fragment in reason
