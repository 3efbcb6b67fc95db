"""The signals of real incidents, read from the upstream's pages (``policy.signals``).

- dormancy and revival: a release after years of silence (the ctx hijack, 2022);
- new projects: a first release younger than a few months (typosquats, and names that code
  assistants invent and attackers then register);
- late files: a file added to a release long after its first (a replaced or injected
  build);
- missing files: the lock holds a file the upstream no longer lists (indexes remove
  malware);
- provenance (PEP 740): the publisher identity of a release, and a release without
  provenance, or by another publisher, where the release before it had one (the second
  Ultralytics wave, December 2024, was visible exactly that way).

Everything here comes from an index and is hostile until checked: provenance objects are
read through the one HTTP client, bounded, from the origins the page's files may live on,
and any shape but PEP 740's is an error that names the URL (the check cannot answer).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
from collections.abc import Iterable, Mapping, Sequence

from pipgate import index
from pipgate.http import PAGE_WORKERS, client
from pipgate.index import IndexFile, IndexReadError, ProjectPage
from pipgate.lock import LockedPackage
from pipgate.names import NormalizedName, Version, exact, file_release
from pipgate.urls import redact_url

PROVENANCE_ACCEPT = "application/vnd.pypi.integrity.v1+json, application/json;q=0.5"
MAX_IDENTITY = 300
"""A publisher identity is cut to this many characters."""
_YEAR = datetime.timedelta(days=365.25)


def _time(item: IndexFile) -> datetime.datetime | None:
    return index.release_time([item])


def release_times(page: ProjectPage) -> dict[str, tuple[Version, datetime.datetime]]:
    """Each release's first upload, by exact version (releases without times left out)."""
    out: dict[str, tuple[Version, datetime.datetime]] = {}
    for item in page.files:
        release = file_release(item.filename)
        uploaded = _time(item)
        if release is None or uploaded is None:
            continue
        key = exact(release[1])
        known = out.get(key)
        if known is None or uploaded < known[1]:
            out[key] = (release[1], uploaded)
    return out


def dormancy(
    package: LockedPackage, page: ProjectPage, years: int
) -> tuple[Version, datetime.datetime, datetime.timedelta] | None:
    """The release before ``package``'s, when the gap to it is more than ``years``."""
    if years <= 0:
        return None
    times = release_times(page)
    mine = times.get(exact(package.version))
    if mine is None:
        return None
    before = [(t, v) for v, t in times.values() if t < mine[1]]
    if not before:
        return None
    previous_time, previous = max(before)
    gap = mine[1] - previous_time
    return (previous, previous_time, gap) if gap > years * _YEAR else None


def first_release(page: ProjectPage) -> datetime.datetime | None:
    times = [t for _, t in release_times(page).values()]
    return min(times) if times else None


def late_files(
    package: LockedPackage, page: ProjectPage, days: int
) -> list[tuple[IndexFile, datetime.timedelta]]:
    """The release's files uploaded more than ``days`` after its first file."""
    if days <= 0:
        return []
    files = index.files_for_version(page.files, package.name, package.version)
    timed = [(item, t) for item in files if (t := _time(item)) is not None]
    if not timed:
        return []
    first = min(t for _, t in timed)
    limit = datetime.timedelta(days=days)
    return sorted(
        ((item, t - first) for item, t in timed if t - first > limit),
        key=lambda found: found[0].filename,
    )


def missing_files(package: LockedPackage, page: ProjectPage) -> list[str]:
    """The lock's hashes of ``package`` that the upstream's page no longer lists."""
    listed = {
        item.sha256
        for item in index.files_for_version(page.files, package.name, package.version)
        if item.sha256 is not None
    }
    return [digest for digest in package.hashes if digest not in listed]


# -- provenance (PEP 740) --------------------------------------------------------------------


def provenance_url(files: Iterable[IndexFile], prefer: Sequence[str] = ()) -> IndexFile | None:
    """The file whose provenance speaks for the release: one of ``prefer`` (hashes) first."""
    with_provenance = [f for f in files if f.provenance is not None]
    with_provenance.sort(key=lambda f: (f.sha256 not in prefer, f.filename))
    return with_provenance[0] if with_provenance else None


def publishers(item: IndexFile) -> tuple[str, ...]:
    """The publisher identities of a file's provenance object, each one line of text."""
    assert item.provenance is not None
    url = item.provenance
    answer = client().get(
        url,
        credentials=item.credentials,
        headers={"Accept": PROVENANCE_ACCEPT},
        origins=item.origins,
    )
    if answer.status_code != 200:
        raise IndexReadError(
            f"{redact_url(url)} (the provenance of {item.filename}) answered {answer.status_code}",
            hint="the index lists provenance it does not serve; run again, or ask the index's "
            "operators (set policy.signals.provenance: false to stop reading it)",
        )
    try:
        document = json.loads(answer.content)
    except ValueError:
        raise _bad(url, "not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("attestation_bundles"), list):
        raise _bad(url, "no list of attestation_bundles")
    found = []
    for position, bundle in enumerate(document["attestation_bundles"]):
        publisher = bundle.get("publisher") if isinstance(bundle, dict) else None
        if not isinstance(publisher, dict) or not isinstance(publisher.get("kind"), str):
            raise _bad(url, f"attestation_bundles[{position}] has no publisher with a kind")
        found.append(_identity(publisher))
    if not found:
        raise _bad(url, "no attestation bundle")
    return tuple(sorted(set(found)))


def _identity(publisher: Mapping[str, object]) -> str:
    """``kind key=value ...``: the publisher's kind, then its other text fields, sorted;
    one line, control characters dropped, cut to MAX_IDENTITY."""
    parts = [str(publisher["kind"])]
    parts += [
        f"{key}={value}"
        for key, value in sorted(publisher.items())
        if key != "kind" and isinstance(value, str) and value
    ]
    line = " ".join(parts)
    return "".join(c for c in line if c.isprintable())[:MAX_IDENTITY]


def _bad(url: str, what: str) -> IndexReadError:
    return IndexReadError(
        f"{redact_url(url)} is not a PEP 740 provenance object: {what}",
        hint="pipgate refuses provenance it cannot read exactly; check the index (set "
        "policy.signals.provenance: false to stop reading it)",
    )


def previous_release(page: ProjectPage, version: Version) -> Version | None:
    """The newest release before ``version`` (by version), not yanked."""
    versions = set()
    for item in page.files:
        release = file_release(item.filename)
        if release is not None and release[1] < version and item.yanked is None:
            versions.add(release[1])
    return max(versions) if versions else None


class Publishers:
    """The publisher identities of provenance objects, read once each, a few at a time."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, ...]] = {}

    def read(self, items: Iterable[IndexFile]) -> None:
        wanted = sorted(
            {
                i.provenance: i for i in items if i.provenance and i.provenance not in self._known
            }.values(),
            key=lambda i: str(i.provenance),
        )
        if not wanted:
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=PAGE_WORKERS) as pool:
            for item, found in zip(wanted, pool.map(publishers, wanted), strict=True):
                assert item.provenance is not None
                self._known[item.provenance] = found

    def of(self, item: IndexFile | None) -> tuple[str, ...] | None:
        """The identities, once read; None for no provenance."""
        if item is None or item.provenance is None:
            return None
        if item.provenance not in self._known:
            self.read([item])
        return self._known[item.provenance]


def release_provenance(
    page: ProjectPage, name: NormalizedName, version: Version, prefer: Sequence[str] = ()
) -> IndexFile | None:
    return provenance_url(index.files_for_version(page.files, name, version), prefer)
