"""Reviewing: `pipgate review` of a one-package change, once the change's lock exists.

Run by `nox -s bench` (or `python benchmarks/bench_review.py`). Two inputs: the example
allowlist with its committed locks, and benchmarks/large/allowlist (360 pins, locked here
first). Each is committed as the base of a scratch git repository; one entry is added
(ADDED, a small package with no dependencies) and locked; then the review runs against
the base with an empty cache, auditing against the offline OSV export in tests/data/osv,
and its wall time and peak memory are reported against the targets (5 s for the example,
15 s for the large input). Needs the package index (pip's own configured one).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LARGE = ROOT / "benchmarks" / "large" / "allowlist"
EXAMPLE = ROOT / "allowlist"
OSV = ROOT / "tests" / "data" / "osv"
ADDED = ("toolz", "1.0.0")
TARGETS = {"example": 5.0, "large": 15.0}


GIT = shutil.which("git") or "git"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [GIT, "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@localhost",
         *args],
        check=True, capture_output=True,
    )  # fmt: skip


def _pipgate(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipgate", *args],
        capture_output=True, text=True, env=env, cwd=cwd, check=False,
    )  # fmt: skip


def _children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def bench(name: str, source: Path, scratch: Path) -> dict[str, Any]:
    repo = scratch / name
    shutil.copytree(source, repo / "allowlist")
    generated = source.parent / "generated"
    env = {**os.environ, "PIPGATE_CACHE_DIR": str(scratch / f"cache-{name}")}
    if source == EXAMPLE and generated.is_dir():
        shutil.copytree(generated, repo / "generated")
    else:
        made = _pipgate("lock", "--allowlist", str(repo / "allowlist"), env=env, cwd=repo)
        if made.returncode != 0:
            raise SystemExit(f"{name}: the base did not lock:\n{made.stderr[-2000:]}")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    package, version = ADDED
    (repo / "allowlist" / "added.yaml").write_text(
        "packages:\n"
        f'  - name: {package}\n    version: "{version}"\n'
        "    reason: the benchmark's one more entry\n    requested_by: bench\n"
    )
    locked = _pipgate("lock", "--allowlist", str(repo / "allowlist"), env=env, cwd=repo)
    if locked.returncode != 0:
        raise SystemExit(f"{name}: the change did not lock:\n{locked.stderr[-2000:]}")
    started = time.monotonic()
    review = _pipgate(
        "review", "--allowlist", str(repo / "allowlist"), "--base", "main",
        "--database", str(OSV), "--max-data-age-days", "0",
        "--cache", str(scratch / f"files-{name}"),
        "--format", "json", env=env, cwd=repo,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if review.returncode not in (0, 1):
        raise SystemExit(f"{name}: the review failed:\n{review.stderr[-2000:]}")
    document = json.loads(review.stdout)
    return {
        "input": name,
        "entries": sum(1 for _ in (repo / "allowlist").glob("*.yaml")),
        "changes": len(document["changes"]),
        "seconds": round(seconds, 2),
        "target_seconds": TARGETS[name],
        "largest_process_mb": round(_children_peak_mb(), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pipgate-bench-review-") as folder:
        results = [bench("example", EXAMPLE, Path(folder)), bench("large", LARGE, Path(folder))]
    misses = [f"{r['input']}: review over {r['target_seconds']} s" for r in results
              if r["seconds"] > r["target_seconds"]]  # fmt: skip
    if args.json:
        print(json.dumps({"runs": results, "misses": misses}, indent=2))
    else:
        for r in results:
            print(
                f"review benchmark: {r['input']}, one entry added ({r['changes']} changes): "
                f"{r['seconds']:.1f} s (target {r['target_seconds']:.0f} s)"
            )
        print("targets: " + ("; ".join(misses) if misses else "all met"))
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    sys.exit(main())
