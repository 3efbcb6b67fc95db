"""The resolver's front (``pipgate.lock.front``) against a real index on 127.0.0.1: what
it reads in the background, and which error it raises when several pages are bad."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipgate.index import IndexReadError, Source
from pipgate.lock.front import IndexFront
from pipgate.names import NormalizedName
from tests.hostile import hostile_index, raw


def _keep_all(filename: str) -> bool:
    return True


def _names(*names: str) -> list[NormalizedName]:
    return [NormalizedName(n) for n in names]


def test_entries_pages_are_read_once_in_the_background(tmp_path: Path) -> None:
    with hostile_index(tmp_path) as index:
        wheel = "alpha-1.0-py3-none-any.whl"
        index.extra["alpha"] = [
            {"filename": wheel, "url": f"/files/{wheel}", "hashes": {"sha256": "ab" * 32}}
        ]
        front = IndexFront([Source(index.url)], keep=_keep_all, read=_names("beta", "alpha"))
        with front:
            front.settle()  # no resolver asked for anything
            assert sorted(index.seen) == ["/simple/alpha/", "/simple/beta/"]
            assert [f.filename for f in front.pages[NormalizedName("alpha")]] == [wheel]
            assert front.pages[NormalizedName("beta")] == []
            # The resolver's own request is served from what was read: no second read.
            with urllib.request.urlopen(f"{front.url}alpha/") as answer:
                assert answer.status == 200
        assert sorted(index.seen) == ["/simple/alpha/", "/simple/beta/"]


def test_of_several_bad_pages_the_first_by_name_is_raised(tmp_path: Path) -> None:
    with hostile_index(tmp_path) as index:
        # Read in whatever order the threads take them, the error is always alpha's.
        for name in ("zeta", "alpha", "mid"):
            index.routes[f"/simple/{name}/"] = raw(b"not json at all")
        front = IndexFront([Source(index.url)], keep=_keep_all, read=_names("zeta", "mid", "alpha"))
        with front, pytest.raises(IndexReadError, match=r"/simple/alpha/ is not a valid"):
            front.settle()


def test_a_page_that_failed_in_the_background_fails_the_resolver_unread(tmp_path: Path) -> None:
    with hostile_index(tmp_path) as index:
        index.routes["/simple/alpha/"] = raw(b"[1, 2")
        front = IndexFront([Source(index.url)], keep=_keep_all, read=_names("alpha"))
        with front:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{front.url}alpha/")
            assert refused.value.code == 403  # not a 5xx, which resolvers retry
            refused.value.close()
            with pytest.raises(IndexReadError, match=r"/simple/alpha/ is not a valid"):
                front.settle()
        assert index.seen == ["/simple/alpha/"]
