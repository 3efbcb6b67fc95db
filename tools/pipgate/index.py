"""Reading package indexes: PEP 503 HTML and PEP 691 JSON project pages, and find-links.

Everything a page says is hostile until checked. Requests go through the one
HTTP client (``pipgate.http``: bounded in size and time, redirects only to
allowed origins). A listed file becomes a candidate only when

- its name is a plain file name (letters, digits and ``._+!-``, no path) that
  parses as a wheel or sdist of the very project the page is for;
- its URL, resolved against the page, stays where the source allows: an
  http(s) page links http(s) files on its own origin or an allowed one (pip's
  own configured index may link any https host, as pip allows it); a file://
  page links only files inside its own tree;
- its sha256, when the page gives one, is 64 hex digits.

A malformed page (not JSON, wrong types, a bad link) is an error that names
the URL, never a traceback and never a silent pass. A file listed without a
sha256 is hashed only when it is needed (``with_hashes``), never trusted
unhashed.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import html.parser
import itertools
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from packaging.specifiers import SpecifierSet

from pipgate.errors import ExternalError
from pipgate.http import (
    SAME_ORIGIN,
    TRAFFIC,
    Credentials,
    HttpError,
    Origins,
    UnreachableError,
    client,
)
from pipgate.names import NormalizedName, Version, exact, file_release, parse_version
from pipgate.urls import origin, redact_url

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)
SAFE_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
"""What a wheel or sdist name may hold: nothing a path or a shell would interpret."""
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_TEXT = 4096
"""A free-text field of a page (yank or status reason) is cut to this many characters."""


class IndexReadError(ExternalError):
    """An index could not be read, or said something pipgate refuses (exit 3)."""


@dataclasses.dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    """None when the page gave none: ``with_hashes`` fetches and hashes the file."""
    requires_python: str | None = None
    yanked: str | None = None
    """None when not yanked; the reason (possibly empty) when yanked."""
    upload_time: str | None = None
    size: int | None = None
    """The size the index published (PEP 700), which bounds the download."""
    origins: Origins = SAME_ORIGIN
    """Where the file's download may be redirected (the page's source's rule)."""
    credentials: Credentials | None = dataclasses.field(default=None, compare=False, repr=False)
    """Sent with the download: the source's, for a file on the source's own origin only."""
    release: tuple[NormalizedName, str] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    """The project and exact version its name carries, where the page's reader parsed it
    already (a lock of 400 pins matches a hundred thousand names against its pins)."""
    provenance: str | None = dataclasses.field(default=None, compare=False)
    """The URL of its PEP 740 provenance object (checked like the file's own URL)."""
    metadata: bool = dataclasses.field(default=False, compare=False)
    """The index serves its core metadata alone, at its URL + ``.metadata`` (PEP 658/714)."""
    metadata_sha256: str | None = dataclasses.field(default=None, compare=False)


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
    origins: Origins = SAME_ORIGIN
    """Origins besides its own that its pages may link files on and redirect to."""
    credentials: Credentials | None = dataclasses.field(default=None, compare=False, repr=False)
    """What reading it takes (an Artifact Registry remote repository's access token); sent
    to its own origin only."""


def safe_filename(name: str) -> bool:
    """True when ``name`` is a plain wheel or sdist file name (no path, nothing odd)."""
    return (
        bool(SAFE_FILENAME.fullmatch(name)) and ".." not in name and file_release(name) is not None
    )


def _text(value: object) -> str | None:
    """A free-text field as data: a string, cut to MAX_TEXT characters; None otherwise."""
    if value is None:
        return None
    return str(value)[:MAX_TEXT]


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


@dataclasses.dataclass(frozen=True)
class Link:
    """One anchor of an HTML page, resolved: the file name is the URL's last segment."""

    filename: str
    url: str
    """Without the fragment."""
    sha256: str | None
    requires_python: str | None
    yanked: str | None
    upload_time: str | None
    size: int | None = None
    provenance: str | None = None
    """The URL of the file's PEP 740 provenance object, where the index publishes one."""
    metadata: bool = False
    """The index serves the file's core metadata alone (PEP 658/714), at URL + .metadata."""
    metadata_sha256: str | None = None


