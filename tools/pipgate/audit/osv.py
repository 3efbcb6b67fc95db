"""An offline OSV database and the OSV query API served from it, for air-gapped audits.

``pipgate osv-serve`` (and ``pipgate audit`` when ``policy.audit.database`` is
set) serves ``POST /v1/query`` on 127.0.0.1 from a local OSV export: a folder
of OSV records in JSON or YAML (such as a clone of the PyPA advisory
database) or an ecosystem's ``all.zip``. pip-audit talks to it as to the
public OSV API (``--osv-url``).

Matching follows the OSV schema: ``versions`` lists compared as PEP 440
versions (so ``2023.07.22`` is ``2023.7.22``), ``ECOSYSTEM`` ranges evaluated
with their events sorted by version (several introduced/fixed pairs, in any
order, ``last_affected`` and ``limit``), prereleases ordered as PEP 440 does,
and withdrawn records never reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import http.server
import json
import os
import sqlite3
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from pipgate.errors import ExternalError, InputError
from pipgate.fsutil import write_atomic
from pipgate.names import NormalizedName, normalize

ECOSYSTEM = "PyPI"
_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
"""libyaml's loader where PyYAML has it (several times faster), else the Python one; both
keep every scalar as text."""
MAX_RECORD_BYTES = 4 * 1024 * 1024


class OsvDatabaseError(InputError):
    """The OSV export cannot be read."""


class OsvServerError(ExternalError):
    """The local OSV server could not start."""


@dataclasses.dataclass(frozen=True)
class Database:
    source: str
    records: Mapping[NormalizedName, tuple[dict[str, Any], ...]]
    count: int
    newest: str | None
    """The newest ``modified`` (or ``published``) time of any record, as written."""
    fetched: str | None = None
    """When the export was fetched, where it records that: ``pipgate-osv.json``'s
    ``fetched`` (an ISO time), written by whatever refreshes the export."""

    def by_id(self, wanted: str) -> dict[str, Any] | None:
        """The record with id ``wanted``."""
        if isinstance(self.records, _Indexed):
            return self.records.by_id(wanted)
        for records in self.records.values():
            for record in records:
                if record.get("id") == wanted:
                    return record
        return None

    def query(self, name: str, version: str) -> list[dict[str, Any]]:
        """The records that affect ``name`` at ``version``, withdrawn ones left out."""
        wanted = normalize(name)
        return [
            record
            for record in self.records.get(wanted, ())
            if not record.get("withdrawn") and affects(record, wanted, version)
        ]


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


_ORDER = {"fixed": 0, "limit": 0, "last_affected": 1, "introduced": 2}


def _in_range(version: Version, events: Iterable[dict[str, Any]]) -> bool:
    parsed: list[tuple[Version | None, int, str]] = []
    for event in events:
        for kind, value in event.items():
            if kind not in _ORDER:
                continue
            text = str(value)
            if kind == "introduced" and text == "0":
                parsed.append((None, _ORDER[kind], kind))  # before every version
                continue
            bound = _version(text)
            if bound is not None:
                parsed.append((bound, _ORDER[kind], kind))
    parsed.sort(key=lambda e: (e[0] is not None, e[0] or Version("0"), e[1]))
    affected = False
    for bound, _, kind in parsed:
        if kind == "introduced":
            if bound is None or version >= bound:
                affected = True
        elif kind in {"fixed", "limit"}:
            if bound is not None and version >= bound:
                affected = False
        elif kind == "last_affected" and bound is not None and version > bound:
            affected = False
    return affected


def affects(record: dict[str, Any], name: NormalizedName, version: str) -> bool:
    """True when the OSV ``record`` lists ``name`` ``version`` as affected."""
    parsed = _version(version)
    for affected in record.get("affected") or ():
        package = affected.get("package") or {}
        if package.get("ecosystem") != ECOSYSTEM:
            continue
        if normalize(str(package.get("name", ""))) != name:
            continue
        for listed in affected.get("versions") or ():
            listed_version = _version(str(listed))
            if listed_version is not None and parsed is not None:
                if listed_version == parsed:
                    return True
            elif str(listed) == version:
                return True
        if parsed is None:
            continue
        for ranged in affected.get("ranges") or ():
            if ranged.get("type") == "ECOSYSTEM" and _in_range(parsed, ranged.get("events", ())):
                return True
    return False


def _records_in(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_file() and path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if member.filename.endswith(".json") and member.file_size <= MAX_RECORD_BYTES:
                        yield member.filename, archive.read(member)
        except zipfile.BadZipFile as exc:
            raise OsvDatabaseError(f"{path} is not a readable zip archive: {exc}") from None
        return
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            is_record = item.suffix in (".json", ".yaml", ".yml") and item.is_file()
            if is_record and item.stat().st_size <= MAX_RECORD_BYTES:
                yield str(item), item.read_bytes()

        return
    raise OsvDatabaseError(
        f"no OSV export at {path}",
        hint="point policy.audit.database (or --database) at a folder of OSV records "
        "or an all.zip export",
    )


INDEX_FORMAT = 2
RACY_SECONDS = 2.0
"""A record file changed this recently may change again within its own mtime's tick: its
stat is not taken as a witness of its content (git's "racily clean" rule)."""


def load_database(path: Path, index_folder: Path | None = None) -> Database:
    """Every OSV record under ``path`` (a folder or an all.zip). With ``index_folder``, read
    through an index kept there under the export's content digest (an SQLite file, one row
    per record and package): the first read parses every record into it, a later read of
    the same content opens it and parses only the records a query asks for. The digest
    covers every record file's name and bytes, so a changed, added or removed record makes
    a new index; the files' names, sizes, modification and change times and inodes, when
    none changed in the last seconds, stand for the digest once it has been computed for
    them."""
    if index_folder is None:
        return _parse_database(path)
    fingerprint, settled = _stat_fingerprint(path)
    witness = index_folder / "stat" / fingerprint
    known = _read_text(witness) if settled else None
    indexed = None if known is None else _Indexed.open(index_folder / f"{known}.sqlite", known)
    if indexed is None or known is None:
        known = _export_digest(path)
        indexed = _indexed(path, index_folder / f"{known}.sqlite", known)
        if indexed is None:
            return _parse_database(path)
    if settled:
        with contextlib.suppress(OSError):
            write_atomic(witness, known)
    return Database(str(path), indexed, indexed.count, indexed.newest, recorded_fetch_time(path))


def _indexed(path: Path, kept: Path, digest: str) -> _Indexed | None:
    """The index of ``digest`` at ``kept``, made from the export's records when it is not
    there yet; None when it cannot be written (only a shortcut for the next audit: that
    costs time only)."""
    indexed = _Indexed.open(kept, digest)
    if indexed is None:
        try:
            _write_index(path, kept, digest)
        except (OSError, sqlite3.Error):
            return None
        indexed = _Indexed.open(kept, digest)
    return indexed


def _read_text(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeError):
        return None
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


def _record_stats(
    folder: str, prefix: str = "", seen: set[tuple[int, int]] | None = None
) -> Iterator[tuple[str, os.stat_result]]:
    """Each file under ``folder`` that may hold a record, by its path under it, with its
    stat: the folder's entries read once each (tens of thousands of records). Linked
    folders are followed, as the reader follows them, each folder once."""
    seen = set() if seen is None else seen
    here = Path(folder).stat()
    if (here.st_dev, here.st_ino) in seen:
        return
    seen.add((here.st_dev, here.st_ino))
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        name = prefix + entry.name
        if entry.is_dir():
            yield from _record_stats(entry.path, name + "/", seen)
        elif entry.name.endswith((".json", ".yaml", ".yml")) and entry.is_file():
            yield name, entry.stat()


def _stat_fingerprint(path: Path) -> tuple[str, bool]:
    """sha256 over each record file's name, size, modification and change times and inode
    (a zip: its own), and whether every one of them is older than ``RACY_SECONDS``."""
    digest = hashlib.sha256(str(path.resolve()).encode() + b"\0")
    horizon = time.time_ns() - int(RACY_SECONDS * 1e9)
    settled = True
    try:
        items = [(path.name, path.stat())] if path.is_file() else _record_stats(str(path))
        for name, stat in items:
            digest.update(
                f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}"
                f"\0{stat.st_ino}\0".encode()
            )
            if max(stat.st_mtime_ns, stat.st_ctime_ns) > horizon:
                settled = False
    except OSError:
        return digest.hexdigest(), False
    return digest.hexdigest(), settled


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE records (name TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL);
"""


def _write_index(path: Path, kept: Path, digest: str) -> None:
    """Every record of the export into a new SQLite file at ``kept``, written beside it and
    moved into place, so a reader never sees half an index."""
    kept.parent.mkdir(parents=True, exist_ok=True)
    scratch = kept.with_name(f".{kept.name}.{uuid.uuid4().hex}")
    try:
        with contextlib.closing(sqlite3.connect(scratch)) as connection:
            connection.executescript(_SCHEMA)
            count, newest = 0, None
            rows: list[tuple[str, str, str]] = []
            for _, record, names in parsed_records(path):
                count += 1
                newest = _newer(newest, record)
                body = json.dumps(record, separators=(",", ":"))
                rows.extend((name, str(record["id"]), body) for name in names)
                if len(rows) >= 2000:
                    connection.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
                    rows.clear()
            if count == 0:
                raise _empty(path)
            connection.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
            connection.execute("CREATE INDEX by_name ON records (name)")
            connection.execute("CREATE INDEX by_id ON records (id)")
            meta = {
                "format": str(INDEX_FORMAT),
                "digest": digest,
                "count": str(count),
                "newest": newest or "",
            }
            connection.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            connection.commit()
        scratch.replace(kept)
    finally:
        scratch.unlink(missing_ok=True)


class _Indexed(Mapping[NormalizedName, tuple[dict[str, Any], ...]]):
    """An index's records by package, each package's parsed on first use."""

    def __init__(self, uri: str, count: int, newest: str | None) -> None:
        self._uri = uri
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[dict[str, Any], ...]] = {}
        self.count = count
        self.newest = newest

    @classmethod
    def open(cls, kept: Path, digest: str) -> _Indexed | None:
        """The index at ``kept`` when it is one of this format for ``digest``, else None."""
        if not kept.is_file():
            return None
        uri = f"{kept.resolve().as_uri()}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
                meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
            count = int(meta["count"])
        except (sqlite3.Error, KeyError, ValueError, TypeError):
            return None
        if meta.get("format") != str(INDEX_FORMAT) or meta.get("digest") != digest:
            return None
        return cls(uri, count, meta.get("newest") or None)

    def _rows(self, sql: str, *args: str) -> list[tuple[str, ...]]:
        """One query, on a connection of its own (opened read-only, closed after)."""
        with self._lock:
            try:
                with contextlib.closing(sqlite3.connect(self._uri, uri=True)) as connection:
                    return connection.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise OsvDatabaseError(
                    f"the OSV index cannot be read: {exc}",
                    hint="delete the osv-index folder in the cache; the next audit makes it again",
                ) from None

    def __getitem__(self, name: str) -> tuple[dict[str, Any], ...]:
        found = self._parsed.get(name)
        if found is None:
            rows = self._rows("SELECT body FROM records WHERE name = ? ORDER BY rowid", name)
            if not rows:
                raise KeyError(name)
            found = tuple(json.loads(body) for (body,) in rows)
            self._parsed[name] = found
        return found

    def by_id(self, wanted: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT body FROM records WHERE id = ? LIMIT 1", wanted)
        return json.loads(rows[0][0]) if rows else None

    def __iter__(self) -> Iterator[NormalizedName]:
        rows = self._rows("SELECT DISTINCT name FROM records ORDER BY name")
        return (NormalizedName(name) for (name,) in rows)

    def __len__(self) -> int:
        return int(self._rows("SELECT COUNT(DISTINCT name) FROM records")[0][0])


def _export_digest(path: Path) -> str:
    """sha256 over every record file's name and bytes (a zip: its bytes)."""
    digest = hashlib.sha256()
    for where, data in _records_in(path):
        name = str(Path(where).relative_to(path)) if path.is_dir() else where
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def parsed_records(path: Path) -> Iterator[tuple[str, dict[str, Any], set[NormalizedName]]]:
    """Each record of the export, where it was read, and the PyPI packages it names."""
    for where, data in _records_in(path):
        try:
            if where.endswith(".json"):
                record = json.loads(data)
            else:
                # Every scalar as text: YAML would turn versions such as 0.10 into numbers.
                record = yaml.load(data, Loader=_LOADER)  # noqa: S506 - a BaseLoader is safe
        except (ValueError, yaml.YAMLError) as exc:
            raise OsvDatabaseError(
                f"{where}: not a readable OSV record: {exc}", hint="fix or remove the file"
            ) from None
        if not isinstance(record, dict) or "id" not in record:
            continue
        yield where, record, pypi_names(record)


