"""The version rewrite of ``pipgate bump``, pure: every byte but the version's stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipgate import yamlsafe
from pipgate.allowlist import load
from pipgate.bump import BumpError, rewrite, scalar_text, version_scalars
from pipgate.names import normalize

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    p
    for folder in (ROOT / "allowlist", ROOT / "benchmarks" / "large" / "allowlist")
    for p in folder.glob("*.yaml")
    if "packages:" in p.read_text(encoding="utf-8")
)


def entries_of(path: Path) -> list[tuple[str, str]]:
    document = yamlsafe.read(path)
    assert isinstance(document.root, yamlsafe.Mapping)
    out = []
    for key, value in document.root.items:
        if key.value == "packages":
            assert isinstance(value, yamlsafe.Sequence)
            for item in value.items:
                assert isinstance(item, yamlsafe.Mapping)
                fields = {k.value: v for k, v in item.items}
                name, version = fields["name"], fields["version"]
                assert isinstance(name, yamlsafe.Scalar) and isinstance(version, yamlsafe.Scalar)
                out.append((str(name.value), str(version.value)))
    return out


def test_the_examples_are_there() -> None:
    assert len(EXAMPLES) >= 3
    assert sum(len(entries_of(p)) for p in EXAMPLES) > 300


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_entry_of_every_example_round_trips_byte_for_byte(path: Path) -> None:
    original = path.read_bytes()
    text = original.decode("utf-8")
    document = yamlsafe.read(path)
    pins = entries_of(path)
    scalars = {n: next(version_scalars(document, normalize(n))) for n, _ in pins}
    # Every entry bumped at once (a version per entry, of differing lengths), then back.
    new_versions = {n: f"{99 + i}.{i}.0" for i, (n, _) in enumerate(pins)}
    edits = {normalize(n): (v, new_versions[n]) for n, v in pins}
    bumped, made = rewrite(original, path, edits)
    assert len(made) == len(pins)
    # The file is the original text outside the versions' own characters, byte for byte.
    expected, cursor = [], 0
    for name, _ in sorted(pins, key=lambda p: scalars[p[0]].span):
        start, end = scalars[name].span
        expected += [text[cursor:start], scalar_text(scalars[name], new_versions[name])]
        cursor = end
    assert bumped.decode("utf-8") == "".join(expected) + text[cursor:]
    again = yamlsafe.parse(path, bumped)
    assert {n: str(next(version_scalars(again, normalize(n))).value) for n, _ in pins} == (
        new_versions
    )
    back, _ = rewrite(bumped, path, {normalize(n): (new_versions[n], v) for n, v in pins})
    assert back == original


def test_a_bumped_example_is_still_a_valid_allowlist(tmp_path: Path) -> None:
    folder = tmp_path / "allowlist"
    folder.mkdir()
    for item in (ROOT / "allowlist").iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    target = next(p for p in EXAMPLES if p.parent == ROOT / "allowlist")
    name, version = entries_of(target)[0]
    data, _ = rewrite(target.read_bytes(), target, {normalize(name): (version, "2.0")})
    (folder / target.name).write_bytes(data)
    loaded = load(folder, expired_is_error=False)
    assert next(e for e in loaded.packages if e.name == normalize(name)).version == "2.0"


def bumped(text: str, new: str = "2.0", name: str = "pkg", encoding: str = "utf-8") -> str:
    data = text.encode(encoding)
    old = next(
        str(s.value) for s in version_scalars(yamlsafe.parse(Path("p.yaml"), data), normalize(name))
    )
    out, _ = rewrite(data, Path("p.yaml"), {normalize(name): (old, new)})
    return out.decode("utf-8")


ENTRY = (
    "packages:\n  - name: pkg\n    version: {v}  # pinned\n    reason: r\n    requested_by: me\n"
)


@pytest.mark.parametrize(
    ("written", "new", "expected"),
    [
        ('"1.0"', "2.0", '"2.0"'),
        ("'1.0'", "2.0", "'2.0'"),
        ("1.2.3", "1.2.4", "1.2.4"),  # plain stays plain where it still reads as text
        ("1.2.3", "2.0", '"2.0"'),  # plain 2.0 would read as a number: quoted
        ("1.2.3", "10", '"10"'),
        ("2.0rc1", "2.0.post1", "2.0.post1"),
    ],
)
def test_quoting_is_kept_or_added_where_yaml_would_misread(
    written: str, new: str, expected: str
) -> None:
    assert bumped(ENTRY.format(v=written), new) == ENTRY.format(v=expected)


def test_line_endings_a_byte_order_mark_and_other_entries_stay() -> None:
    text = (
        "\ufeff# top\r\npackages:\r\n  - {name: other, version: '1.0', reason: r, requested_by: "
        "me}\r\n  - name: pkg\r\n    version: '1.0'\r\n    reason: r\r\n    requested_by: me\r\n"
    )
    assert bumped(text) == text.replace("version: '1.0'\r\n", "version: '2.0'\r\n")
    assert bumped(text, name="other") == text.replace("version: '1.0',", "version: '2.0',")


def test_hostile_versions_and_block_scalars_are_refused() -> None:
    with pytest.raises(BumpError, match="is not a version"):
        bumped(ENTRY.format(v='"1.0"'), '2.0"\n  - name: evil')
    block = "packages:\n  - name: pkg\n    version: |\n      1.0\n    reason: r\n"
    with pytest.raises(BumpError, match="block scalar"):
        bumped(block)
