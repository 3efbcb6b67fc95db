"""pylock.toml's text, pure: valid PEP 751 (packaging's own validation), every value a
registry gave read back exactly as given, whatever characters it holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.pylock import Pylock

from pipgate.allowlist.model import Target
from pipgate.lock import Lock, LockedPackage
from pipgate.names import NormalizedName, PythonVersion, Version
from pipgate.problems import Location
from pipgate.pylock import RegistryFile, relative_path, render_pylock

TARGET = Target(
    name="py311",
    python=PythonVersion("3.11"),
    platforms=("manylinux_2_17_x86_64", "macosx_11_0_arm64"),
    location=Location(Path("config.yaml"), 4),
)
WHEEL, SDIST = "a" * 64, "b" * 64


def package(name: str, version: str, *hashes: str) -> LockedPackage:
    return LockedPackage(NormalizedName(name), Version(version), hashes, (), True)


def render(files: dict[str, RegistryFile], index: str | None = "https://r.example/simple/") -> str:
    lock = Lock("py311", "sha256:" + "c" * 64, (package("pkg", "1.0", WHEEL, SDIST),))
    return render_pylock(TARGET, lock, files, index_url=index, inputs="sha256:" + "d" * 64)


def test_a_wheel_and_an_sdist_with_every_field() -> None:
    text = render(
        {
            WHEEL: RegistryFile(
                "pkg-1.0-py3-none-any.whl",
                WHEEL,
                10,
                url="https://r.example/files/pkg-1.0-py3-none-any.whl",
                upload_time="2026-01-02T03:04:05.678+01:00",
            ),
            SDIST: RegistryFile(
                "pkg-1.0.tar.gz", SDIST, 20, url="https://r.example/pkg-1.0.tar.gz"
            ),
        }
    )
    document = tomllib.loads(text)
    locked = Pylock.from_dict(document)
    assert locked.created_by == "pipgate"
    assert str(locked.requires_python) == "==3.11.*"
    assert len(document["environments"]) == 2  # Linux x86_64, macOS arm64
    [entry] = document["packages"]
    assert entry["index"] == "https://r.example/simple/"
    [wheel] = entry["wheels"]
    assert wheel["upload-time"].isoformat() == "2026-01-02T02:04:05.678000+00:00"
    assert (wheel["size"], wheel["hashes"]) == (10, {"sha256": WHEEL})
    assert entry["sdist"]["name"] == "pkg-1.0.tar.gz"
    assert "upload-time" not in entry["sdist"]
    assert document["tool"]["pipgate"]["lock-inputs"] == "sha256:" + "c" * 64


def test_hostile_values_are_read_back_exactly_and_a_bad_time_is_left_out() -> None:
    url = 'https://r.example/files/p"q\\r\n]]\u202e\x00x = 1.whl'
    text = render(
        {
            WHEEL: RegistryFile("pkg-1.0-py3-none-any.whl", WHEEL, 1, url=url, upload_time="soon"),
            SDIST: RegistryFile("pkg-1.0.tar.gz", SDIST, 2, url=url, upload_time="2026-01-01"),
        },
        index='https://r.example/"simple"/',
    )
    document = tomllib.loads(text)
    [entry] = document["packages"]
    assert entry["wheels"][0]["url"] == url
    assert entry["sdist"]["url"] == url
    assert entry["index"] == 'https://r.example/"simple"/'
    # neither a time that does not parse nor one without a zone is written
    assert "upload-time" not in entry["wheels"][0]
    assert "upload-time" not in entry["sdist"]
    assert len(document["packages"]) == 1  # nothing injected


def test_the_same_inputs_give_the_same_bytes_and_paths_name_the_embedded_files() -> None:
    lock_folder = Path("/repo/generated/py311")
    place = relative_path(Path("/repo/.registry/files/pkg-1.0.tar.gz"), lock_folder, absolute=False)
    assert place == "../../.registry/files/pkg-1.0.tar.gz"
    files = {
        WHEEL: RegistryFile(
            "pkg-1.0-py3-none-any.whl", WHEEL, 1, path="x/pkg-1.0-py3-none-any.whl"
        ),
        SDIST: RegistryFile("pkg-1.0.tar.gz", SDIST, 2, path=place),
    }
    assert render(files, None) == render(dict(reversed(files.items())), None)
    document = tomllib.loads(render(files, None))
    Pylock.from_dict(document)
    assert "index" not in document["packages"][0]
    assert document["packages"][0]["sdist"]["path"] == place
