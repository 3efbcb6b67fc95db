"""URLs pipgate prints: credentials are never shown."""

from __future__ import annotations

import functools
import re
import urllib.parse


def split(url: str) -> urllib.parse.SplitResult | None:
    """``url`` split, or None when it is not a URL at all (a bad IPv6 literal, a port out
    of range): a value from a file or a server is never trusted to parse."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port
    except ValueError:
        return None
    return parts


def redact_url(url: str) -> str:
    """``url`` with any user name, password or token replaced by ``<hidden>``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL hidden>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"<hidden>@{host}"))


def with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    """``url`` carrying ``credentials`` (quoted), as pip reads them from its environment:
    for a child process's environment only, never an argument, a file or a message."""
    if credentials is None:
        return url
    user, password = (urllib.parse.quote(c, safe="") for c in credentials)
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


def has_credentials(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return "@" in parts.netloc


_PLAIN_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+)(?::([0-9]{1,5}))?(?:[/?#]|$)")


@functools.lru_cache(maxsize=8192)
def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, default ports spelled out; '' when it has none.
    (Memoised, and read without splitting the whole URL where it is plain: a page of
    thousands of files asks it of each file's URL several times.)"""
    plain = _PLAIN_ORIGIN.match(url)
    if plain is not None and (plain[3] is None or 0 < int(plain[3]) < 65536):
        scheme, host = plain[1], plain[2]
        return f"{scheme}://{host}:{plain[3] or (443 if scheme == 'https' else 80)}"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    port = port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"
