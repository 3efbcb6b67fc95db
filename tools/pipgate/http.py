"""The one HTTP client: every request pipgate makes goes through here.

Index pages, registry listings, file downloads, uploads and token refreshes
all use ``client()``: one ``requests`` session for the process (connection
pooling), and one place for pipgate's rules about what a server may do:

- every answer is bounded in size (a page by ``Limits.page_bytes``, a file by
  the size its index published, else ``Limits.file_bytes``) and every request
  in total time (``Limits.page_seconds``, ``Limits.file_seconds``), besides
  the per-read timeout, so an endless or dripping server is cut off;
- redirects are followed only to origins the caller allows (by default the
  request's own); a redirect elsewhere is refused and named, and credentials
  are never sent to another origin;
- idempotent reads are retried a bounded number of times after a 5xx or a
  dropped connection; after a 401 the credentials are refreshed once.

Bytes read are counted in ``TRAFFIC`` for the reports and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol, TypeVar

import requests
from requests.adapters import HTTPAdapter

from pipgate.bounds import Limits
from pipgate.errors import ExternalError
from pipgate.urls import origin, redact_url

T = TypeVar("T")
TIMEOUT = (10.0, 60.0)
"""(connect, read) seconds: the read timeout is per read; ``Limits`` bound the whole."""
RETRY_STATUS = frozenset({500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
READ_RETRIES = 4
"""Extra attempts of an idempotent read after a 5xx or a dropped connection."""
CONNECT_RETRIES = 1
MAX_REDIRECTS = 5
BACKOFF = 0.5
CHUNK = 1 << 20
PAGE_WORKERS = 32
"""Index pages read at once (a lock of 400 pins reads 400 pages; one at a time is minutes)."""


class HttpError(ExternalError):
    """A request could not be made or gave no answer (exit 3)."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        """What went wrong, in a word or a few (the exception's type name, a bound)."""


class UnreachableError(HttpError):
    """No connection could be made, or it broke before an answer."""


class RedirectRefusedError(HttpError):
    """A server redirected to an origin the request may not go to."""

    def __init__(self, url: str, target: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{redact_url(url)} redirected to {redact_url(target)}, another origin; not followed",
            reason=f"redirected to {redact_url(target)}",
            hint=hint,
        )
        self.target = target


class Credentials(Protocol):
    """What the client needs of a credential source: the pair, and a refresh after a 401."""

    def get(self) -> tuple[str, str] | None: ...

    def refresh(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Origins:
    """Where a request (its redirects, or the files a page links) may go."""

    allowed: tuple[str, ...] = ()
    """Origins (``origin(url)``) allowed besides the request's own."""
    any_https: bool = False
    """Any https origin: the trust pip itself gives its own configured index."""

    def allows(self, url: str, home: str) -> bool:
        """True when ``url`` may be reached from a request or page at ``home``."""
        target = origin(url)
        if not target:
            return False
        if target == origin(home) or target in self.allowed:
            return True
        return self.any_https and target.startswith("https://")


SAME_ORIGIN = Origins()


@dataclasses.dataclass(frozen=True)
class Answer:
    """A response read whole (within the bounds)."""

    url: str
    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Traffic:
    """Bytes read from indexes, registries and files, for reports and benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.requests = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.bytes += count
            self.requests += 1


TRAFFIC = Traffic()


class _Cancelled(Exception):  # noqa: N818 - internal signal, never shown
    pass


class Client:
    """A pooled session with pipgate's policy for bounds, redirects, retries and credentials."""

    def __init__(
        self, *, limits: Limits | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=PAGE_WORKERS, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "pipgate"
        self.limits = limits or Limits()
        self._sleep = sleep

    # -- the public calls ----------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = READ_RETRIES,
        origins: Origins = SAME_ORIGIN,
        redirect_hint: str | None = None,
    ) -> Answer:
        """A page, read whole: at most ``Limits.page_bytes``, within ``Limits.page_seconds``."""
        limit = self.limits.page_bytes

        def work(cancelled: threading.Event) -> Answer:
            response = self._send(
                "GET",
                url,
                credentials=credentials,
                headers=headers,
                retries=retries,
                origins=origins,
                redirect_hint=redirect_hint,
                cancelled=cancelled,
            )
            with response:
                body = bytearray()
                for chunk in _read(response, url, limit, cancelled, "page"):
                    body += chunk
                TRAFFIC.add(len(body))
                return Answer(response.url, response.status_code, response.headers, bytes(body))

        return _within(work, self.limits.page_seconds, url)

    def head(self, url: str, *, credentials: Credentials | None = None) -> Answer:
        """The headers of ``url`` (a HEAD request), within ``Limits.page_seconds``."""

        def work(cancelled: threading.Event) -> Answer:
            response = self._send(
                "HEAD",
                url,
                credentials=credentials,
                retries=0,
                origins=SAME_ORIGIN,
                cancelled=cancelled,
            )
            with response:
                return Answer(response.url, response.status_code, response.headers, b"")

        return _within(work, self.limits.page_seconds, url)

    def download(
        self,
        url: str,
        sink: IO[bytes] | None,
        *,
        credentials: Credentials | None = None,
        size: int | None = None,
        retries: int = READ_RETRIES,
        origins: Origins = SAME_ORIGIN,
        redirect_hint: str | None = None,
        limit: int | None = None,
    ) -> tuple[int, str]:
        """Stream the file at ``url`` into ``sink``; (HTTP status, sha256 of what was read).

        The file may hold at most ``limit`` bytes, else ``size`` (what its index published),
        else ``Limits.file_bytes``. A status of 400 or more reads nothing: (status, "").
        """
        if limit is None:
            limit = size if size is not None else self.limits.file_bytes

        def work(cancelled: threading.Event) -> tuple[int, str]:
            response = self._send(
                "GET",
                url,
                credentials=credentials,
                retries=retries,
                origins=origins,
                redirect_hint=redirect_hint,
                cancelled=cancelled,
                stream=True,
            )
            with response:
                if response.status_code >= 400:
                    return response.status_code, ""
                digest = hashlib.sha256()
                what = "file" if size is None else f"file (the index published {size} bytes)"
                for chunk in _read(response, url, limit, cancelled, what):
                    digest.update(chunk)
                    TRAFFIC.add(len(chunk))
                    if sink is not None:
                        sink.write(chunk)
                return response.status_code, digest.hexdigest()

        return _within(work, self.limits.file_seconds, url)

    def post(
        self,
        url: str,
        *,
        data: Any,  # noqa: ANN401 - whatever requests accepts as a body
        headers: Mapping[str, str],
        credentials: Credentials | None = None,
        rewind: Callable[[], None] | None = None,
        seconds: float | None = None,
    ) -> Answer:
        """An upload: never retried here (its outcome is the caller's to reconcile by hash),
        never redirected; sent again once after a 401, from its start (``rewind``)."""
        return self._once(
            "POST",
            url,
            credentials=credentials,
            headers=headers,
            data=data,
            rewind=rewind,
            seconds=seconds or self.limits.file_seconds,
        )

    def delete(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """A deletion: never retried (the caller lists again to learn the outcome), never
        redirected; sent again once after a 401 with fresh credentials."""
        return self._once(
            "DELETE",
            url,
            credentials=credentials,
            headers=headers or {},
            seconds=self.limits.page_seconds,
        )

    def _once(
        self,
        method: str,
        url: str,
        *,
        credentials: Credentials | None,
        headers: Mapping[str, str],
        seconds: float,
        data: Any = None,  # noqa: ANN401 - whatever requests accepts as a body
        rewind: Callable[[], None] | None = None,
    ) -> Answer:
        """A request that changes something: no retry, no redirect, its answer read whole."""

        def work(cancelled: threading.Event) -> Answer:
            response = self._send(
                method,
                url,
                credentials=credentials,
                headers=dict(headers),
                data=data,
                rewind=rewind,
                retries=0,
                origins=SAME_ORIGIN,
                cancelled=cancelled,
                follow=False,
            )
            with response:
                body = b"".join(_read(response, url, self.limits.page_bytes, cancelled, "answer"))
                return Answer(response.url, response.status_code, response.headers, body)

        return _within(work, seconds, url)

    # -- one request, its redirects, retries and 401 -------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        credentials: Credentials | None,
        retries: int,
        origins: Origins,
        cancelled: threading.Event,
        headers: Mapping[str, str] | None = None,
        data: Any = None,  # noqa: ANN401 - whatever requests accepts as a body
        rewind: Callable[[], None] | None = None,
        redirect_hint: str | None = None,
        stream: bool = True,
        follow: bool = True,
    ) -> requests.Response:
        home = url
        current = url
        refreshed = False
        attempt = connect_failures = hops = 0
        first = True
        while True:
            if cancelled.is_set():
                raise _Cancelled
            if not first and rewind is not None:
                rewind()
            first = False
            # Credentials go to the origin they were given for, never to another.
            send_auth = credentials is not None and origin(current) == origin(home)
            auth = credentials.get() if send_auth and credentials is not None else None
            try:
                response = self.session.request(
                    method,
                    current,
                    auth=auth,
                    headers=dict(headers or {}),
                    data=data,
                    stream=stream,
                    timeout=TIMEOUT,
                    allow_redirects=False,
                )
            except ValueError:
                # requests parses a redirect's Location even when it follows none.
                raise HttpError(
                    f"{redact_url(current)} answered with a redirect to something that is "
                    "not a URL",
                    reason="a redirect to no URL",
                ) from None
            except requests.RequestException as exc:
                # A refused connection is tried once more; a server that is down stays down.
                if attempt < retries and connect_failures < CONNECT_RETRIES:
                    attempt += 1
                    connect_failures += 1
                    self._sleep(BACKOFF * 2 ** (attempt - 1))
                    continue
                raise UnreachableError(
                    f"cannot reach {redact_url(current)}: {type(exc).__name__}",
                    reason=type(exc).__name__,
                    hint="check that the server is up and reachable from here, then run again",
                ) from None
            status = response.status_code
            if status in REDIRECT_STATUS and follow and "Location" in response.headers:
                response.close()
                location = response.headers["Location"]
                current = _next_hop(current, location, home, origins, hops, hint=redirect_hint)
                hops += 1
                if status == 303:
                    method, data = "GET", None
                continue
            if status == 401 and send_auth and credentials is not None and not refreshed:
                response.close()
                credentials.refresh()
                refreshed = True
                continue
            if status in RETRY_STATUS and attempt < retries:
                response.close()
                attempt += 1
                self._sleep(BACKOFF * 2 ** (attempt - 1))
                continue
            return response


def _next_hop(
    current: str, location: str, home: str, origins: Origins, hops: int, *, hint: str | None
) -> str:
    """Where a redirect leads, if it may be followed: on an allowed origin, a URL at all, and
    not past MAX_REDIRECTS hops; else the HttpError that says which."""
    try:
        target = urllib.parse.urljoin(current, location)
    except ValueError:
        raise HttpError(
            f"{redact_url(current)} answered with a redirect to something that is not a URL",
            reason="a redirect to no URL",
        ) from None
    if hops >= MAX_REDIRECTS:
        raise HttpError(
            f"{redact_url(home)} redirected more than {MAX_REDIRECTS} times",
            reason="too many redirects",
        )
    if not origins.allows(target, home):
        raise RedirectRefusedError(current, target, hint=hint)
    return target


def _read(
    response: requests.Response,
    url: str,
    limit: int,
    cancelled: threading.Event,
    what: str,
) -> Any:  # noqa: ANN401 - a generator of bytes
    """The body in chunks; an error past ``limit`` bytes or when the deadline passed."""
    read = 0
    try:
        for chunk in response.iter_content(CHUNK):
            if cancelled.is_set():
                raise _Cancelled
            read += len(chunk)
            if read > limit:
                raise HttpError(
                    f"{redact_url(url)} sent more than {limit} bytes for one {what}; cut off",
                    reason=f"more than {limit} bytes",
                    hint="a page or file that large is refused; if the index is right, raise "
                    "the bound under 'limits:' in allowlist/config.yaml",
                )
            yield chunk
    except requests.RequestException as exc:
        raise HttpError(
            f"reading {redact_url(url)} broke off: {type(exc).__name__}",
            reason=type(exc).__name__,
            hint="run again",
        ) from None


def _within(work: Callable[[threading.Event], T], seconds: float, url: str) -> T:
    """``work`` run to its end within ``seconds`` in all (connection, headers, redirects,
    retries and body), however slowly a server answers; HttpError when it does not."""
    cancelled = threading.Event()
    outcome: dict[str, Any] = {}  # "value": T, or "error": the exception
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = work(cancelled)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, name="pipgate-http", daemon=True)
    worker.start()
    if not done.wait(seconds):
        # The worker stops at its next chunk; a server that sends nothing more holds only
        # that thread, until its read timeout or the end of the process.
        cancelled.set()
        raise HttpError(
            f"{redact_url(url)} did not answer in full within {seconds:g} s; cut off",
            reason=f"no full answer within {seconds:g} s",
            hint="a server that answers this slowly is refused; check it, or raise "
            "'limits:' in allowlist/config.yaml",
        )
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


_CLIENT: Client | None = None
_CLIENT_LOCK = threading.Lock()


def client() -> Client:
    """The process's one client, made on first use."""
    global _CLIENT  # noqa: PLW0603 - one client for the process
    with _CLIENT_LOCK:
        if _CLIENT is None:
            _CLIENT = Client()
        return _CLIENT


def configure(limits: Limits) -> None:
    """Set the bounds of the process's client (from config.yaml, at the edge)."""
    client().limits = limits
