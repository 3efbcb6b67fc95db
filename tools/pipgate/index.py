"""Reading package indexes: PEP 503 HTML and PEP 691 JSON project pages, and find-links.

Requests go through the one HTTP client (``pipgate.http``). Pages give each file's name, URL,
sha256, ``requires-python``, yanked state and (PEP 700) upload time; a file
listed without a sha256 is fetched and hashed, never trusted unhashed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html.parser
import json
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from pipgate.errors import ExternalError
from pipgate.http import TRAFFIC, HttpError, client
from pipgate.names import Version, file_release, normalize
from pipgate.urls import redact_url

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)


class IndexReadError(ExternalError):
    """An index could not be read."""


@dataclasses.dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str
    requires_python: str | None = None
    yanked: str | None = None
    """None when not yanked; the reason (possibly empty) when yanked."""
    upload_time: str | None = None


@dataclasses.dataclass(frozen=True)
class ProjectPage:
    """A project's page: its files and, where the index publishes it, its status (PEP 792)."""

    files: tuple[IndexFile, ...]
    status: str | None = None
    """``active``, ``archived``, ``quarantined`` or ``deprecated``; None when not published."""
    status_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Source:
    """Where pip looks: an index root (``/simple/``) or a find-links location."""

    url: str
    find_links: bool = False


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))
        elif tag == "meta":
            found = dict(attrs)
            name, content = found.get("name"), found.get("content")
            if name and content is not None:
                self.meta[name] = content


def parse_html(text: str, base: str) -> list[tuple[str, str, str | None, str | None, str | None]]:
    parser = _Anchors()
    parser.feed(text)
    return _rows(parser, base)


def _rows(parser: _Anchors, base: str) -> list[tuple[str, str, str | None, str | None, str | None]]:
    out: list[tuple[str, str, str | None, str | None, str | None]] = []
    for attrs in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(base, href)
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        yanked = attrs.get("data-yanked")
        out.append(
            (
                filename,
                url,
                attrs.get("data-requires-python"),
                yanked if "data-yanked" in attrs else None,
                attrs.get("data-upload-time"),  # not standard; read where an index gives it
            )
        )
    return out


def split_sha256(url: str) -> tuple[str, str | None]:
    base, _, fragment = url.partition("#")
    params = urllib.parse.parse_qs(fragment)
    digest = params.get("sha256", [None])[0]
    return base, digest


def _get(url: str) -> tuple[str, str]:
    """GET a page; returns (text, content type). file:// URLs are read from disk."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.parse.unquote(parts.path))
        if path.is_dir():
            path = path / "index.html"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _NotFound from None
        except OSError as exc:
            raise IndexReadError(f"cannot read {path}: {exc.strerror}") from None
        TRAFFIC.add(len(data))
        return data.decode("utf-8", "replace"), "text/html"
    try:
        response = client().get(url, headers={"Accept": ACCEPT})
    except HttpError as exc:
        raise IndexReadError(
            f"cannot reach the index at {redact_url(url)}: {exc.reason}",
            hint="check that the index is up and reachable from here, then run again",
        ) from None
    if response.status_code == 404:
        raise _NotFound
    if response.status_code in (401, 403):
        raise IndexReadError(
            f"the index refused access to {redact_url(url)} (HTTP {response.status_code})",
            hint="provide credentials through the environment or keyring",
        )
    if response.status_code >= 400:
        raise IndexReadError(
            f"the index answered HTTP {response.status_code} for {redact_url(url)}"
        )
    return response.text, response.headers.get("Content-Type", "")


class _NotFound(Exception):  # noqa: N818 - internal signal, never shown
    pass


def project_files(source: Source, project: str) -> tuple[IndexFile, ...]:
    """Every file ``source`` lists for ``project`` (normalised name); [] when unknown there."""
    return project_page(source, project).files


def project_page(source: Source, project: str) -> ProjectPage:
    """``project``'s page at ``source``: no files when the project is unknown there."""
    if source.find_links:
        return ProjectPage(tuple(_find_links_files(source, project)))
    page = source.url.rstrip("/") + f"/{project}/"
    try:
        text, content_type = _get(page)
    except _NotFound:
        return ProjectPage(())
    rows: list[tuple[str, str, str | None, str | None, str | None]]
    status: dict[str, Any] = {}
    if "json" in content_type:
        rows = []
        document = json.loads(text)
        found = document.get("project-status")
        status = found if isinstance(found, dict) else {}
        for item in document.get("files", []):
            url = urllib.parse.urljoin(page, item["url"])
            digest = (item.get("hashes") or {}).get("sha256")
            if digest:
                url = f"{url.partition('#')[0]}#sha256={digest}"
            yanked = item.get("yanked", False)
            reason = None if yanked is False else ("" if yanked is True else str(yanked))
            rows.append(
                (
                    item["filename"],
                    url,
                    item.get("requires-python"),
                    reason,
                    item.get("upload-time"),
                )
            )
    else:
        parser = _Anchors()
        parser.feed(text)
        rows = _rows(parser, page)
        status = {
            "status": parser.meta.get("pypi:project-status"),
            "reason": parser.meta.get("pypi:project-status-reason"),
        }
    return ProjectPage(
        tuple(_hashed(*row) for row in rows),
        status=str(status["status"]) if status.get("status") else None,
        status_reason=str(status["reason"]) if status.get("reason") else None,
    )


def _hashed(
    filename: str,
    url: str,
    requires_python: str | None,
    yanked: str | None,
    upload_time: str | None,
) -> IndexFile:
    base, digest = split_sha256(url)
    if digest is None:
        digest = hash_url(base)
    return IndexFile(filename, base, digest.lower(), requires_python, yanked, upload_time)


def hash_url(url: str) -> str:
    """sha256 of the file at ``url``, streamed (used only where an index lists no hash)."""
    return _stream(url, None)


def download(url: str, target: Path) -> str:
    """Stream the file at ``url`` to ``target``; its sha256."""
    with target.open("wb") as handle:
        return _stream(url, handle)


def _stream(url: str, sink: IO[bytes] | None) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        digest = hashlib.sha256()
        with Path(urllib.parse.unquote(parts.path)).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                TRAFFIC.add(len(chunk))
                if sink is not None:
                    sink.write(chunk)
        return digest.hexdigest()
    try:
        status, found = client().download(url, sink)
    except HttpError as exc:
        raise IndexReadError(f"cannot fetch {redact_url(url)}: {exc.reason}") from None
    if status >= 400:
        raise IndexReadError(f"cannot fetch {redact_url(url)}: HTTP {status}")
    return found


def _find_links_files(source: Source, project: str) -> list[IndexFile]:
    parts = urllib.parse.urlsplit(source.url)
    if parts.scheme in ("", "file"):
        folder = Path(urllib.parse.unquote(parts.path if parts.scheme else source.url))
        if not folder.is_dir():
            return []
        return [
            IndexFile(path.name, path.as_uri(), hash_url(path.as_uri()))
            for path in sorted(folder.iterdir())
            if _belongs(path.name, project)
        ]
    try:
        text, _ = _get(source.url)
    except _NotFound:
        return []
    return [_hashed(*row) for row in parse_html(text, source.url) if _belongs(row[0], project)]


def _belongs(filename: str, project: str) -> bool:
    stem = filename.split("-", 1)[0]
    return normalize(stem) == project


def files_for_version(
    files: Iterable[IndexFile], project: str, version: Version | str
) -> list[IndexFile]:
    """The files of one release, matched by the version in their names."""
    wanted = version if isinstance(version, Version) else Version(version)
    return [item for item in files if file_release(item.filename) == (project, wanted)]