def _metadata_attr(value: str | None) -> tuple[bool, str | None]:
    """PEP 714's ``data-core-metadata`` (or PEP 658's older name): ``true`` or
    ``sha256=<hex>``; anything else is no metadata."""
    if value is None:
        return False, None
    if value.lower() == "true":
        return True, None
    kind, _, digest = value.partition("=")
    if kind == "sha256" and _SHA256.fullmatch(digest):
        return True, digest.lower()
    return False, None


def parse_html(text: str, base: str) -> list[Link]:
    """Every anchor of a PEP 503 page, resolved against ``base`` (not yet checked)."""
    parser = _Anchors()
    parser.feed(text)
    return _links(parser, base)


def _links(parser: _Anchors, base: str) -> list[Link]:
    out = []
    for attrs in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        try:
            url = urllib.parse.urljoin(base, href)
            path = urllib.parse.urlsplit(url).path
        except ValueError:
            continue  # not a URL: not a candidate for anything
        filename = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        location, digest = split_sha256(url)
        out.append(
            Link(
                filename,
                location,
                digest,
                attrs.get("data-requires-python"),
                _text(attrs.get("data-yanked") or "") if "data-yanked" in attrs else None,
                attrs.get("data-upload-time"),  # not standard; read where an index gives it
                None,
                _provenance_attr(attrs.get("data-provenance"), base),
                *_metadata_attr(
                    attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
                ),
            )
        )
    return out


def _provenance_attr(value: str | None, base: str) -> str | None:
    if not value:
        return None
    try:
        return urllib.parse.urljoin(base, value)
    except ValueError:
        return None  # not a URL: no provenance (and the check then says so)


def split_sha256(url: str) -> tuple[str, str | None]:
    base, _, fragment = url.partition("#")
    params = urllib.parse.parse_qs(fragment)
    digest = params.get("sha256", [None])[0]
    return base, digest


class _NotFound(Exception):  # noqa: N818 - internal signal, never shown
    pass


def _file_path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def _get(url: str, source: Source) -> tuple[str, str]:
    """GET a page; returns (text, content type). file:// URLs are read from disk."""
    if urllib.parse.urlsplit(url).scheme == "file":
        path = _file_path(url)
        if path.is_dir():
            path = path / "index.html"
        limit = client().limits.page_bytes
        try:
            if path.stat().st_size > limit:
                raise IndexReadError(f"{path} is larger than {limit} bytes; refused")
            data = path.read_bytes()
        except FileNotFoundError:
            raise _NotFound from None
        except OSError as exc:
            raise IndexReadError(f"cannot read {path}: {exc.strerror}") from None
        TRAFFIC.add(len(data))
        return data.decode("utf-8", "replace"), "text/html"
    try:
        response = client().get(
            url,
            headers={"Accept": ACCEPT},
            credentials=source.credentials,
            origins=source.origins,
            redirect_hint="an index may redirect only within its own origin (or to the file "
            "hosts allowed in allowlist/config.yaml)",
        )
    except UnreachableError as exc:
        raise IndexReadError(
            f"cannot reach the index at {redact_url(url)}: {exc.reason}",
            hint=exc.hint or "check that the index is up and reachable from here, then run again",
        ) from None
    except HttpError as exc:
        raise IndexReadError(exc.message, hint=exc.hint) from None
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


Keep = Callable[[str], bool]
"""A first look at a listed file's name: False drops it unread (a file of no interest)."""


def project_files(
    source: Source,
    project: NormalizedName,
    *,
    versions: frozenset[str] | None = None,
    keep: Keep | None = None,
) -> tuple[IndexFile, ...]:
    """Every file ``source`` lists for ``project`` (normalised name); () when unknown there.
    With ``versions`` (exact version strings), only the files of those releases; with
    ``keep``, only the files whose names it keeps."""
    return project_page(source, project, versions=versions, keep=keep).files


