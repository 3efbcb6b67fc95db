"""The one HTTP client: every request pipgate makes goes through here.

Index pages, registry listings, file downloads, uploads and token refreshes
all use ``client()``: one ``requests`` session for the process (connection
pooling), one place for timeouts, retries of idempotent reads, and the
credential refresh after a 401. Bytes read are counted in ``TRAFFIC`` for the
reports and the benchmarks.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from pipgate.errors import ExternalError
from pipgate.urls import redact_url

TIMEOUT = (10.0, 60.0)
"""(connect, read) seconds for a page."""
RETRY_STATUS = frozenset({500, 502, 503, 504})
READ_RETRIES = 4
"""Extra attempts of an idempotent read after a 5xx or a dropped connection."""
CONNECT_RETRIES = 1
BACKOFF = 0.5
CHUNK = 1 << 20


class HttpError(ExternalError):
    """A request could not be made or gave no answer (exit 3)."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        """What went wrong, in a word (the exception's type name)."""


class Credentials(Protocol):
    """What the client needs of a credential source: the pair, and a refresh after a 401."""

    def get(self) -> tuple[str, str] | None: ...

    def refresh(self) -> None: ...


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


class Client:
    """A pooled session with pipgate's policy for timeouts, retries and credentials."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "pipgate"
        self._sleep = sleep

    def request(
        self,
        method: str,
        url: str,
        *,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,  # noqa: ANN401 - whatever requests accepts as a body
        stream: bool = False,
        timeout: tuple[float, float] = TIMEOUT,
        retries: int = 0,
        rewind: Callable[[], None] | None = None,
    ) -> requests.Response:
        """One request; after a 401 the credentials are refreshed and it is sent once more.

        ``retries`` extra attempts are made after a 5xx answer or a dropped connection
        (reads only: an upload's outcome is the caller's to reconcile). A streamed body is
        sent again only after ``rewind`` has put it back at its start. Raises HttpError
        when no answer came; any HTTP status is returned for the caller to judge.
        """
        refreshed = False
        attempt = connect_failures = 0
        first = True
        while True:
            if not first and rewind is not None:
                rewind()
            first = False
            auth = credentials.get() if credentials is not None else None
            try:
                response = self.session.request(
                    method,
                    url,
                    auth=auth,
                    headers=dict(headers or {}),
                    data=data,
                    stream=stream,
                    timeout=timeout,
                    allow_redirects=True,
                )
            except requests.RequestException as exc:
                # A refused connection is tried once more; a server that is down stays down.
                if attempt < retries and connect_failures < CONNECT_RETRIES:
                    attempt += 1
                    connect_failures += 1
                    self._sleep(BACKOFF * 2 ** (attempt - 1))
                    continue
                raise HttpError(
                    f"cannot reach {redact_url(url)}: {type(exc).__name__}",
                    reason=type(exc).__name__,
                    hint="check that the server is up and reachable from here, then run again",
                ) from None
            if response.status_code == 401 and credentials is not None and not refreshed:
                response.close()
                credentials.refresh()
                refreshed = True
                continue
            if response.status_code in RETRY_STATUS and attempt < retries:
                response.close()
                attempt += 1
                self._sleep(BACKOFF * 2 ** (attempt - 1))
                continue
            if not stream:
                TRAFFIC.add(len(response.content))
            return response

    def get(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = READ_RETRIES,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> requests.Response:
        """A page, read whole."""
        return self.request(
            "GET", url, credentials=credentials, headers=headers, retries=retries, timeout=timeout
        )

    def download(
        self,
        url: str,
        sink: IO[bytes] | None,
        *,
        credentials: Credentials | None = None,
        timeout: tuple[float, float] = TIMEOUT,
        retries: int = READ_RETRIES,
    ) -> tuple[int, str]:
        """Stream the file at ``url`` into ``sink``; (HTTP status, sha256 of what was read).

        A status of 400 or more reads nothing and returns an empty digest.
        """
        response = self.request(
            "GET", url, credentials=credentials, stream=True, timeout=timeout, retries=retries
        )
        with response:
            if response.status_code >= 400:
                return response.status_code, ""
            digest = hashlib.sha256()
            try:
                for chunk in _chunks(response):
                    digest.update(chunk)
                    TRAFFIC.add(len(chunk))
                    if sink is not None:
                        sink.write(chunk)
            except requests.RequestException as exc:
                raise HttpError(
                    f"reading {redact_url(url)} broke off: {type(exc).__name__}",
                    reason=type(exc).__name__,
                    hint="run again",
                ) from None
            return response.status_code, digest.hexdigest()


def _chunks(response: requests.Response) -> Iterator[bytes]:
    yield from response.iter_content(CHUNK)


_CLIENT: Client | None = None
_CLIENT_LOCK = threading.Lock()


def client() -> Client:
    """The process's one client, made on first use."""
    global _CLIENT  # noqa: PLW0603 - one client for the process
    with _CLIENT_LOCK:
        if _CLIENT is None:
            _CLIENT = Client()
        return _CLIENT
