"""The pinned pip-tools sets for other Pythons: complete, hashed, and refused where none."""

from __future__ import annotations

import re

import pytest

from pipgate.errors import ExitCode
from pipgate.toolenv import TOOLENVS, UnsupportedPythonError, pip_compile_command, supported_pythons


def test_every_python_from_3_8_to_3_13_has_a_hashed_pip_tools_set() -> None:
    assert supported_pythons() == ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
    for version in supported_pythons():
        text = (TOOLENVS / f"py{version}.txt").read_text()
        pins = re.findall(r"^([a-z0-9-]+)==(\S+)", text, re.MULTILINE)
        names = {name for name, _ in pins}
        assert {"pip-tools", "pip", "click", "build"} <= names, version
        # Every pin carries at least one hash, so the environment installs by hash only.
        blocks = re.split(r"^(?=[a-z0-9-]+==)", text, flags=re.MULTILINE)
        for block in (b for b in blocks if "==" in b.split("\n", 1)[0]):
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]


def test_a_python_no_maintained_pip_tools_runs_on_is_refused_naming_the_uv_engine() -> None:
    with pytest.raises(UnsupportedPythonError) as raised:
        pip_compile_command("3.7")
    assert raised.value.exit_code is ExitCode.BAD_INPUT
    assert "3.7" in raised.value.message
    assert "engine: uv" in (raised.value.hint or "")


def test_uv_names_a_platform_for_every_kind_of_target() -> None:
    from pipgate.lock.uv import uv_platform

    assert uv_platform("manylinux_2_28_x86_64") == ("x86_64-manylinux_2_28", {})
    assert uv_platform("manylinux2014_aarch64") == ("aarch64-manylinux_2_17", {})
    # uv names only some glibc versions: the newest it names that the target has.
    assert uv_platform("manylinux_2_30_x86_64") == ("x86_64-manylinux_2_28", {})
    assert uv_platform("musllinux_1_2_x86_64") == ("x86_64-unknown-linux-musl", {})
    assert uv_platform("macosx_11_0_arm64") == (
        "aarch64-apple-darwin",
        {"MACOSX_DEPLOYMENT_TARGET": "11.0"},
    )
    assert uv_platform("win_amd64") == ("x86_64-pc-windows-msvc", {})
    assert uv_platform("manylinux_2_5_x86_64") is None
    assert uv_platform("macosx_11_0_universal2") is None
