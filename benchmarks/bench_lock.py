"""Locking: `pipgate lock`, with each engine, against the plain tools on the same input.

Run by `nox -s bench` (or `python benchmarks/bench_lock.py`). Two inputs: the
example allowlist, and benchmarks/large/allowlist (a data platform's 360
pins). For each, in one run and each with empty caches: plain `pip-compile`,
`uv pip compile --generate-hashes`, `pipgate lock` with the pip-tools engine
and with the uv engine, and (on the example only; at 360 pins it downloads
every file of every pin from an index without the JSON API)
`pip-compile --generate-hashes`; on the large input also a re-lock after one
entry is added. Everything goes to pip's own configured index through a
local CONNECT proxy that counts the bytes crossing the network; each run's
peak memory is its largest process's. The report gives wall time, bytes and
peak memory per run, the ratios, and the targets they are held to.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import select
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pipgate.allowlist import load
from pipgate.pipconfig import pip_sources
from pipgate.runner import uv_binary
from pipgate.toolenv import pip_compile_command, tool_sources

HASHES_TARGET = 5.0
"""pipgate (pip-tools) at least this many times faster than pip-compile --generate-hashes."""
PLAIN_TARGET = 1.2
"""pipgate (pip-tools) at most this many times plain pip-compile's time."""
UV_TARGET = 1.5
"""pipgate (uv) at most this many times uv pip compile --generate-hashes' time."""
UV_SECONDS = 10.0
"""pipgate (uv), cold, on the large input."""
MEMORY_MB = 500.0
LARGE = Path(__file__).resolve().parent / "large" / "allowlist"
ADDED = "toolz==1.0.0"
"""The entry added to the large input for the re-lock (no dependencies, not in the set)."""


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes = 0

    def add(self, count: int) -> None:
        with self.lock:
            self.bytes += count

    def take(self) -> int:
        with self.lock:
            value, self.bytes = self.bytes, 0
            return value


COUNTER = _Counter()


