"""``pipgate osv-sync``: the ways an organisation gets OSV data, made one export folder.

Sources, in any number and mix:

- a folder of OSV records in JSON or YAML: a clone of the PyPA advisory
  database (``vulns/<project>/PYSEC-*.yaml``), a clone of the OpenSSF
  malicious-packages project (``osv/malicious/pypi/<project>/MAL-*.json``;
  its other ecosystems are left out), an earlier export;
- an ecosystem's ``all.zip``, as a file or as an http(s) URL (downloaded
  through pipgate's client: bounded, no redirect to another origin).

Only records that name a PyPI package are kept. The same id from two sources is
one record (the one modified last). Records that are aliases of one another for
a package they both name (directly or through a shared alias such as a CVE) are
one vulnerability (the records of two packages that share a CVE stay two): one
record is kept, a malicious-package report (``MAL-``) before a PYSEC record
before a GHSA one before others, so that no merge hides a malicious report;
it gains every id of the group as an alias and every affected range of its
non-withdrawn members, so the merged record is affected wherever any of them
is (fail closed).

The export is ``records/<ID>.json``, one record per file, and
``pipgate-osv.json``: when its data was fetched (the oldest of its sources'
times: a URL fetched now, a git clone's newest commit, an earlier export's own
time; ``null`` when a source tells none, and the newest record then dates the
export), what it was made from, and its counts. It replaces the output folder
whole, in one rename, and refuses a folder that is not an earlier export.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pipgate.allowlist.spec import is_malicious_id
from pipgate.audit.osv import (
    META_NAME,
    OsvDatabaseError,
    parse_time,
    parsed_records,
    pypi_names,
    recorded_fetch_time,
)
from pipgate.errors import ExternalError, InputError
from pipgate.fsutil import write_atomic
from pipgate.http import HttpError, client
from pipgate.runner import redact, run, tool_environment

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
"""An OSV id as a file name: what every real id looks like, and nothing that leaves the
records folder (no separator, no leading dot)."""
CREATED_BY = "pipgate osv-sync"


class OsvSyncError(ExternalError):
    """A source could not be fetched (exit 3)."""


@dataclasses.dataclass(frozen=True)
class SourceReport:
    source: str
    """As given, credentials hidden."""
    kind: str
    """``folder``, ``git clone``, ``export``, ``zip`` or ``url``."""
    records: int
    """Records naming a PyPI package."""
    fetched: str | None
    """When its data was fetched, where the source tells."""


@dataclasses.dataclass(frozen=True)
class SyncResult:
    output: Path
    records: int
    """Records written."""
    read: int
    """Records read from every source (PyPI only), before merging."""
    same_id: int
    """Copies of an id already read from another source."""
    merged: int
    """Records folded into another as its aliases."""
    malicious: int
    withdrawn: int
    newest: str | None
    fetched: str | None
    sources: tuple[SourceReport, ...]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _git_time(folder: Path) -> str | None:
    """The commit time of a clone's HEAD: its data is at most as new as that."""
    if not (folder / ".git").exists():
        return None
    done = run(
        ["git", "-C", str(folder), "log", "-1", "--format=%cI"],
        env=tool_environment(),
        timeout=60,
    )
    stamp = done.stdout.strip()
    parsed = parse_time(stamp) if done.returncode == 0 else None
    if parsed is None:
        raise OsvSyncError(
            f"{folder} looks like a git clone, but git cannot tell its HEAD commit's time: "
            f"{done.stderr.strip()[-300:]}",
            hint="clone it again (git clone --depth 1 works)",
        )
    return _iso(parsed)


def _download(url: str, scratch: Path) -> Path:
    target = scratch / f"download-{uuid.uuid4().hex}.zip"
    shown = redact(url)
    try:
        with target.open("wb") as sink:
            status, _ = client().download(url, sink)
    except HttpError as exc:
        raise OsvSyncError(f"cannot fetch {shown}: {exc}", hint=exc.hint) from None
    if status >= 400:
        raise OsvSyncError(
            f"{shown} answered HTTP {status}", hint="check the URL of the all.zip export"
        )
    if not zipfile.is_zipfile(target):
        raise OsvSyncError(
            f"{shown} did not send a zip archive",
            hint="give the URL of an ecosystem's all.zip export",
        )
    return target