def project_page(
    source: Source,
    project: NormalizedName,
    versions: frozenset[str] | None = None,
    keep: Keep | None = None,
) -> ProjectPage:
    """``project``'s page at ``source``: no files when the project is unknown there. With
    ``versions``, only the files of those releases are read into files (the rest of the
    page is still checked as a page): a pin needs its own release, not a project's history
    of thousands of files. ``keep`` drops, unread, the files it says no to (a wheel for
    another platform): it can only narrow what the checks below then pass."""
    if source.find_links:
        found = _find_links_files(source, project)
        return ProjectPage(tuple(f for f in found if keep is None or keep(f.filename)))
    page = source.url.rstrip("/") + f"/{project}/"
    try:
        text, content_type = _get(page, source)
    except _NotFound:
        return ProjectPage(())
    if "json" in content_type:
        return _json_page(text, page, source, project, versions=versions, keep=keep)
    parser = _Anchors()
    parser.feed(text)
    files = _candidates(_links(parser, page), page, source, project, versions=versions, keep=keep)
    return ProjectPage(
        files,
        status=_text(parser.meta.get("pypi:project-status")),
        status_reason=_text(parser.meta.get("pypi:project-status-reason")),
    )


def _malformed(page: str, what: str) -> IndexReadError:
    return IndexReadError(
        f"{redact_url(page)} is not a valid simple index page: {what}",
        hint="pipgate refuses a page it cannot read exactly; check the index (a proxy or a "
        "captive portal may be answering instead)",
    )