def pypi_names(record: dict[str, Any]) -> set[NormalizedName]:
    """The PyPI packages an OSV record names in ``affected``."""
    affected = record.get("affected")
    return {
        normalize(str((a.get("package") or {}).get("name", "")))
        for a in (affected if isinstance(affected, list) else ())
        if isinstance(a, dict)
        and isinstance(a.get("package") or {}, dict)
        and (a.get("package") or {}).get("ecosystem") == ECOSYSTEM
    }


def _newer(newest: str | None, record: dict[str, Any]) -> str | None:
    stamp = str(record.get("modified") or record.get("published") or "")
    return stamp if stamp and (newest is None or stamp > newest) else newest


def _empty(path: Path) -> OsvDatabaseError:
    return OsvDatabaseError(
        f"no OSV record found in {path}",
        hint="an empty database would let every package pass: point it at a real export",
    )


def _parse_database(path: Path) -> Database:
    by_name: dict[NormalizedName, list[dict[str, Any]]] = {}
    count = 0
    newest: str | None = None
    for _, record, names in parsed_records(path):
        count += 1
        newest = _newer(newest, record)
        for name in names:
            by_name.setdefault(name, []).append(record)
    if count == 0:
        raise _empty(path)
    return Database(
        str(path),
        {k: tuple(v) for k, v in by_name.items()},
        count,
        newest,
        recorded_fetch_time(path),
    )


