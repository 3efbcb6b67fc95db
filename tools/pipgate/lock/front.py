"""The resolver's index: the pages pipgate read and checked, served on 127.0.0.1.

A resolver (pip-compile's pip, uv) left to read the upstream itself reads every
page a second time (pipgate reads them for the hashes), follows whatever a page
links, and sees every file of every release. Instead, for the length of one
resolution, it is given one index on 127.0.0.1 (``IndexFront``), whose project
pages (PEP 691 JSON) are the ones pipgate read through its own client, over all
the sources the target takes packages from:

- each page is fetched once and kept: the entries' pages are read in the background
  from the moment the front starts (the resolver starts at the same time, and waits
  only for a page it asks for before it has been read), any other page when the
  resolver first asks for it; the lock's hashes are then taken from the same pages,
  with no second read;
- only what passed pipgate's checks is listed (plain file names of the project,
  on allowed origins, well-formed hashes); a page pipgate refuses (a redirect off
  its origin, a malformed page) fails the resolution with pipgate's own error;
- only files the target could use: wheels whose tags the target supports, and
  sdists (which the resolver is told whether it may build); an entry's page lists only the
  releases its pin matches (``==1.0`` also matches ``1.0+local``, which the core
  then refuses by name);
- at ``/held/simple/`` the cooldown is applied: no file of a project that is not
  an entry uploaded after the cutoff, so the resolver cannot pick a young
  transitive release (both engines alike; uv's ``--exclude-newer`` and pip's
  ``--uploaded-prior-to`` are not needed, and entries are exempt by name);
- an internal package is never looked up upstream: the front answers 404, and the
  resolver takes it from the private registry alone.

Files on an http(s) origin that needs no credential are linked where they are;
the others (``file://`` sources, an upstream that takes a token) are fetched by
pipgate, checked against their listed sha256, and served from here, so no
credential ever reaches the resolver's command line, environment or output.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import http.server
import json
import re
import shutil
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from packaging.tags import Tag

from pipgate import index
from pipgate.errors import ExternalError
from pipgate.http import PAGE_WORKERS
from pipgate.index import IndexFile, IndexReadError, Keep, Source
from pipgate.names import NormalizedName, normalize
from pipgate.urls import redact_url

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_PROJECT = re.compile(r"^/(?P<held>held/)?simple/(?P<name>[A-Za-z0-9._-]+)/?$")
_FILE = re.compile(r"^/files/(?P<number>[0-9]+)/(?P<name>[^/]+)$")


def target_files(supported: frozenset[Tag]) -> Keep:
    """A first look at a file name: a wheel with a tag the target supports, or an sdist
    (it decides nothing else: the checks still run). Sdists stay listed where the resolver
    may not build them, so that it can say which package has no wheel."""
    tags = frozenset(str(tag) for tag in supported)

    def keep(filename: str) -> bool:
        if not filename.endswith(".whl"):
            return True
        parts = filename[:-4].lower().split("-")
        if len(parts) < 5:
            return True  # not a wheel name: the full check refuses it
        interpreters, abis, platforms = parts[-3:]
        return any(
            f"{i}-{a}-{p}" in tags
            for i in interpreters.split(".")
            for a in abis.split(".")
            for p in platforms.split(".")
        )

    return keep


def _proxied(item: IndexFile) -> bool:
    """Served from the front: not on http(s), or needing the source's credential."""
    return item.credentials is not None or not item.url.lower().startswith(("https:", "http:"))


