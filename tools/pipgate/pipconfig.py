"""Where pip looks for packages when ``upstream`` is null: pip's own configuration.

Read through pip's command line only (``pip config list`` and the default
shown by ``pip install --help``), never pip's internals, and never written
into the project: the index is whatever pip on this machine is configured to use.
"""

from __future__ import annotations

import concurrent.futures
import functools
import re
import shlex
from pathlib import Path

from pipgate.errors import ExternalError
from pipgate.http import Origins
from pipgate.index import Source
from pipgate.runner import Result, run, tool_environment

_LINE = re.compile(r"^(?P<section>[^.]*)\.(?P<key>[a-z-]+)=(?P<value>.*)$")
_DEFAULT_INDEX = re.compile(
    r"--index-url <url>\s+Base URL of the Python Package Index\s+"
    r"\(default\s+(?P<url>\S+?)\)"
)
# Sections pip's install command reads, strongest first.
_PRECEDENCE = (":env:", "install", "global")


class PipConfigError(ExternalError):
    """pip's configuration could not be read."""


def _value(raw: str) -> str:
    try:
        parts = shlex.split(raw)
    except ValueError:
        return raw.strip("'\"")
    return parts[0] if len(parts) == 1 else raw.strip("'\"")


@functools.cache
def pip_sources(python: str) -> tuple[Source, ...]:
    """The indexes and find-links pip under ``python`` uses, in pip's order."""
    env = tool_environment({"COLUMNS": "200"})
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # pip's default index is asked for while its configuration is read (each is a
        # start of pip, a few tenths of a second); it is used only where none is set.
        default = pool.submit(_default_index, python)
        listed = run([python, "-m", "pip", "config", "list"], env=env, timeout=120)
        return _sources(listed, default)


def _sources(listed: Result, default: concurrent.futures.Future[str]) -> tuple[Source, ...]:
    if listed.returncode != 0:
        raise PipConfigError(
            f"cannot read pip's configuration: {listed.stderr.strip()[-300:]}",
            hint="set 'upstream' in allowlist/config.yaml",
        )
    values: dict[tuple[str, str], str] = {}
    for line in listed.stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            values[(match["section"], match["key"])] = _value(match["value"])

    def get(key: str) -> str | None:
        for section in _PRECEDENCE:
            if (section, key) in values:
                return values[(section, key)]
        return None

    # pip's own configuration: pipgate gives its indexes the trust pip gives them, files on
    # any https host (the public index serves its files from another host than its pages).
    trusted = Origins(any_https=True)
    sources: list[Source] = []
    no_index = (get("no-index") or "").lower() in ("1", "true", "yes", "on")
    if not no_index:
        index_url = get("index-url") or default.result()
        sources.append(Source(index_url, origins=trusted))
        sources += [Source(url, origins=trusted) for url in (get("extra-index-url") or "").split()]
    for location in (get("find-links") or "").split():
        sources.append(
            Source(
                location if "://" in location else Path(location).as_uri(),
                find_links=True,
                origins=trusted,
            )
        )
    return tuple(sources)


def _default_index(python: str) -> str:
    shown = run(
        [python, "-m", "pip", "install", "--help"],
        env=tool_environment({"COLUMNS": "200"}),
        timeout=120,
    )
    match = _DEFAULT_INDEX.search(" ".join(shown.stdout.split()).replace("> ", ">  "))
    if match is None:
        match = _DEFAULT_INDEX.search(shown.stdout)
    if match is None:
        raise PipConfigError(
            "cannot tell which index pip uses by default",
            hint="set 'upstream' in allowlist/config.yaml to the index to take packages from",
        )
    return match["url"].rstrip("/") + "/"
