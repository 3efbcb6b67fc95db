"""The review report as text: a verdict first, and readable for fifty packages."""

from __future__ import annotations

import datetime
from pathlib import Path

from pipgate.allowlist import PackageEntry
from pipgate.names import ExactVersion, NormalizedName, Version
from pipgate.problems import Location
from pipgate.review import Change, Review, render_markdown

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
