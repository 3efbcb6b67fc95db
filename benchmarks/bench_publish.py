"""Publishing: the manual recipe against `pipgate download` + `pipgate upload`, side by side.

Run by `nox -s bench` (or `python benchmarks/bench_publish.py`). Everything is
local and needs no index: the upstream is pypiserver serving wheels built
here with incompressible payloads of realistic sizes, the registry a
password-protected pypiserver; each sits behind a pass-through proxy that
counts the bytes it serves and receives.

The manual recipe is what people do by hand today: `pip download` of the
hashed lock into a folder they keep, then `twine upload` of every file, one
at a time (twine 6.2 and later refuse `--skip-existing` for any index but the
public one, so a file the registry already holds is sent in full and refused
with 409, which the recipe ignores). pipgate runs `download`, then `upload`,
with a file cache it keeps.

Four syncs, each measured for both: the first (everything new), a no-op
(nothing new), one more small package, and one package of several hundred MB
(peak memory must stay flat: the file is streamed, never held). Reported per
sync: wall time, bytes from upstream, bytes sent to the registry, and the
peak resident memory of the largest process each side ran.
"""

from __future__ import annotations

import abc
import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.universe import (
    Dist,
    FaultyFront,
    build_universe,
    start_pypiserver,
    write_htpasswd,
)

USERNAME, PASSWORD = "bench", "bench-registry-password"
SMALL_PACKAGES = 30
NOOP_SECONDS_TARGET = 2.0
MEMORY_TARGET_MB = 150.0


@dataclasses.dataclass
class Measure:
    seconds: float = 0.0
    upstream_bytes: int = 0
    uploaded_bytes: int = 0
    peak_rss_mb: float = 0.0
    failures: int = 0
    """Commands that exited non-zero (the manual recipe's 409s for files already there)."""