def _read_source(
    given: str, scratch: Path, now: datetime.datetime
) -> tuple[SourceReport, list[dict[str, Any]]]:
    shown = redact(given)
    if given.startswith(("http://", "https://")):
        path, kind, fetched = _download(given, scratch), "url", _iso(now)
    else:
        path = Path(given)
        if not path.exists():
            raise InputError(
                f"no OSV source at {given}",
                hint="give a folder of OSV records (a clone of the PyPA advisory database or "
                "of the malicious-packages project), an all.zip file, or its URL",
            )
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise InputError(
                    f"{given} is neither a folder nor a zip archive",
                    hint="give a folder of OSV records or an all.zip export",
                )
            kind, fetched = "zip", None
        elif (path / META_NAME).is_file():
            kind, fetched = "export", recorded_fetch_time(path)
        elif (path / ".git").exists():
            kind, fetched = "git clone", _git_time(path)
        else:
            kind, fetched = "folder", None
    read = []
    for where, record, names in parsed_records(path):
        if not names:
            continue  # another ecosystem's record
        identifier = record.get("id")
        if not isinstance(identifier, str) or not SAFE_ID.match(identifier):
            raise OsvDatabaseError(
                f"{redact(where)}: the record's id {str(identifier)[:80]!r} is not an OSV id",
                hint="remove the file from the source, or fix its id",
            )
        read.append(record)
    return SourceReport(shown, kind, len(read), fetched), read


def _modified(record: dict[str, Any]) -> datetime.datetime:
    stamp = record.get("modified") or record.get("published")
    parsed = parse_time(stamp) if isinstance(stamp, str) else None
    return parsed or datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _rank(record: dict[str, Any]) -> tuple[int, str]:
    identifier = str(record["id"])
    order = (
        0
        if is_malicious_id(identifier)
        else 1
        if identifier.startswith("PYSEC-")
        else 2
        if identifier.startswith("GHSA-")
        else 3
    )
    return order, identifier


def _aliases(record: dict[str, Any]) -> list[str]:
    listed = record.get("aliases")
    return [a for a in listed if isinstance(a, str)] if isinstance(listed, list) else []


