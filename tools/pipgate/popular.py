"""Refresh ``data/popular.txt``, the names the typosquat check compares new entries against.

    python -m pipgate.popular top-pypi-packages-30-days.min.json --top 1200

reads a download ranking in the format of hugovk/top-pypi-packages (``{"last_update":
..., "rows": [{"project": NAME, "download_count": N}, ...]}``) and rewrites the file,
most downloaded first, names normalised (PEP 503), with its provenance in the header.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipgate.fsutil import write_atomic
from pipgate.names import normalize

DATA = Path(__file__).resolve().parent / "data" / "popular.txt"

HEADER = """\
# Popular Python package names, most downloaded first: the names the typosquat check
# compares new allowlist entries against.
#
# Made from hugovk/top-pypi-packages, file {source} as of
# {updated} (downloads over the days before; data CC0-1.0 / public domain), the
# first {count} "project" values in order, normalised (PEP 503).
# Refresh: download a newer top-pypi-packages-30-days.min.json from that project and run
#     python -m pipgate.popular top-pypi-packages-30-days.min.json --top {top}
# which rewrites this file. A name here is trusted by the typosquat check itself.
"""


def render(document: dict[str, object], source: str, top: int) -> str:
    rows = document.get("rows")
    if not isinstance(rows, list):
        raise TypeError("no 'rows' list: not a top-pypi-packages file")
    names: list[str] = []
    for row in rows:
        name = normalize(str(row["project"]))
        if name not in names:
            names.append(name)
        if len(names) == top:
            break
    updated = str(document.get("last_update", "unknown date")).split(" ")[0]
    header = HEADER.format(source=source, updated=updated, count=len(names), top=top)
    return header + "".join(f"{n}\n" for n in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ranking", type=Path, help="a top-pypi-packages JSON file")
    parser.add_argument("--top", type=int, default=1200, help="how many names (default 1200)")
    parser.add_argument("--out", type=Path, default=DATA, help="where to write (default: ours)")
    args = parser.parse_args(argv)
    document = json.loads(args.ranking.read_text(encoding="utf-8"))
    write_atomic(args.out, render(document, args.ranking.name, args.top))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