class _Tunnel(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(65537).decode("latin-1")
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass
        method, target, _ = [*line.split(), "", "", ""][:3]
        if method != "CONNECT":
            self.wfile.write(b"HTTP/1.1 501 Not Implemented\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.wfile.flush()
        client = self.connection
        with upstream, contextlib.suppress(OSError):  # either side may hang up at any time
            sockets = [client, upstream]
            while True:
                readable, _, broken = select.select(sockets, [], sockets, 120)
                if broken or not readable:
                    return
                for sock in readable:
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    COUNTER.add(len(data))
                    (upstream if sock is client else client).sendall(data)


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


_MEASURE = (
    "import resource, subprocess, sys;"
    "r = subprocess.run(sys.argv[1:]);"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
    "sys.stderr.write('\\npeak-kib %d\\n' % u.ru_maxrss);"
    "sys.exit(r.returncode)"
)


@dataclasses.dataclass
class Run:
    label: str
    seconds: float
    network_bytes: int
    peak_mb: float
    pins: int


def _pins(path: Path) -> int:
    return sum(
        1 for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")
    )


def _run(label: str, args: list[str], env: dict[str, str], cwd: Path, output: Path) -> Run:
    COUNTER.take()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    moved = COUNTER.take()
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{label} failed with exit code {result.returncode}")
    peak = int(result.stderr.rsplit("peak-kib ", 1)[-1].split()[0]) / 1024
    return Run(label, round(elapsed, 2), moved, round(peak, 1), _pins(output))


def _bench_input(
    allowlist_dir: Path, root: Path, base_env: dict[str, str], large: bool
) -> dict[str, Any]:
    allowlist = load(allowlist_dir)
    target = allowlist.config.targets[0]
    requirements = [e.requirement for e in allowlist.packages_for(target)]
    work = root / allowlist_dir.name / ("large" if large else "example")
    work.mkdir(parents=True)
    (work / "requirements.in").write_text("".join(f"{r}\n" for r in requirements))
    runs: list[Run] = []

    def env_for(name: str) -> dict[str, str]:
        caches = work / f"cache-{name}"
        return {
            **base_env,
            "PIP_CACHE_DIR": str(caches / "pip"),
            "UV_CACHE_DIR": str(caches / "uv"),
            "PIPGATE_CACHE_DIR": str(caches / "pipgate"),
        }

    compile_command = pip_compile_command(target.python, tool_sources(pip_sources(sys.executable)))
    plain = [*compile_command, "--no-config", "--quiet", "--allow-unsafe", "--strip-extras"]
    if not large:
        out = work / "hashed.txt"
        runs.append(
            _run(
                "pip-compile --generate-hashes",
                [*plain, "--generate-hashes", "--output-file", str(out), "requirements.in"],
                env_for("hashed"),
                work,
                out,
            )
        )
    out = work / "plain.txt"
    runs.append(
        _run(
            "pip-compile",
            [*plain, "--output-file", str(out), "requirements.in"],
            env_for("plain"),
            work,
            out,
        )
    )
    platform = (
        target.platforms[0].replace("manylinux_", "x86_64-manylinux_").removesuffix("_x86_64")
    )
    out = work / "uv.txt"
    runs.append(
        _run(
            "uv pip compile --generate-hashes",
            [
                uv_binary(),
                "pip",
                "compile",
                "--quiet",
                "--generate-hashes",
                "--python-version",
                str(target.python),
                "--python-platform",
                platform,
                "--output-file",
                str(out),
                "requirements.in",
            ],
            env_for("uv"),
            work,
            out,
        )
    )
    for engine in ("pip-tools", "uv"):
        folder = work / f"allowlist-{engine}"
        shutil.copytree(allowlist_dir, folder)
        config = folder / "config.yaml"
        config.write_text(config.read_text() + f"\nlock:\n  engine: {engine}\n")
        generated = work / f"generated-{engine}"
        lock = [
            sys.executable, "-m", "pipgate", "lock", "--allowlist", str(folder),
            "--target", target.name, "--generated", str(generated),
        ]  # fmt: skip
        env = env_for(f"pipgate-{engine}")
        out = generated / target.name / "requirements.txt"
        runs.append(_run(f"pipgate lock ({engine})", lock, env, work, out))
        if large:
            added_name, added_version = ADDED.split("==")
            (folder / "added.yaml").write_text(
                "packages:\n"
                f'  - name: {added_name}\n    version: "{added_version}"\n'
                "    reason: the benchmark's one more entry\n    requested_by: bench\n"
            )
            runs.append(_run(f"pipgate lock ({engine}), one entry added", lock, env, work, out))
    by = {r.label: r for r in runs}
    ratios = {
        "pip-tools / plain pip-compile": by["pipgate lock (pip-tools)"].seconds
        / by["pip-compile"].seconds,
        "pipgate uv / uv pip compile --generate-hashes": by["pipgate lock (uv)"].seconds
        / by["uv pip compile --generate-hashes"].seconds,
    }
    if not large:
        ratios["pip-compile --generate-hashes / pip-tools"] = by[
            "pip-compile --generate-hashes"
        ].seconds / max(by["pipgate lock (pip-tools)"].seconds, 0.001)
    return {
        "input": str(allowlist_dir),
        "target": target.name,
        "entries": len(requirements),
        "runs": [dataclasses.asdict(r) for r in runs],
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
    }


def _misses(report: dict[str, Any]) -> list[str]:
    misses = []
    for item in report["inputs"]:
        ratios = item["ratios"]
        runs = {r["label"]: r for r in item["runs"]}
        if ratios["pip-tools / plain pip-compile"] > PLAIN_TARGET:
            misses.append(f"{item['input']}: pip-tools engine over {PLAIN_TARGET}x pip-compile")
        if ratios["pipgate uv / uv pip compile --generate-hashes"] > UV_TARGET:
            misses.append(f"{item['input']}: uv engine over {UV_TARGET}x uv")
        hashed = ratios.get("pip-compile --generate-hashes / pip-tools")
        if hashed is not None and hashed < HASHES_TARGET:
            misses.append(f"{item['input']}: under {HASHES_TARGET}x --generate-hashes")
        if item["entries"] >= 300 and runs["pipgate lock (uv)"]["seconds"] > UV_SECONDS:
            misses.append(f"{item['input']}: uv engine over {UV_SECONDS} s cold")
        for run in runs.values():
            if run["label"].startswith("pipgate") and run["peak_mb"] > MEMORY_MB:
                misses.append(f"{item['input']}: {run['label']} over {MEMORY_MB} MB")
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--input",
        action="append",
        metavar="ALLOWLIST",
        help="an allowlist folder (default: the example and benchmarks/large/allowlist)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    inputs = [Path(i) for i in args.input] if args.input else [Path("allowlist"), LARGE]

    proxy = _Proxy(("127.0.0.1", 0), _Tunnel)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    base_env = dict(os.environ)
    base_env.update(
        {
            "HTTPS_PROXY": proxy_url,
            "https_proxy": proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    with tempfile.TemporaryDirectory(prefix="pipgate-bench-") as scratch:
        report: dict[str, Any] = {
            "inputs": [
                _bench_input(path.resolve(), Path(scratch), base_env, large=path.resolve() == LARGE)
                for path in inputs
            ]
        }
    misses = _misses(report)
    report["misses"] = misses
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for item in report["inputs"]:
            print(
                f"lock benchmark: {item['input']}, target {item['target']}, "
                f"{item['entries']} entries"
            )
            for run in item["runs"]:
                print(
                    f"  {run['label']:<42} {run['seconds']:>7.1f} s "
                    f"{run['network_bytes'] / 1e6:>8.1f} MB {run['peak_mb']:>7.0f} MB peak "
                    f"{run['pins']:>5} pins"
                )
            for name, value in item["ratios"].items():
                print(f"  {name}: {value:.2f}")
        print("targets: " + ("all met" if not misses else "; ".join(misses)))
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