class _Groups:
    """Union-find over ids and aliases."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def join(self, first: str, second: str) -> None:
        a, b = self.find(first), self.find(second)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _merge(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    live = [m for m in members if not m.get("withdrawn")]
    chosen = sorted(live or members, key=_rank)
    primary: dict[str, Any] = json.loads(json.dumps(chosen[0]))
    if len(members) == 1:
        return primary
    ids = {str(m["id"]) for m in members} | {a for m in members for a in _aliases(m)}
    primary["aliases"] = sorted(ids - {primary["id"]})
    affected = list(primary.get("affected") or [])
    seen = {_canonical(a) for a in affected}
    for other in chosen[1:]:
        for entry in other.get("affected") or ():
            key = _canonical(entry)
            if key not in seen:
                seen.add(key)
                affected.append(entry)
    primary["affected"] = affected
    newest = max(members, key=_modified)
    if newest.get("modified"):
        primary["modified"] = newest["modified"]
    specific = primary.get("database_specific")
    if specific is None or isinstance(specific, dict):
        primary["database_specific"] = {
            **(specific or {}),
            "pipgate_merged_from": sorted(str(m["id"]) for m in members),
        }
    return primary


def merge_records(reads: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """The records, one per id and one per group of aliases; with how many copies of an id
    were dropped and how many records were folded into another."""
    by_id: dict[str, dict[str, Any]] = {}
    same_id = 0
    for record in reads:
        identifier = str(record["id"])
        kept = by_id.get(identifier)
        if kept is not None:
            same_id += 1
            if _modified(record) <= _modified(kept):
                continue
        by_id[identifier] = record
    # Records are one vulnerability when they share an id or alias for a package they both
    # name: a PYSEC record and its GHSA twin, never two packages' records of one CVE.
    groups = _Groups()
    for identifier, record in by_id.items():
        groups.find(identifier)
        for name in pypi_names(record):
            for alias in (identifier, *_aliases(record)):
                groups.join(identifier, f"{alias}\0{name}")
    members: dict[str, list[dict[str, Any]]] = {}
    for identifier, record in by_id.items():
        members.setdefault(groups.find(identifier), []).append(record)
    merged = [_merge(group) for group in members.values()]
    merged.sort(key=lambda r: str(r["id"]))
    return merged, same_id, len(by_id) - len(merged)


def _check_output(output: Path) -> None:
    if output.is_file() or output.is_symlink():
        raise InputError(f"{output} is not a folder", hint="give --output a folder for the export")
    if output.is_dir() and any(output.iterdir()) and not (output / META_NAME).is_file():
        raise InputError(
            f"{output} is not empty and is not an export osv-sync made (no {META_NAME}): "
            "it is never replaced",
            hint="give --output a new folder, or the folder of an earlier osv-sync",
        )


def sync_export(
    sources: Sequence[str],
    output: Path,
    *,
    now: datetime.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> SyncResult:
    """Read every source, merge, and write the export at ``output`` in one rename."""
    if not sources:
        raise InputError("no OSV source given", hint="name at least one folder, zip or URL")
    _check_output(output)
    moment = now or _now()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".osv-sync-", dir=output.parent) as scratch:
        reports: list[SourceReport] = []
        reads: list[dict[str, Any]] = []
        for given in sources:
            report, read = _read_source(given, Path(scratch), moment)
            if progress is not None:
                progress(f"{report.source}: {report.records} PyPI records ({report.kind})")
            reports.append(report)
            reads.extend(read)
        if not reads:
            raise OsvDatabaseError(
                "no source holds a record naming a PyPI package",
                hint="an empty export would let every package pass: check the sources",
            )
        records, same_id, merged = merge_records(reads)
        times = [r.fetched for r in reports]
        known = [t for t in times if t is not None]
        fetched = (
            min(known, key=lambda t: parse_time(t) or moment) if len(known) == len(times) else None
        )
        newest = max((str(r.get("modified") or "") for r in records), default="") or None
        fresh = Path(scratch) / "export"
        folder = fresh / "records"
        folder.mkdir(parents=True)
        for record in records:
            text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            (folder / f"{record['id']}.json").write_text(text, encoding="utf-8")
        result = SyncResult(
            output,
            len(records),
            len(reads),
            same_id,
            merged,
            sum(1 for r in records if is_malicious_id(str(r["id"]))),
            sum(1 for r in records if r.get("withdrawn")),
            newest,
            fetched,
            tuple(reports),
        )
        meta = {
            "fetched": fetched,
            "created": _iso(moment),
            "created_by": CREATED_BY,
            **{k: v for k, v in sync_json(result).items() if k not in ("fetched", "output")},
        }
        write_atomic(fresh / META_NAME, json.dumps(meta, indent=2) + "\n")
        _replace(fresh, output)
    return result


def _replace(fresh: Path, output: Path) -> None:
    """``fresh`` at ``output``: the old export moved aside, the new one renamed in, the old
    one removed. A reader sees the old export or the new one, never a mix (or, for the
    instant between the renames, none: the audit then fails closed, naming the path)."""
    old = output.with_name(f".{output.name}.old-{uuid.uuid4().hex}")
    if output.exists():
        output.rename(old)
    fresh.rename(output)
    shutil.rmtree(old, ignore_errors=True)


def sync_json(result: SyncResult) -> dict[str, Any]:
    return {
        "command": "osv-sync",
        "ok": True,
        "output": str(result.output),
        "records": result.records,
        "read": result.read,
        "same_id": result.same_id,
        "merged": result.merged,
        "malicious": result.malicious,
        "withdrawn": result.withdrawn,
        "newest": result.newest,
        "fetched": result.fetched,
        "sources": [dataclasses.asdict(s) for s in result.sources],
    }
