"""The offline OSV database: building its index, and auditing a 300-pin lock against it.

Run by `nox -s bench` (or `python benchmarks/bench_osv.py`). The database is the real
snapshot in tests/data/osv plus GENERATED records made from it: each a copy of one of the
snapshot's records (its ranges, versions, aliases and text) under a new id and a new
package name, written as YAML like the PyPA advisory database. Reported: the first read
(every record parsed, the index written), a later read (the index), and an audit of a
300-pin lock (the real pip-audit against the local OSV server, `pipgate audit`'s own path)
after that, with peak memory; against the targets (30 s, 2 s, 300 MB).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipgate.audit.osv import RACY_SECONDS

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "tests" / "data" / "osv"
GENERATED = 20_000
PINS = 300
TARGETS = {"index_seconds": 30.0, "audit_seconds": 2.0, "peak_mb": 300.0}


def _templates() -> list[dict[str, object]]:
    out = []
    for path in sorted(SNAPSHOT.rglob("*")):
        if path.suffix in (".yaml", ".json") and path.is_file():
            text = path.read_text(encoding="utf-8")
            record = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            if isinstance(record, dict) and record.get("affected"):
                out.append(record)
    return out


def build_export(folder: Path) -> None:
    shutil.copytree(SNAPSHOT, folder)
    templates = _templates()
    for i in range(GENERATED):
        record = json.loads(json.dumps(templates[i % len(templates)], default=str))
        record["id"] = f"GEN-2024-{i}"
        record["aliases"] = [f"CVE-2099-{i}"]
        name = f"gen-pkg-{i % (GENERATED // 4)}"
        for affected in record["affected"]:
            affected["package"] = {"ecosystem": "PyPI", "name": name}
        target = folder / "generated" / name / f"{record['id']}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")


def lock_file(path: Path) -> None:
    lines = []
    for i in range(PINS):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        lines.append(f"gen-pkg-{i}==1.0 \\\n    --hash=sha256:{digest}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _child(code: str, *args: str) -> dict[str, float]:
    """``code`` in a fresh interpreter (as each audit is its own process): its JSON answer,
    with its wall time and its own peak memory (children included)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    answer: dict[str, float] = json.loads(done.stdout)
    answer["seconds"] = time.monotonic() - started
    return answer


_LOAD = """
import json, resource, sys
from pathlib import Path
from pipgate.audit.osv import load_database
database = load_database(Path(sys.argv[1]), Path(sys.argv[2]))
who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
peak = max(resource.getrusage(r).ru_maxrss for r in who)
print(json.dumps({"records": database.count, "peak_mb": peak / 1024}))
"""

_AUDIT = """
import json, resource, sys
from pathlib import Path
from pipgate.allowlist.model import AuditService
from pipgate.audit.interface import Source
from pipgate.audit.osv import Server, load_database
from pipgate.audit.pip_audit import PipAuditor
database = load_database(Path(sys.argv[1]), Path(sys.argv[2]))
with Server(database) as server:
    audited, skipped = PipAuditor(AuditService.OSV, server.url, Source("bench")).audit(
        Path(sys.argv[3])
    )
who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
peak = max(resource.getrusage(r).ru_maxrss for r in who)
print(json.dumps({
    "findings": sum(len(p.vulnerabilities) for p in audited),
    "audited": len(audited), "skipped": len(skipped), "peak_mb": peak / 1024,
}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pipgate-bench-osv-") as scratch:
        export, index = Path(scratch) / "osv", Path(scratch) / "index"
        build_export(export)
        # An export is fetched before it is audited: past the window in which a file's
        # stat is not yet taken for its content (osv.RACY_SECONDS).
        time.sleep(RACY_SECONDS + 0.5)
        lock = Path(scratch) / "requirements.txt"
        lock_file(lock)
        first = _child(_LOAD, str(export), str(index))
        later = _child(_LOAD, str(export), str(index))
        audit = _child(_AUDIT, str(export), str(index), str(lock))
    results = {
        "records": int(first["records"]),
        "index_seconds": round(first["seconds"], 2),
        "index_peak_mb": round(first["peak_mb"], 1),
        "indexed_read_seconds": round(later["seconds"], 2),
        "audit_seconds": round(audit["seconds"], 2),
        "peak_mb": round(audit["peak_mb"], 1),
        "findings": int(audit["findings"]),
        "skipped": int(audit["skipped"]),
    }
    misses = [key for key, limit in TARGETS.items() if results[key] > limit]
    print(
        f"osv benchmark: {results['records']} records; index built in "
        f"{results['index_seconds']} s ({results['index_peak_mb']} MB; target 30 s), read "
        f"again in {results['indexed_read_seconds']} s; an audit of {PINS} pins, in its own "
        f"process with the index, {results['audit_seconds']} s (target 2 s; "
        f"{results['findings']} findings, {results['skipped']} skipped), peak "
        f"{results['peak_mb']} MB (target 300 MB)"
    )
    print("targets: " + ("; ".join(f"{m} missed" for m in misses) if misses else "all met"))
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    sys.exit(main())