META_NAME = "pipgate-osv.json"
"""Beside the records: ``{"fetched": "<ISO time>"}``, the time the export was fetched."""


def recorded_fetch_time(path: Path) -> str | None:
    meta = path / META_NAME
    if not path.is_dir() or not meta.is_file():
        return None
    try:
        document = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise OsvDatabaseError(
            f"{meta} is not readable JSON", hint='write it as {"fetched": "ISO time"}'
        ) from None
    if isinstance(document, dict) and "fetched" in document and document["fetched"] is None:
        return None  # said on purpose: no source told when it was fetched
    fetched = document.get("fetched") if isinstance(document, dict) else None
    if not isinstance(fetched, str) or parse_time(fetched) is None:
        raise OsvDatabaseError(
            f"{meta} gives no fetch time", hint='write it as {"fetched": "ISO time"}'
        )
    return fetched


def parse_time(text: str) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


class StaleDatabaseError(ExternalError):
    """The export is too old to answer for what was published since (exit 3)."""


def check_fresh(
    database: Database, path: Path, max_days: int, now: datetime.datetime | None = None
) -> None:
    """Fail closed on an export older than ``max_days`` (0: no limit): its age is that of
    its fetch time where it records one (an export merged from several sources records the
    oldest source's: one fresh source does not make a stale one current), else that of its
    newest record."""
    if max_days <= 0:
        return
    now = now or datetime.datetime.now(datetime.UTC)
    told = database.fetched if database.fetched else database.newest
    times = [parsed] if told and (parsed := parse_time(told)) else []
    if not times:
        raise StaleDatabaseError(
            f"the OSV export at {path} tells no time (no record has a modified date): its age "
            "is unknown",
            hint="use a real export, or set policy.audit.max_data_age_days: 0 for data frozen "
            "on purpose",
        )
    age = now - max(times)
    if age > datetime.timedelta(days=max_days):
        said = f"newest record {database.newest}"
        if database.fetched:
            said += f", fetched {database.fetched}"
        raise StaleDatabaseError(
            f"the OSV export at {path} is {age.days} days old ({said}), over "
            f"policy.audit.max_data_age_days ({max_days}): advisories published since are "
            "not known, so the audit cannot answer",
            hint="refresh the export (a fresh clone of the PyPA advisory database or an OSV "
            f"all.zip; record the time in {META_NAME}), or, for data frozen on purpose, set "
            "policy.audit.max_data_age_days: 0 (--max-data-age-days 0 for one run)",
        )