class IndexFront:
    """One resolution's index (a context manager): ``url``, and ``held_url`` where a
    cooldown holds transitive releases back. ``pages`` holds every project page read (as
    pipgate read it, narrowed by ``keep``, or by the project's own first look in
    ``keeps``); ``settle()`` waits for the pages read in the background (``read``) and
    raises the first error a page or a file met, once the resolver has finished."""

    def __init__(  # noqa: PLR0913 - what one resolution is served from
        self,
        sources: Sequence[Source],
        *,
        keep: Keep,
        keeps: Mapping[NormalizedName, Keep] = {},
        read: Iterable[NormalizedName] = (),
        known: Mapping[str, Sequence[IndexFile]] = {},
        exempt: Iterable[NormalizedName] = (),
        internal: Iterable[NormalizedName] = (),
        cutoff: datetime.datetime | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self.keep = keep
        self.keeps = dict(keeps)
        """A project's own first look (an entry's: the releases its pin matches)."""
        self.read = tuple(sorted(set(read)))
        """Pages read in the background from the start (the entries'), resolver or not."""
        self.known = dict(known)
        """Pages read already: served as they are, never read again."""
        self.exempt = frozenset(exempt)
        """Projects the cooldown does not hold back (the target's entries)."""
        self.internal = frozenset(internal)
        self.cutoff = cutoff
        self.pages: dict[NormalizedName, list[IndexFile]] = {}
        self._guard = threading.Lock()
        self._reading: dict[NormalizedName, threading.Lock] = {}
        # However many projects the resolver asks for at once (uv: every entry at once),
        # no more pages are read at a time than the client has connections for: past
        # that, each read opens and closes a connection of its own.
        self._slots = threading.BoundedSemaphore(PAGE_WORKERS)
        self._broken: dict[NormalizedName, BaseException] = {}
        self._errors: list[BaseException] = []
        self._files: list[IndexFile] = []
        self._reader: concurrent.futures.ThreadPoolExecutor | None = None
        self._numbers: dict[tuple[str, str], int] = {}
        self._scratch: Path | None = None
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------

    def __enter__(self) -> IndexFront:
        self._scratch = Path(tempfile.mkdtemp(prefix="pipgate-front-"))
        front = self

        class Handler(_Handler):
            served = front

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pipgate-front", daemon=True
        )
        self._thread.start()
        if self.read:
            self._reader = concurrent.futures.ThreadPoolExecutor(
                max_workers=PAGE_WORKERS // 2, thread_name_prefix="pipgate-page"
            )
            for name in self.read:
                self._reader.submit(self._read_quietly, name)
        return self

    def _read_quietly(self, name: NormalizedName) -> None:
        with contextlib.suppress(Exception):  # kept by files(), raised by settle()
            self.files(name)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            # An interrupted or failed lock waits only for the pages being read now.
            self._reader.shutdown(wait=True, cancel_futures=kind is not None)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    @property
    def root(self) -> str:
        assert self._server is not None, "the front is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.root}/simple/"

    @property
    def held_url(self) -> str | None:
        return f"{self.root}/held/simple/" if self.cutoff is not None else None

    def settle(self) -> None:
        """Once the resolver has finished: wait for the pages read in the background, then
        raise the first error met (fail closed: a resolver that went on without a page it
        could not have must not pass). A page's error comes first, the first project's by
        name (the same error whatever order the pages were read in), then a file's."""
        if self._reader is not None:
            self._reader.shutdown(wait=True)
        with self._guard:
            broken = sorted(self._broken.items())
            errors = list(self._errors)
        if broken:
            raise broken[0][1]
        if errors:
            raise errors[0]

    def _failed(self, error: BaseException) -> None:
        with self._guard:
            self._errors.append(error)

    # -- what is served --------------------------------------------------------------

    def files(self, name: NormalizedName) -> list[IndexFile]:
        """The project's files over every source, read once (``known`` first); a page that
        failed fails again with the same error, unread."""
        if name in self.known:
            return list(self.known[name])
        with self._guard:
            if name in self.pages:
                return self.pages[name]
            reading = self._reading.setdefault(name, threading.Lock())
        with reading:
            with self._guard:
                if name in self.pages:
                    return self.pages[name]
                if name in self._broken:
                    raise self._broken[name]
            keep = self.keeps.get(name, self.keep)
            found: list[IndexFile] = []
            try:
                with self._slots:
                    for source in self.sources:
                        found.extend(index.project_files(source, name, keep=keep))
            except Exception as error:
                with self._guard:
                    self._broken[name] = error
                raise
            with self._guard:
                self.pages[name] = found
            return found

    def page(self, name: NormalizedName, held: bool) -> bytes | None:
        """The project's page as the resolver sees it; None for no such project here."""
        if name in self.internal:
            return None  # never upstream: the private registry alone has it
        files = self.files(name)
        if not files:
            return None
        if held and self.cutoff is not None and name not in self.exempt:
            cutoff = self.cutoff
            files = [f for f in files if (t := index.uploaded_at(f)) is None or t <= cutoff]
        listed = []
        seen: set[str] = set()
        for item in files:
            if item.filename in seen:
                continue  # the same name from a later source: the first one stands
            seen.add(item.filename)
            listed.append(self._entry(item))
        document = {"meta": {"api-version": "1.0"}, "name": name, "files": listed}
        return json.dumps(document, separators=(",", ":")).encode()

    def _entry(self, item: IndexFile) -> dict[str, object]:
        url = item.url
        if _proxied(item):
            key = (item.url, item.filename)
            with self._guard:
                number = self._numbers.get(key)
                if number is None:
                    number = self._numbers[key] = len(self._files)
                    self._files.append(item)
            url = f"{self.root}/files/{number}/{urllib.parse.quote(item.filename)}"
        entry: dict[str, object] = {
            "filename": item.filename,
            "url": url,
            "hashes": {"sha256": item.sha256} if item.sha256 else {},
        }
        if item.requires_python is not None:
            entry["requires-python"] = item.requires_python
        if item.yanked is not None:
            entry["yanked"] = item.yanked or True
        # A proxied file's metadata is served only where its sha256 lets pipgate check it.
        if item.metadata and (item.metadata_sha256 or not _proxied(item)):
            metadata: object = {"sha256": item.metadata_sha256} if item.metadata_sha256 else True
            entry["core-metadata"] = metadata
            entry["dist-info-metadata"] = metadata  # the name pip before 23.1 reads
        return entry

    def file(self, number: int, name: str) -> tuple[Path, bool] | None:
        """A proxied file (or its metadata), fetched and checked, and whether it is to be
        removed once served; None when not listed."""
        with self._guard:
            item = self._files[number] if number < len(self._files) else None
        if item is None:
            return None
        assert self._scratch is not None
        if name == item.filename + ".metadata" and item.metadata_sha256:
            index.core_metadata(item, self._scratch / "metadata")
            return self._scratch / "metadata" / item.metadata_sha256, False
        if name != item.filename:
            return None
        folder = Path(tempfile.mkdtemp(dir=self._scratch))
        path = folder / item.filename
        found = index.download(item, path)
        if item.sha256 is not None and found != item.sha256:
            raise IndexReadError(
                f"{redact_url(item.url)} (sha256 {found}) is not the file its page lists "
                f"(sha256 {item.sha256})",
                hint="the index serves other files than it lists: check the index",
            )
        return path, True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # A resolver opens many connections at once (uv: one per project it asks for) while
    # pipgate's own reads hold the interpreter; socketserver's backlog of 5 would drop
    # the rest, and the kernel retries a dropped connection only after 1, 3, 7, 15, 31 s.
    request_queue_size = 1024

    def handle_error(self, request: object, client_address: object) -> None:
        """A resolver that drops a connection (uv closes idle ones) is not the lock's error,
        and nothing of it goes to the terminal; what a request met is recorded in do_GET."""


