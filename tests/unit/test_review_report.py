"""The review report as text: a verdict first, and readable for fifty packages."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from pipgate.allowlist import PackageEntry
from pipgate.names import ExactVersion, NormalizedName, Version
from pipgate.policy import Finding, Severity
from pipgate.problems import Location
from pipgate.review import COMMENT_LIMIT, Change, Review, render_markdown

NOW = datetime.datetime(2026, 11, 21, tzinfo=datetime.UTC)


def entry(name: str, line: int) -> PackageEntry:
    return PackageEntry(
        name=NormalizedName(name),
        spelled=name,
        version=ExactVersion("1.0"),
        reason=f"needed | for {name}",
        requested_by="data-platform",
        location=Location(Path("allowlist/data.yaml"), line),
    )


def test_fifty_requests_stay_readable() -> None:
    changes = []
    for i in range(50):
        owner = entry(f"pkg-{i:02d}", 2 + 5 * i)
        changes.append(
            Change(
                owner.name,
                None,
                Version("1.0"),
                ("py311", "py312"),
                owner,
                (owner.name,),
                "MIT",
                NOW - datetime.timedelta(days=30),
            )
        )
        dep = NormalizedName(f"dep-{i:02d}")
        changes.append(
            Change(
                dep,
                None,
                Version("2.0"),
                ("py311",),
                owner,
                (owner.name, dep),
                "BSD-3-Clause",
                NOW - datetime.timedelta(hours=5),
            )
        )
    changes.append(Change(NormalizedName("old"), Version("0.9"), None, ("py311",), None, ()))
    text = render_markdown(Review("origin/main", "", tuple(changes), (), (), NOW))
    lines = text.splitlines()
    assert lines[0] == "## pipgate review against `origin/main`"
    assert (
        lines[2] == "**PASS: ready for review: 100 added, 0 changed, 1 removed; "
        "no policy failed and no unaccepted vulnerability**"
    )
    requested = text.split("### Requested (50)")[1].split("<details>")[0]
    assert sum(line.startswith("| **pkg-") for line in requested.splitlines()) == 50
    # The transitive ones are folded away, each with the chain and the entry's line.
    folded = text.split("<details>")[1].split("</details>")[0]
    assert "<summary>Transitive: 50 packages the requested ones need</summary>" in folded
    assert "| dep-07 | 2.0 | via pkg-07 > dep-07 | `allowlist/data.yaml:37` |" in folded
    assert "| 5 hours |" in folded and "| 30 days |" in requested
    # A pipe in a reason cannot break the table.
    assert "needed \\| for pkg-00" in requested
    assert "### Removed (1)" in text


def big_review(count: int) -> Review:
    changes = []
    for i in range(count):
        owner = entry(f"package-number-{i:03d}", 2 + 5 * i)
        owner = dataclasses.replace(owner, reason="a long reason " * 12)
        changes.append(
            Change(owner.name, None, Version("1.0"), ("py311", "py312"), owner, (owner.name,),
                   "Apache-2.0", NOW - datetime.timedelta(days=400))
        )  # fmt: skip
        for j in range(3):
            dep = NormalizedName(f"dependency-{i:03d}-{j}")
            changes.append(
                Change(dep, None, Version("2.0"), ("py311",), owner, (owner.name, dep), "MIT",
                       NOW - datetime.timedelta(days=9))
            )  # fmt: skip
    return Review("origin/main", "", tuple(changes), (), (), NOW)


def test_three_hundred_requests_fold_and_fit_in_a_comment_saying_what_was_left_out() -> None:
    review = big_review(300)
    text = render_markdown(review)
    assert len(text) <= COMMENT_LIMIT
    lines = text.splitlines()
    assert lines[2].startswith("**PASS: ready for review: 1200 added")
    # What is left out is said first, with where to find it all.
    assert "table rows are left out to keep this report under 65,536 characters" in lines[4]
    assert "--format json" in lines[4]
    # Both inventories are folded; the transitive one gives up its rows first.
    requested = text.split("### Requested (300)")[1]
    assert requested.lstrip().startswith("<details>\n<summary>300 requested packages</summary>")
    assert "more (see the JSON report)" in text
    shown = sum(line.startswith("| **package-number-") for line in lines)
    assert shown > 0
    left = int(lines[4].strip("*").split()[0])
    assert left == 1200 - shown - sum(line.startswith("| dependency-") for line in lines)
    # Without the limit, nothing is left out.
    whole = render_markdown(review, limit=10**9)
    assert "left out" not in whole and len(whole) > COMMENT_LIMIT


def test_findings_come_before_inventories_and_survive_the_limit() -> None:
    review = big_review(300)
    owner = entry("requets", 9)
    finding = Finding(
        "typosquat", Severity.ERROR, owner.name, owner.pinned, owner, (owner.name,),
        "'requets' resembles a popular package, 'requests' (one letter left out)", "fix it",
    )  # fmt: skip
    text = render_markdown(dataclasses.replace(review, findings=(finding,)))
    assert len(text) <= COMMENT_LIMIT
    assert text.index("### Policy findings") < text.index("### Requested (300)")
    assert "| typosquat |" in text and "`allowlist/data.yaml:9`" in text
