"""Typosquat resemblance: each way a name can imitate another, and what it must not flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipgate.names import normalize as canonicalize_name
from pipgate.popular import main
from pipgate.similar import closest, popular_names, resemblance


@pytest.mark.parametrize(
    ("candidate", "known", "how"),
    [
        ("requets", "requests", "'s' left out"),
        ("requestss", "requests", "'s' doubled"),
        ("requestz", "requests", "'z' in place of 's'"),
        ("reqeusts", "requests", "'eu' swapped"),
        ("jeIlyfish", "jellyfish", "a capital 'I' where 'l' belongs"),
        ("python3-dateutil", "python-dateutil", "'3' added"),
        ("py-dateutil", "python-dateutil", "the same but for a python/py/3 prefix or suffix"),
        ("dateutil", "python-dateutil", "the same but for a python/py/3 prefix or suffix"),
        ("beautifulsoup-4", "beautifulsoup4", "the same but for separators"),
        ("python_dateutil", "python-dateutil", None),  # the same project once normalised
        ("urIlib3", "urllib3", "a capital 'I' where 'l' belongs"),
        ("nurnpy", "numpy", "confusable letters"),
        ("b0to3", "boto3", "'0' in place of 'o'"),
        ("flask", "flask", None),
        ("six", "sax", None),  # too short to mean anything
        ("django-rest", "djangorestframework", None),
        ("cycle-x", "cycler", None),  # a separator and a letter: two edits, not a squat
    ],
)
def test_resemblance(candidate: str, known: str, how: str | None) -> None:
    assert resemblance(candidate, canonicalize_name(known)) == how


def test_popular_names_ship_in_rank_order_and_normalised() -> None:
    names = popular_names()
    assert len(names) > 1000
    assert names[:3] == ("boto3", "botocore", "urllib3")
    assert len(set(names)) == len(names)
    assert all(canonicalize_name(n) == n for n in names)
    assert {"requests", "python-dateutil", "jellyfish", "numpy"} <= set(names)


def test_closest_finds_the_popular_name() -> None:
    assert closest("requets", popular_names()) == ("requests", "'s' left out")
    assert closest("keyrings.google-artifactregistry-auth", popular_names()) is None


def test_refresh_rewrites_the_list_from_a_ranking(tmp_path: Path) -> None:
    ranking = tmp_path / "top-pypi-packages-30-days.min.json"
    rows = [{"download_count": 9, "project": "Foo_Bar"}, {"download_count": 8, "project": "baz"}]
    rows.append({"download_count": 7, "project": "foo-bar"})
    ranking.write_text(json.dumps({"last_update": "2026-11-01 08:00:00", "rows": rows}))
    out = tmp_path / "popular.txt"
    assert main([str(ranking), "--top", "5", "--out", str(out)]) == 0
    text = out.read_text()
    assert "as of\n# 2026-11-01" in text
    assert [line for line in text.splitlines() if not line.startswith("#")] == ["foo-bar", "baz"]