class _Handler(http.server.BaseHTTPRequestHandler):
    database: Database
    server_version = "pipgate-osv"
    # Keep-alive: pip-audit asks once per package, over one connection; each answer is
    # sent at once, not held back by Nagle's algorithm waiting for an acknowledgement.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_json(self) -> object:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > 1024 * 1024:
            # A body left unread would be taken for the next request: this one is the last.
            self.close_connection = True
            return None
        try:
            return json.loads(self.rfile.read(length))
        except ValueError:
            return None

    def _answer(self, query: object) -> dict[str, Any] | None:

        if not isinstance(query, dict):
            return None
        package = query.get("package") or {}
        name, version = package.get("name"), query.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            return None
        if package.get("ecosystem", ECOSYSTEM) != ECOSYSTEM:
            return {}
        found = self.database.query(name, version)
        return {"vulns": found} if found else {}

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_json()
        if path.endswith("/v1/query"):
            answer = self._answer(body)
            if answer is None:
                self._send(400, {"code": 3, "message": "expected package.name and version"})
            else:
                self._send(200, answer)
        elif path.endswith("/v1/querybatch"):
            queries = body.get("queries") if isinstance(body, dict) else None
            if not isinstance(queries, list):
                self._send(400, {"code": 3, "message": "expected queries"})
                return
            results = []
            for query in queries:
                answer = self._answer(query) or {}
                results.append(
                    {
                        "vulns": [
                            {"id": v["id"], "modified": v.get("modified", "")}
                            for v in answer.get("vulns", [])
                        ]
                    }
                )
            self._send(200, {"results": results})
        else:
            self._send(404, {"code": 5, "message": "not found"})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.rsplit("/", 2)[-2:-1] == ["vulns"]:
            wanted = path.rsplit("/", 1)[-1]
            record = self.database.by_id(wanted)
            if record is not None:
                self._send(200, record)
                return
        self._send(404, {"code": 5, "message": "not found"})


class Server:
    """The OSV query API on 127.0.0.1, in a background thread."""

    def __init__(self, database: Database, port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"database": database})
        try:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise OsvServerError(
                f"cannot serve the OSV API on 127.0.0.1:{port}: {exc.strerror}"
            ) from None
        self.httpd.daemon_threads = True
        self.database = database
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/query"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