class _Handler(http.server.BaseHTTPRequestHandler):
    served: IndexFront
    protocol_version = "HTTP/1.1"
    server_version = "pipgate-front"

    def log_message(self, format: str, *args: object) -> None:
        pass  # the resolver reports what it needs; nothing here goes to the terminal

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        try:
            project = _PROJECT.match(path)
            if project is not None:
                body = self.served.page(normalize(project["name"]), bool(project["held"]))
                if body is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, body, JSON_TYPE)
                return
            listed = _FILE.match(path)
            if listed is not None:
                found = self.served.file(
                    int(listed["number"]), urllib.parse.unquote(listed["name"])
                )
                if found is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send_file(*found)
                return
            self._send(404, b"not found", "text/plain")
        except ConnectionError:
            return  # the resolver went away mid-answer: nothing to record, nothing to send
        except ExternalError as error:
            self.served._failed(error)
            # A 4xx, not a 5xx: pip and uv retry a 5xx with backoff (pip for 7 s), and the
            # answer would not change; pipgate's own error is raised after the resolver.
            self._send(403, b"pipgate refused what the index sent", "text/plain")
        except Exception as error:  # noqa: BLE001 - raised again by settle(), after the resolver
            self.served._failed(error)
            self._send(500, b"pipgate failed", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_file(self, path: Path, once: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()
        with path.open("rb") as handle:
            shutil.copyfileobj(handle, self.wfile, 1 << 20)
        if once:
            shutil.rmtree(path.parent, ignore_errors=True)
