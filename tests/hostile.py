"""A hostile package index on 127.0.0.1, for the trust-boundary tests.

It serves real files (small wheels from a folder) through PEP 691 JSON pages
that pip and pipgate both read, and lets a test make any path answer the
worst a server could: extra entries with path-like names, local-version
siblings, redirects to another origin, endless or dripping pages, files
larger than published, malformed JSON or HTML, injected text. Every loop it
runs is bounded in bytes and time, and it stops with the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

MAX_SECONDS = 120.0
"""No answer of this server lasts longer, whatever a test asks."""
MAX_BYTES = 1 << 30
"""No answer of this server sends more, whatever a test asks."""

Handler = Callable[["_Request"], None]


def _project_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    except ValueError:
        return None


@dataclasses.dataclass
class HostileIndex:
    """The index; ``url`` is its simple root (``http://127.0.0.1:PORT/simple/``)."""

    folder: Path
    routes: dict[str, Handler] = dataclasses.field(default_factory=dict)
    """Paths that answer as a test says, instead of the normal page or file."""
    extra: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    """Entries added to a project's JSON page, after its real files."""
    status: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    """A project's PEP 792 status object."""
    seen: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        index = self

        class Request(_Request):
            server_index = index

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Request)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.origin}/simple/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def files_of(self, project: str) -> list[Path]:
        return sorted(
            p for p in self.folder.iterdir() if _project_of(p.name) == canonicalize_name(project)
        )

    def entry(self, path: Path, **changes: Any) -> dict[str, Any]:
        """The JSON entry of a real file, with ``changes`` (say, another filename)."""
        data = path.read_bytes()
        entry: dict[str, Any] = {
            "filename": path.name,
            "url": f"/files/{urllib.parse.quote(path.name)}",
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "size": len(data),
        }
        entry.update(changes)
        return entry

    def page(self, project: str) -> dict[str, Any]:
        name = canonicalize_name(project)
        files = [self.entry(p) for p in self.files_of(name)]
        document: dict[str, Any] = {
            "meta": {"api-version": "1.1"},
            "name": name,
            "files": files + self.extra.get(name, []),
        }
        if name in self.status:
            document["project-status"] = self.status[name]
        return document


class _Request(http.server.BaseHTTPRequestHandler):
    server_index: HostileIndex
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        index = self.server_index
        path = urllib.parse.urlsplit(self.path).path
        index.seen.append(path)
        handler = index.routes.get(path)
        if handler is not None:
            handler(self)
            return
        if path.startswith("/simple/") and path.count("/") == 3:
            project = path.split("/")[2]
            if not index.files_of(project) and project not in index.extra:
                self.answer(404, b"not found", "text/plain")
                return
            body = json.dumps(index.page(project)).encode()
            self.answer(200, body, "application/vnd.pypi.simple.v1+json")
            return
        if path.startswith("/files/"):
            name = urllib.parse.unquote(path[len("/files/") :])
            found = index.folder / name
            if "/" not in name and found.is_file():
                self.answer(200, found.read_bytes(), "application/octet-stream")
                return
        self.answer(404, b"not found", "text/plain")

    def answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# -- what a route can answer -------------------------------------------------------------------


def raw(body: bytes, content_type: str = "application/vnd.pypi.simple.v1+json") -> Handler:
    return lambda request: request.answer(200, body, content_type)


def redirect(location: str, status: int = 302) -> Handler:
    return lambda request: request.answer(status, b"", "text/plain", Location=location)


def endless(content_type: str = "application/vnd.pypi.simple.v1+json") -> Handler:
    """A page that never ends (until the client hangs up, or MAX_BYTES)."""

    def answer(request: _Request) -> None:
        request.send_response(200)
        request.send_header("Content-Type", content_type)
        request.end_headers()
        block = b'{"files": [' + b" " * (1 << 20)
        sent = 0
        with contextlib.suppress(OSError):
            while sent < MAX_BYTES:
                request.wfile.write(block)
                sent += len(block)
        request.close_connection = True

    return answer


def drip(*, in_headers: bool = False, every: float = 0.5) -> Handler:
    """One byte every ``every`` seconds, in the body or already in the headers."""

    def answer(request: _Request) -> None:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            if in_headers:
                request.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            else:
                request.send_response(200)
                request.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                request.send_header("Content-Length", "1000000")
                request.end_headers()
            while time.monotonic() - started < MAX_SECONDS:
                request.wfile.write(b"a" if in_headers else b" ")
                request.wfile.flush()
                time.sleep(every)
        request.close_connection = True

    return answer


def larger_than_published(data: bytes, extra: int) -> Handler:
    """A file's bytes, then ``extra`` more than its page said it holds."""

    def answer(request: _Request) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(len(data) + extra))
        request.end_headers()
        with contextlib.suppress(OSError):
            request.wfile.write(data)
            left = extra
            while left > 0:
                chunk = b"\0" * min(left, 1 << 20)
                request.wfile.write(chunk)
                left -= len(chunk)

    return answer


@contextlib.contextmanager
def hostile_index(folder: Path) -> Iterator[HostileIndex]:
    index = HostileIndex(folder)
    try:
        yield index
    finally:
        index.stop()
