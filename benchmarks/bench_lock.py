"""Locking: `pipgate lock` against plain `pip-compile --generate-hashes`, on the same input.

Run by `nox -s bench` (or `python benchmarks/bench_lock.py --allowlist allowlist`). Both
runs resolve the same target's requirements with pip's own configured index,
each with an empty pip cache, through a local CONNECT proxy that counts every
byte that crosses the network; the report gives wall time and bytes for each
and the ratios. Files that pip reads from local find-links or file:// indexes
cross no network and are not counted for either run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import select
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pipgate.allowlist import load
from pipgate.toolenv import pip_compile_command

TIME_TARGET = 3.0
BYTES_TARGET = 20.0


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
        with upstream:
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


@dataclasses.dataclass(frozen=True)
class Run:
    label: str
    seconds: float
    network_bytes: int


def _run(label: str, args: list[str], env: dict[str, str], cwd: Path) -> Run:
    COUNTER.take()
    started = time.monotonic()
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    moved = COUNTER.take()
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{label} failed with exit code {result.returncode}")
    return Run(label, round(elapsed, 2), moved)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--allowlist", default="allowlist")
    parser.add_argument("--target", default=None, help="default: the first target")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 unless pipgate is {TIME_TARGET:g}x faster and {BYTES_TARGET:g}x lighter",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    allowlist = load(Path(args.allowlist))
    targets = {t.name: t for t in allowlist.config.targets}
    target = targets[args.target] if args.target else allowlist.config.targets[0]
    requirements = [e.requirement for e in allowlist.packages_for(target)]

    proxy = _Proxy(("127.0.0.1", 0), _Tunnel)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"

    results = []
    with tempfile.TemporaryDirectory(prefix="pipgate-bench-") as scratch:
        root = Path(scratch)
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

        plain = root / "plain"
        plain.mkdir()
        (plain / "requirements.in").write_text("".join(f"{r}\n" for r in requirements))
        env = {**base_env, "PIP_CACHE_DIR": str(root / "plain-cache")}
        results.append(
            _run(
                "pip-compile --generate-hashes",
                [
                    *pip_compile_command(target.python),
                    "--no-config",
                    "--quiet",
                    "--generate-hashes",
                    "--allow-unsafe",
                    "--strip-extras",
                    "--cache-dir",
                    str(root / "plain-cache"),
                    "--output-file",
                    "requirements.txt",
                    "requirements.in",
                ],
                env,
                plain,
            )
        )
        plain_pins = sum(
            1
            for line in (plain / "requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")
        )

        env = {
            **base_env,
            "PIP_CACHE_DIR": str(root / "pipgate-cache"),
            "PIPGATE_CACHE_DIR": os.environ.get("PIPGATE_CACHE_DIR", str(root / "tools")),
        }
        results.append(
            _run(
                "pipgate lock",
                [
                    sys.executable,
                    "-m",
                    "pipgate",
                    "lock",
                    "--allowlist",
                    args.allowlist,
                    "--target",
                    target.name,
                    "--upgrade",
                    "--generated",
                    str(root / "generated"),
                ],
                env,
                Path.cwd(),
            )
        )
        lock_text = (root / "generated" / target.name / "requirements.txt").read_text()
        pipgate_pins = sum(
            1 for line in lock_text.splitlines() if "==" in line and not line.startswith("#")
        )

    plain_run, ours = results
    time_ratio = plain_run.seconds / max(ours.seconds, 0.001)
    bytes_ratio = plain_run.network_bytes / max(ours.network_bytes, 1)
    report = {
        "target": target.name,
        "requirements": len(requirements),
        "pins": {"plain": plain_pins, "pipgate": pipgate_pins},
        "runs": [dataclasses.asdict(r) for r in results],
        "time_ratio": round(time_ratio, 1),
        "bytes_ratio": round(bytes_ratio, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"lock benchmark: target {target.name}, {len(requirements)} entries, "
            f"{plain_pins} pins (pip-compile) / {pipgate_pins} pins (pipgate)"
        )
        for run in results:
            print(f"  {run.label:<32} {run.seconds:>8.1f} s {run.network_bytes / 1e6:>10.1f} MB")
        print(
            f"  pipgate is {time_ratio:.1f}x faster and {bytes_ratio:.1f}x lighter in bytes "
            f"(targets: {TIME_TARGET:g}x and {BYTES_TARGET:g}x)"
        )
    if args.check and (time_ratio < TIME_TARGET or bytes_ratio < BYTES_TARGET):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
