"""The strict YAML reader: what it refuses, and that it never raises on bad bytes."""

from __future__ import annotations

import datetime
import tracemalloc
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from pipgate import yamlsafe
from pipgate.yamlsafe import Mapping, Scalar, Sequence

PATH = Path("allowlist/x.yaml")


def parse(text: str | bytes) -> yamlsafe.Document:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return yamlsafe.parse(PATH, data)


def messages(document: yamlsafe.Document) -> list[tuple[int, str]]:
    return [(p.location.line, p.message) for p in document.problems]


def test_plain_document_keeps_lines_and_types() -> None:
    document = parse('a: 1\nb: "1.10"\nc: 1.10\nd: [x, y]\ne: 2027-01-31\nf: no\n')
    assert document.problems == ()
    root = document.root
    assert isinstance(root, Mapping)
    values = {key.value: node for key, node in root.items}
    assert isinstance(values["a"], Scalar) and values["a"].value == 1
    assert isinstance(values["b"], Scalar) and values["b"].value == "1.10"
    assert values["b"].quoted
    c = values["c"]
    assert isinstance(c, Scalar) and c.value == 1.1 and c.raw == "1.10" and not c.quoted
    assert isinstance(values["d"], Sequence) and values["d"].location.line == 4
    assert isinstance(values["e"], Scalar) and values["e"].value == datetime.date(2027, 1, 31)
    assert isinstance(values["f"], Scalar) and values["f"].value is False
    assert values["f"].location.line == 6


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    document = parse("packages:\n  - name: a\n    version: '1'\n    name: b\n")
    assert messages(document) == [(4, "duplicate key 'name' (first at line 2)")]


def test_anchor_and_alias_refused() -> None:
    document = parse("a: &x 1\nb: *x\n")
    assert [line for line, _ in messages(document)] == [1, 2]
    assert "anchor '&x'" in document.problems[0].message
    assert "alias '*x'" in document.problems[1].message
    assert document.root is None


def test_alias_bomb_costs_nothing() -> None:
    # The classic "billion laughs", under 300 bytes: expanded it would hold 9**9 items.
    bomb = (
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    )
    assert len(bomb) < 300
    tracemalloc.start()
    try:
        document = parse(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert document.root is None
    assert any("alias" in p.message for p in document.problems)
    assert peak < 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a: !!python/object:os.system x\n", "!!python/object:os.system"),
        ("a: !!str 1\n", "!!str"),
        ("a: !custom x\n", "!custom"),
        ("a: !!map {b: 1}\n", "!!map"),
    ],
)
def test_tags_refused(text: str, shown: str) -> None:
    document = parse(text)
    assert messages(document) == [(1, f"tag '{shown}' is not allowed")]


def test_several_documents_refused() -> None:
    document = parse("a: 1\n---\na: 2\n")
    assert messages(document) == [(2, "a second YAML document ('---') in one file")]


def test_tabs_refused_on_each_line() -> None:
    document = parse("a:\n\t- 1\nb: 'x\ty'\n")
    assert [line for line, _ in messages(document)] == [2, 3]
    assert all(message == "tab character" for _, message in messages(document))


def test_non_utf8_names_the_line() -> None:
    document = parse(b"a: 1\nb: caf\xe9\n")
    assert messages(document) == [(2, "not UTF-8: byte 0xe9 cannot be decoded")]


def test_utf8_bom_is_accepted() -> None:
    document = parse(b"\xef\xbb\xbfa: 1\n")
    assert document.problems == ()


def test_oversized_file_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * yamlsafe.MAX_BYTES + b"\n")
    document = yamlsafe.read(path)
    assert document.root is None
    assert "larger than 1024 KiB" in document.problems[0].message


def test_deep_nesting_refused() -> None:
    document = parse("a: " + "[" * 100 + "]" * 100 + "\n")
    assert document.root is None
    assert "nesting deeper than" in document.problems[0].message


def test_empty_file_is_a_problem() -> None:
    document = parse("# only a comment\n")
    assert messages(document) == [(1, "the file is empty")]


def test_syntax_error_has_a_line() -> None:
    document = parse("a: 1\nb: [1, 2\nc: 3\n")
    assert document.root is None
    assert document.problems[0].location.line >= 2
    assert document.problems[0].message.startswith("not valid YAML")


def test_control_character_reported() -> None:
    document = parse("a: 1\nb: x\x07y\n")
    assert document.root is None
    assert document.problems[0].location.line == 2


def test_non_text_key_refused() -> None:
    document = parse("1: a\n[x]: b\n")
    assert [line for line, _ in messages(document)] == [1, 2]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"- - - -",
        b"{{{{",
        b"a: |\n  x\n y",
        b"? a\n: b",
        b"%YAML 1.1\n---\na: 1",
        b"a: b: c",
        b"'",
        b"\xff\xfe",
        b"!!",
        b"*a",
        b"&a",
        b"a: [1, *b]",
        b"\r\n\r\n",
    ],
)
def test_garbage_gives_a_tree_or_a_problem(data: bytes) -> None:
    document = parse(data)
    assert document.root is not None or document.problems


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    st.binary(max_size=200) | st.text(alphabet="-:[]{}&*!|>'\"#?%@ \nab1.", max_size=60)
)
def test_any_input_gives_a_tree_or_a_problem(data: bytes | str) -> None:
    document = parse(data)
    assert document.root is not None or document.problems
    assert all(p.location.path == PATH for p in document.problems)