def _json_page(  # noqa: PLR0913 - the page, where it is from, and what to read of it
    text: str,
    page: str,
    source: Source,
    project: NormalizedName,
    *,
    versions: frozenset[str] | None = None,
    keep: Keep | None = None,
) -> ProjectPage:
    try:
        document = json.loads(text)
    except ValueError:
        raise _malformed(page, "not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("files", []), list):
        raise _malformed(page, "not a mapping with a list of files")
    links = []
    for position, item in enumerate(document.get("files", [])):
        if (versions is not None or keep is not None) and isinstance(item, dict):
            filename = item.get("filename")
            if isinstance(filename, str) and (
                (versions is not None and not _maybe_of(filename, versions))
                or (keep is not None and not keep(filename))
            ):
                continue  # a file of no interest: never a candidate, not read further
        links.append(_json_link(item, page, position))
    status = document.get("project-status")
    if status is not None and not isinstance(status, dict):
        raise _malformed(page, "project-status is not a mapping")
    status = status or {}
    return ProjectPage(
        _candidates(links, page, source, project, versions=versions, keep=keep),
        status=_text(status.get("status")) if status.get("status") else None,
        status_reason=_text(status.get("reason")) if status.get("reason") else None,
    )


def _json_link(item: object, page: str, position: int) -> Link:
    where = f"files[{position}]"
    if not isinstance(item, dict):
        raise _malformed(page, f"{where} is not a mapping")
    filename, url = item.get("filename"), item.get("url")
    if not isinstance(filename, str) or not isinstance(url, str):
        raise _malformed(page, f"{where} has no filename or url text")
    hashes = item.get("hashes", {})
    if not isinstance(hashes, dict):
        raise _malformed(page, f"{where}.hashes is not a mapping")
    digest = hashes.get("sha256")
    if digest is not None and not isinstance(digest, str):
        raise _malformed(page, f"{where}.hashes.sha256 is not text")
    yanked = item.get("yanked", False)
    if not isinstance(yanked, bool | str):
        raise _malformed(page, f"{where}.yanked is neither true, false nor a reason")
    size = item.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _malformed(page, f"{where}.size is not a size in bytes")
    for key in ("requires-python", "upload-time"):
        if item.get(key) is not None and not isinstance(item.get(key), str):
            raise _malformed(page, f"{where}.{key} is not text")
    if _scheme(url) in ("http", "https") and "/." not in url and "\\" not in url:
        resolved = url.partition("#")[0]  # absolute already: what urljoin would give
    else:
        try:
            resolved = urllib.parse.urljoin(page, url).partition("#")[0]
        except ValueError:
            raise _malformed(page, f"{where}.url is not a URL") from None
    reason = None if yanked is False else ("" if yanked is True else _text(yanked))
    return Link(
        filename,
        resolved,
        digest,
        item.get("requires-python"),
        reason,
        item.get("upload-time"),
        size,
        _json_provenance(item, page, where),
        *_json_metadata(item, page, where),
    )


def _json_provenance(item: dict[str, object], page: str, where: str) -> str | None:
    """PEP 740's ``provenance``: the URL of the file's provenance object, or null."""
    provenance = item.get("provenance")
    if provenance is None:
        return None
    if not isinstance(provenance, str):
        raise _malformed(page, f"{where}.provenance is not a URL")
    try:
        return urllib.parse.urljoin(page, provenance)
    except ValueError:
        raise _malformed(page, f"{where}.provenance is not a URL") from None


def _json_metadata(item: dict[str, object], page: str, where: str) -> tuple[bool, str | None]:
    """PEP 714's ``core-metadata`` (or PEP 658's ``dist-info-metadata``): false, true, or a
    mapping of hashes."""
    value = item.get("core-metadata", item.get("dist-info-metadata", False))
    if value is None or isinstance(value, bool):
        return bool(value), None
    if not isinstance(value, dict):
        raise _malformed(page, f"{where}.core-metadata is neither true, false nor hashes")
    digest = value.get("sha256")
    if digest is None:
        return True, None
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise _malformed(page, f"{where}.core-metadata.sha256 is not 64 hex digits")
    return True, digest.lower()


def _candidates(  # noqa: PLR0913 - the links, where they are from, and what to read
    links: Iterable[Link],
    page: str,
    source: Source,
    project: NormalizedName,
    *,
    versions: frozenset[str] | None = None,
    keep: Keep | None = None,
) -> tuple[IndexFile, ...]:
    """The links that may be files of ``project``: plain names of that project, on an
    allowed origin, with a well-formed sha256 where one is given; with ``versions``, of
    those releases only; with ``keep``, of the names it keeps only."""
    out = []
    for link in links:
        if versions is not None and not _maybe_of(link.filename, versions):
            continue  # another release: not parsed at all
        if keep is not None and not keep(link.filename):
            continue
        if not safe_filename(link.filename):
            continue  # a path, an odd name, or not a distribution: never a candidate
        release = file_release(link.filename)
        if release is None or release[0] != project:
            continue
        if versions is not None and exact(release[1]) not in versions:
            continue
        _check_location(link.url, page, source)
        if link.provenance is not None:
            _check_location(link.provenance, page, source)
        digest = link.sha256
        if digest is not None:
            if not _SHA256.fullmatch(digest):
                raise _malformed(page, f"{link.filename} has a sha256 that is not 64 hex digits")
            digest = digest.lower()
        out.append(
            IndexFile(
                link.filename,
                link.url,
                digest,
                link.requires_python,
                link.yanked,
                link.upload_time,
                link.size,
                source.origins,
                source.credentials if origin(link.url) == origin(source.url) else None,
                (release[0], exact(release[1])),
                link.provenance,
                link.metadata,
                link.metadata_sha256,
            )
        )
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _page_scheme(page: str) -> str:
    return urllib.parse.urlsplit(page).scheme


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SDIST_SUFFIX = re.compile(r"\.(?:tar\.gz|zip|tar\.bz2|tar\.xz|tgz)$")
_N = r"(?:0|[1-9][0-9]*)"
_CANONICAL = re.compile(rf"{_N}(?:\.{_N})*(?:(?:a|b|rc){_N})?(?:\.post{_N})?(?:\.dev{_N})?")
"""A public version that PEP 440 normalisation leaves as it is (``str(Version(v)) == v``)."""


def _spelled_version(filename: str) -> str | None:
    """The version a wheel or sdist name spells, as spelled; None when it cannot tell."""
    if filename.endswith(".whl"):
        return filename.split("-", 2)[1] if filename.count("-") >= 4 else None
    stem = _SDIST_SUFFIX.sub("", filename)
    return stem.rpartition("-")[2] if "-" in stem else None


def release_matching(version: Version) -> Keep:
    """A first look that keeps the files of every release ``==version`` matches (``1.0``,
    ``1.0.0``, ``1.0+local``): all a resolver asked for the pin could choose."""
    specifier = SpecifierSet(f"=={version}")
    spelled = str(version)
    lead = _lead(spelled)
    wanted = _padless(spelled) if version.local is None and not version.epoch else None
    epoch = "!" in spelled
    # A release lists one file per tag (often dozens): each spelling is judged once.
    judged: dict[str, bool] = {}

    def keep(filename: str) -> bool:
        raw = _spelled_version(filename)
        if raw is None:
            return True
        verdict = judged.get(raw)
        if verdict is None:
            verdict = judged[raw] = matches(raw)
        return verdict

    def matches(raw: str) -> bool:
        if wanted is not None and _CANONICAL.fullmatch(raw):
            # A normal form without a local part (nearly every file): equal to the pin
            # exactly when the two agree but for trailing zeros of the release (1.0, 1.0.0).
            return _padless(raw) == wanted
        plain = not epoch and "!" not in raw and raw[:1].isdigit()
        if plain and _lead(raw) != lead:
            return False
        parsed = parse_version(raw)
        return parsed is None or specifier.contains(parsed, prereleases=True)

    return keep


def _padless(canonical: str) -> str:
    """A canonical public version without the trailing zeros of its release segment."""
    release = canonical
    rest = ""
    for position, char in enumerate(canonical):
        if not (char.isdigit() or char == "."):
            release, rest = canonical[:position], canonical[position:]
            if release.endswith("."):  # 1.0.post1: the dot belongs to the suffix
                release, rest = release[:-1], "." + rest
            break
    parts = release.split(".")
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()
    return ".".join(parts) + rest


def _maybe_of(filename: str, versions: frozenset[str]) -> bool:
    """A cheap first look: could ``filename`` be a file of one of ``versions``? True for
    anything it cannot tell (the full parse then decides); False only when the version
    its name spells, normalised, is none of them."""
    raw = _spelled_version(filename)
    if raw is None or raw in versions:
        return True
    if _CANONICAL.fullmatch(raw):
        return False  # spelled as its own normal form already, and that is not wanted
    if "!" not in raw and raw[:1].isdigit():
        # Another spelling of a wanted version has the same leading number (1.0 and
        # 1.00.0, 2024.1 and 2024.01): where none shares it, no parse is needed.
        lead = raw.split(".", 1)[0].lstrip("0") or "0"
        if all(_lead(v) != lead for v in versions):
            return False
    parsed = parse_version(raw)
    return parsed is None or exact(parsed) in versions


def _lead(version: str) -> str:
    head = version.split("!", 1)[-1].split(".", 1)[0]
    digits = "".join(itertools.takewhile(str.isdigit, head))
    return digits.lstrip("0") or "0"


def _scheme(url: str) -> str:
    """``url``'s scheme, read from its start (as urlsplit would) without splitting it all."""
    found = _SCHEME.match(url)
    return found[1].lower() if found else ""


def _check_location(url: str, page: str, source: Source) -> None:
    """A file's URL must stay where its page's source allows; refused with its origin."""
    page_scheme = _page_scheme(page)
    scheme = _scheme(url)
    if page_scheme == "file":
        root = _file_path(source.url)
        root = root if source.find_links else root.parent
        if scheme != "file" or not _file_path(url).resolve().is_relative_to(root.resolve()):
            raise _malformed(page, f"a link leaves the index's folder ({redact_url(url)})")
        return
    if not source.origins.allows(url, page):
        where = origin(url) or f"a {scheme or 'relative'}: URL"
        raise IndexReadError(
            f"{redact_url(page)} links a file on {where}, which this index may not send pipgate to",
            hint="if that host really serves the index's files (a CDN), add its origin to "
            "upstream_file_hosts in allowlist/config.yaml",
        )


def with_hashes(files: Sequence[IndexFile]) -> tuple[IndexFile, ...]:
    """``files`` with every missing sha256 filled in by fetching and hashing that file only."""
    return tuple(
        f if f.sha256 is not None else dataclasses.replace(f, sha256=hash_file(f)) for f in files
    )


def hash_file(item: IndexFile) -> str:
    """sha256 of a listed file, streamed within its published size."""
    return _stream(
        item.url, None, size=item.size, origins=item.origins, credentials=item.credentials
    )


MAX_METADATA = 8 << 20
"""A core-metadata file (PEP 658) larger than this is refused."""


def core_metadata(item: IndexFile, folder: Path) -> str | None:
    """The file's core metadata, from the index's metadata file (PEP 658/714), kept in
    ``folder`` by its sha256; None where the index serves none, or gives it no sha256 (an
    unhashed metadata file is not read: the file itself, by its locked hash, is)."""
    digest = item.metadata_sha256
    if not item.metadata or digest is None:
        return None
    kept = folder / digest
    try:
        data = kept.read_bytes()
        if hashlib.sha256(data).hexdigest() == digest:
            return data.decode("utf-8", "replace")
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / f".{digest}.part"
    url = item.url + ".metadata"
    with scratch.open("wb") as handle:
        found = _stream(
            url, handle, size=None, origins=item.origins, credentials=item.credentials,
            limit=MAX_METADATA,
        )  # fmt: skip
    if found != digest:
        scratch.unlink(missing_ok=True)
        raise IndexReadError(
            f"{redact_url(url)} (sha256 {found}) is not the metadata file its page lists "
            f"(sha256 {digest})",
            hint="the index serves metadata other than it lists: check the index",
        )
    scratch.replace(kept)
    return kept.read_bytes().decode("utf-8", "replace")


def download(item: IndexFile, target: Path) -> str:
    """Stream a listed file to ``target``; its sha256."""
    with target.open("wb") as handle:
        return _stream(
            item.url, handle, size=item.size, origins=item.origins, credentials=item.credentials
        )


def _stream(  # noqa: PLR0913 - the one place a listed file is streamed
    url: str,
    sink: IO[bytes] | None,
    *,
    size: int | None,
    origins: Origins,
    credentials: Credentials | None = None,
    limit: int | None = None,
) -> str:
    if urllib.parse.urlsplit(url).scheme == "file":
        digest = hashlib.sha256()
        if limit is None:
            limit = size if size is not None else client().limits.file_bytes
        read = 0
        with _file_path(url).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                read += len(chunk)
                if read > limit:
                    raise IndexReadError(f"{url} holds more than {limit} bytes; refused")
                digest.update(chunk)
                TRAFFIC.add(len(chunk))
                if sink is not None:
                    sink.write(chunk)
        return digest.hexdigest()
    try:
        status, found = client().download(
            url, sink, size=size, origins=origins, credentials=credentials, limit=limit
        )
    except UnreachableError as exc:
        raise IndexReadError(
            f"cannot fetch {redact_url(url)}: {exc.reason}", hint=exc.hint
        ) from None
    except HttpError as exc:
        raise IndexReadError(exc.message, hint=exc.hint) from None
    if status >= 400:
        raise IndexReadError(f"cannot fetch {redact_url(url)}: HTTP {status}")
    return found


def _find_links_files(source: Source, project: NormalizedName) -> list[IndexFile]:
    parts = urllib.parse.urlsplit(source.url)
    if parts.scheme in ("", "file"):
        folder = Path(urllib.parse.unquote(parts.path if parts.scheme else source.url))
        if not folder.is_dir():
            return []
        return [
            IndexFile(path.name, path.as_uri(), None, size=path.stat().st_size)
            for path in sorted(folder.iterdir())
            if path.is_file()
            and safe_filename(path.name)
            and (release := file_release(path.name)) is not None
            and release[0] == project
        ]
    try:
        text, _ = _get(source.url, source)
    except _NotFound:
        return []
    parser = _Anchors()
    parser.feed(text)
    return list(_candidates(_links(parser, source.url), source.url, source, project))


def release_time(files: Sequence[IndexFile]) -> datetime.datetime | None:
    """When a release was first uploaded, from its files' upload times (PEP 700); None
    when the index gives none."""
    times = [t for item in files if (t := uploaded_at(item)) is not None]
    return min(times) if times else None


def uploaded_at(item: IndexFile) -> datetime.datetime | None:
    """When the index says the file was uploaded (UTC where it names no zone); None when
    it gives no time, or one that is not an ISO 8601 time."""
    if not item.upload_time:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(item.upload_time)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def files_for_version(
    files: Iterable[IndexFile], project: str, version: Version | str
) -> list[IndexFile]:
    """The files of one release, matched by the version in their names exactly: ``1.0+other``
    and ``1.0.0`` are other releases than ``1.0``, though ``==1.0`` matches them."""
    wanted = exact(version if isinstance(version, Version) else Version(version))
    out = []
    for item in files:
        release = item.release
        if release is None:
            parsed = file_release(item.filename)
            release = (parsed[0], exact(parsed[1])) if parsed is not None else None
        if release is not None and release == (project, wanted):
            out.append(item)
    return out