# Linux keeps a forked child's high-water RSS across exec, so a child forked from
# this (large) process would report this process's memory. A small launcher runs
# the command instead and reports its children's peak: theirs alone.
_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def _run(args: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, float]:
    """Run a command; its exit code and the peak RSS (MB) of its largest process."""
    report = log.with_suffix(".rss")
    with log.open("ab") as out:
        code = subprocess.call(
            [sys.executable, "-c", _LAUNCHER, str(report), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return code, int(report.read_text()) / 1024


@dataclasses.dataclass(frozen=True)
class Row:
    sync: str
    manual: Measure
    pipgate: Measure


class Side(abc.ABC):
    """One way of publishing, with the state it keeps between syncs."""

    def __init__(self, name: str, root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.root = root
        self.env = env
        self.log = root / f"{name}.log"

    @abc.abstractmethod
    def sync(self, allowlist: Path) -> Measure:
        """Publish what the allowlist's lock needs; the measure without traffic and time."""

    def measured(self, allowlist: Path, upstream: FaultyFront, registry: FaultyFront) -> Measure:
        before = (upstream.bytes_served, registry.bytes_received)
        started = time.monotonic()
        measure = self.sync(allowlist)
        measure.seconds = round(time.monotonic() - started, 2)
        measure.upstream_bytes = upstream.bytes_served - before[0]
        measure.uploaded_bytes = registry.bytes_received - before[1]
        return measure


class Manual(Side):
    def __init__(self, root: Path, env: dict[str, str], upstream: str, registry: str) -> None:
        super().__init__("manual", root, env)
        self.upstream = upstream
        self.registry = registry
        self.folder = root / "manual-files"

    def sync(self, allowlist: Path) -> Measure:
        measure = Measure()
        lock = allowlist.parent / "generated" / "py311" / "requirements.txt"
        code, rss = _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_17_x86_64",
                "--python-version",
                "311",
                "--progress-bar",
                "off",
                "--index-url",
                self.upstream,
                "--dest",
                str(self.folder),
                "-r",
                str(lock),
            ],
            self.env,
            self.log,
        )
        if code != 0:
            raise SystemExit(f"manual pip download failed; see {self.log}")
        measure.peak_rss_mb = rss
        for path in sorted(self.folder.iterdir()):
            code, rss = _run(
                [
                    sys.executable,
                    "-m",
                    "twine",
                    "upload",
                    "--non-interactive",
                    "--disable-progress-bar",
                    "--repository-url",
                    self.registry,
                    "-u",
                    USERNAME,
                    "-p",
                    PASSWORD,
                    str(path),
                ],
                self.env,
                self.log,
            )
            measure.peak_rss_mb = max(measure.peak_rss_mb, rss)
            measure.failures += code != 0
        measure.peak_rss_mb = round(measure.peak_rss_mb, 1)
        return measure


class Pipgate(Side):
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        super().__init__("pipgate", root, env)
        self.cache = root / "pipgate-cache"

    def sync(self, allowlist: Path) -> Measure:
        measure = Measure()
        for command in ("download", "upload"):
            code, rss = _run(
                [
                    sys.executable,
                    "-m",
                    "pipgate",
                    command,
                    "--allowlist",
                    str(allowlist),
                    "--cache",
                    str(self.cache),
                ],
                self.env,
                self.log,
            )
            if code != 0:
                raise SystemExit(f"pipgate {command} failed (exit {code}); see {self.log}")
            measure.peak_rss_mb = round(max(measure.peak_rss_mb, rss), 1)
        return measure


def _universe(big_mb: int) -> list[Dist]:
    rng = random.Random(20261121)  # noqa: S311 - file sizes, the same on every run
    dists = [
        Dist(f"bench-pkg-{i:02d}", "1.0", payload=int(rng.uniform(0.2, 6.0) * 1e6))
        for i in range(SMALL_PACKAGES + 1)
    ]
    dists.append(Dist("bench-big", "1.0", payload=big_mb * 1_000_000))
    return dists


def _entries(names: Sequence[str]) -> str:
    lines = ["packages:"]
    for name in names:
        lines.append(
            f'  - name: {name}\n    version: "1.0"\n    reason: benchmark\n    requested_by: bench'
        )
    return "\n".join(lines) + "\n"


def _lock(allowlist: Path, env: dict[str, str], log: Path) -> None:
    code, _ = _run(
        [sys.executable, "-m", "pipgate", "lock", "--allowlist", str(allowlist)], env, log
    )
    if code != 0:
        raise SystemExit(f"pipgate lock failed; see {log}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big-mb", type=int, default=300, help="size of the large package")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless pipgate's no-op sync moves no byte within "
        f"{NOOP_SECONDS_TARGET:g} s and the large file's upload peaks under "
        f"{MEMORY_TARGET_MB:g} MB",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pipgate-bench-publish-") as scratch:
        root = Path(scratch)
        files = root / "upstream-files"
        started = time.monotonic()
        build_universe(files, _universe(args.big_mb))
        built = time.monotonic() - started
        upstream_server = start_pypiserver(files, root / "logs")
        packages = root / "registry-files"
        packages.mkdir()
        htpasswd = write_htpasswd(root / "htpasswd", USERNAME, PASSWORD)
        registry_server = start_pypiserver(
            packages, root / "logs", htpasswd=htpasswd, username=USERNAME, password=PASSWORD
        )
        upstream = FaultyFront(upstream_server, [])
        registry = FaultyFront(registry_server, [])
        try:
            rows = _bench(root, upstream, registry, args.big_mb)
        finally:
            upstream.stop()
            registry.stop()
            upstream_server.stop()
            registry_server.stop()

    report = {
        "universe_built_seconds": round(built, 1),
        "syncs": [
            {
                "sync": row.sync,
                "manual": dataclasses.asdict(row.manual),
                "pipgate": dataclasses.asdict(row.pipgate),
            }
            for row in rows
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"publish benchmark: {SMALL_PACKAGES} packages of 0.2-6 MB, then one more, then "
            f"one of {args.big_mb} MB; local upstream and registry (pypiserver)"
        )
        print(
            f"  {'sync':<14} {'side':<8} {'time':>8} {'from upstream':>14} "
            f"{'uploaded':>10} {'peak RSS':>9}  notes"
        )
        for row in rows:
            for side, m in (("manual", row.manual), ("pipgate", row.pipgate)):
                notes = f"{m.failures} twine uploads refused" if m.failures else ""
                print(
                    f"  {row.sync:<14} {side:<8} {m.seconds:>7.1f}s "
                    f"{m.upstream_bytes / 1e6:>11.2f} MB {m.uploaded_bytes / 1e6:>7.1f} MB "
                    f"{m.peak_rss_mb:>6.0f} MB  {notes}"
                )
    if args.check:
        noop = next(r.pipgate for r in rows if r.sync == "no-op")
        big = next(r.pipgate for r in rows if r.sync == "large file")
        failed = (
            noop.upstream_bytes > 0
            or noop.uploaded_bytes > 0
            or noop.seconds > NOOP_SECONDS_TARGET
            or big.peak_rss_mb > MEMORY_TARGET_MB
        )
        return 1 if failed else 0
    return 0


def _bench(root: Path, upstream: FaultyFront, registry: FaultyFront, big_mb: int) -> list[Row]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TWINE_"))}
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_CACHE_DIR": "1",
            "PIPGATE_CACHE_DIR": str(root / "tools"),
            "PIPGATE_REGISTRY_USERNAME": USERNAME,
            "PIPGATE_REGISTRY_PASSWORD": PASSWORD,
        }
    )
    upstream_url = upstream.root + "simple/"
    allowlist = root / "repo" / "allowlist"
    allowlist.mkdir(parents=True)
    (allowlist / "config.yaml").write_text(
        f"registry: {registry.root}\nupstream: {upstream_url}\n"
        'targets:\n  - name: py311\n    python: "3.11"\n'
        "    platforms: [manylinux_2_17_x86_64]\n"
        "policy:\n  min_release_age_days: 0\n"
    )
    names = [f"bench-pkg-{i:02d}" for i in range(SMALL_PACKAGES)]
    steps = [
        ("first", names),
        ("no-op", names),
        ("one package", [*names, f"bench-pkg-{SMALL_PACKAGES:02d}"]),
        ("large file", [*names, f"bench-pkg-{SMALL_PACKAGES:02d}", "bench-big"]),
    ]
    sides: list[Side] = [
        Manual(root, env, upstream_url, registry.root),
        Pipgate(root, env),
    ]
    # Each side publishes into a registry of its own: the registry is emptied between sides.
    results: dict[str, list[Measure]] = {}
    for side in sides:
        for path in registry.backend.packages.iterdir():
            path.unlink()
        measures = []
        for _, wanted in steps:
            (allowlist / "bench.yaml").write_text(_entries(wanted))
            _lock(allowlist, env, root / "lock.log")
            measures.append(side.measured(allowlist, upstream, registry))
        results[side.name] = measures
    return [
        Row(label, results["manual"][position], results["pipgate"][position])
        for position, (label, _) in enumerate(steps)
    ]


if __name__ == "__main__":
    raise SystemExit(main())
