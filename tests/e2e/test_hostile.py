"""The trust boundary: what a hostile index or registry sends, and what pipgate does with it.

One test per class of attack, each against a real server on 127.0.0.1 that
answers the worst it could (``tests.hostile``), driving the real command
line. Each asserts what users rely on: nothing is written outside
pipgate's folders, the lock pins exactly what was approved, no registry is
called verified that is not, memory and time stay bounded, and no element
of the review report comes from package text.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options as CmarkOptions

from pipgate.allowlist import RegistryKind, RegistrySpec
from pipgate.download import DownloadError, FileCache, fetch_checked
from pipgate.index import Source, project_page
from pipgate.names import NormalizedName
from pipgate.registry import EnvironmentCredentials, HttpRegistry
from tests.conftest import AllowlistDir, entries
from tests.hostile import (
    HostileIndex,
    drip,
    endless,
    hostile_index,
    larger_than_published,
    raw,
    redirect,
)
from tests.universe import Dist, build_wheel, running, start_pypiserver

APP = Dist("zq-app", "1.0", ("zq-lib>=1",))
LIB = Dist("zq-lib", "1.0")
LOCAL_SIBLING = Dist("zq-lib", "1.0+evil")
LONGER_SPELLING = Dist("zq-lib", "1.0.0")


def config(upstream: str, *extra: str) -> str:
    return "\n".join(
        [
            "registry: file://.registry",
            f"upstream: {upstream}",
            "targets:",
            "  - name: py311",
            '    python: "3.11"',
            "    platforms: [manylinux_2_17_x86_64]",
            "policy:",
            "  min_release_age_days: 0",
            *extra,
            "",
        ]
    )


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for dist in (APP, LIB):
        build_wheel(dist, "py3-none-any", folder)
    return folder


@pytest.fixture
def index(wheels: Path) -> Iterator[HostileIndex]:
    with hostile_index(wheels) as served:
        yield served


def pipgate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child that reports its own peak memory on stderr."""
    script = (
        "import resource, sys\n"
        "from pipgate.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(f'peak-rss-kib {peak}', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=300,
    )


def peak_mib(result: subprocess.CompletedProcess[str]) -> float:
    found = re.search(r"peak-rss-kib (\d+)", result.stderr)
    assert found is not None, result.stderr
    return int(found.group(1)) / 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock(allowlist: AllowlistDir) -> subprocess.CompletedProcess[str]:
    return pipgate("lock", "--allowlist", str(allowlist.path))


def every_file(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# -- names become paths ----------------------------------------------------------------------


def test_path_like_names_never_become_paths(
    allowlist: AllowlistDir, index: HostileIndex, tmp_path: Path, wheels: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    real = wheels / "zq_lib-1.0-py3-none-any.whl"
    # Entries carrying the locked file's own sha256 (hashes are public) under names that
    # are paths, served other bytes: the old reader wrote them wherever the name pointed.
    planted = tmp_path / "planted.whl"
    planted.write_bytes(b"not the approved file")
    index.folder.joinpath("evil.bin").write_bytes(b"not the approved file")
    index.extra["zq-lib"] = [
        index.entry(
            real, filename=str(victim / "zq_lib-1.0-py3-none-any.whl"), url="/files/evil.bin"
        ),
        index.entry(
            real, filename="../../../../../../" + str(victim / "a.whl"), url="/files/evil.bin"
        ),
        index.entry(real, filename="..\\..\\zq_lib-1.0-py3-none-any.whl", url="/files/evil.bin"),
        index.entry(real, filename=".zq_lib-1.0-py3-none-any.whl", url="/files/evil.bin"),
        # Names packaging parses as zq-lib 1.0, with what a shell or a terminal would act on.
        index.entry(real, filename="zq_lib-1.0-py3-none-$(touch x).whl", url="/files/evil.bin"),
        index.entry(real, filename="zq_lib-1.0-py3-none-any\u202e.whl", url="/files/evil.bin"),
    ]
    # The same trick in an HTML page: an href whose last segment decodes to a path.
    href = "/files/..%2F..%2F" + urllib_quote(str(victim)) + "%2Fzq_app-1.0-py3-none-any.whl"
    app = wheels / "zq_app-1.0-py3-none-any.whl"
    index.routes["/simple/zq-app/"] = raw(
        (
            f'<html><body><a href="{href}#sha256={sha256(app)}">x</a>'
            f'<a href="/files/zq_app-1.0-py3-none-any.whl#sha256={sha256(app)}">'
            "zq_app-1.0-py3-none-any.whl</a></body></html>"
        ).encode(),
        "text/html",
    )
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-app==1.0"))
    before = every_file(tmp_path) - every_file(tmp_path / "cache")
    assert lock(allowlist).returncode == 0
    cache = tmp_path / "cache"
    checked = pipgate("check", "--allowlist", str(allowlist.path), "--cache", str(cache))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert list(victim.iterdir()) == []
    written = every_file(tmp_path) - before
    outside = {
        p
        for p in written
        if not p.is_relative_to(cache) and not p.is_relative_to(allowlist.path.parent / "generated")
    }
    assert outside == set()
    # Each layer on its own: the reader offers no path-like name as a candidate...
    listed = project_page(Source(index.url), NormalizedName("zq-lib")).files
    assert [f.filename for f in listed] == [real.name]
    # ...and the cache refuses to make a path of one, should any reach it.
    with pytest.raises(DownloadError, match="not a plain wheel or sdist name"):
        fetch_checked(FileCache(tmp_path / "c2"), str(victim / "x.whl"), "0" * 64, _never, "")
    assert list(victim.iterdir()) == []
    # The licence check read the approved files only, under their own names.
    assert {p.name for p in every_file(cache)} <= {
        "zq_app-1.0-py3-none-any.whl",
        "zq_lib-1.0-py3-none-any.whl",
    }


def _never(target: Path) -> str:
    raise AssertionError(f"nothing may be fetched to {target}")


def urllib_quote(text: str) -> str:
    import urllib.parse

    return urllib.parse.quote(text, safe="")


# -- ==1.0 is not 1.0 ----------------------------------------------------------------------


def test_a_local_version_sibling_is_never_locked(
    allowlist: AllowlistDir, index: HostileIndex, wheels: Path
) -> None:
    evil = build_wheel(LOCAL_SIBLING, "py3-none-any", wheels)
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-lib==1.0"))
    result = lock(allowlist)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the resolver chose zq-lib==1.0+evil for the entry zq-lib==1.0" in result.stdout
    assert "team.yaml:2:" in result.stdout
    lock_file = allowlist.path.parent / "generated" / "py311" / "requirements.txt"
    assert not lock_file.exists() or sha256(evil) not in lock_file.read_text()


def test_a_transitive_local_version_is_refused(
    allowlist: AllowlistDir, index: HostileIndex, wheels: Path
) -> None:
    build_wheel(LOCAL_SIBLING, "py3-none-any", wheels)
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-app==1.0"))
    result = lock(allowlist)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "zq-lib==1.0+evil, needed by zq-app, has a local version" in result.stdout


def test_another_spelling_of_the_version_never_reaches_the_lock(
    allowlist: AllowlistDir, index: HostileIndex, wheels: Path
) -> None:
    longer = build_wheel(LONGER_SPELLING, "py3-none-any", wheels)
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-lib==1.0"))
    result = lock(allowlist)
    lock_file = allowlist.path.parent / "generated" / "py311" / "requirements.txt"
    # PEP 440 calls 1.0.0 equal to 1.0, and ==1.0 matches it: either the resolver keeps
    # 1.0 and only 1.0's file is locked, or it takes 1.0.0 and the lock is refused.
    if result.returncode == 0:
        text = lock_file.read_text()
        assert sha256(longer) not in text
        assert sha256(wheels / "zq_lib-1.0-py3-none-any.whl") in text
    else:
        assert result.returncode == 1
        assert "the resolver chose zq-lib==1.0.0" in result.stdout


# -- redirects are not answers ------------------------------------------------------------


def test_a_registry_that_falls_back_to_another_index_is_never_verified(
    allowlist: AllowlistDir, index: HostileIndex, tmp_path: Path
) -> None:
    # pypiserver as it starts by default: a project it lacks is redirected to a fallback
    # index (here the hostile one, which lists every file the lock needs).
    packages = tmp_path / "registry"
    packages.mkdir()
    server = start_pypiserver(packages, tmp_path / "logs", fallback=index.url)
    with running(server):
        root = server.url.removesuffix("simple/")
        allowlist.write("config.yaml", config(index.url).replace("file://.registry", root))
        allowlist.write("team.yaml", entries("zq-app==1.0"))
        assert lock(allowlist).returncode == 0
        result = pipgate(
            "upload", "--allowlist", str(allowlist.path), "--cache", str(tmp_path / "cache")
        )
    said = result.stdout + result.stderr
    assert result.returncode == 3, said
    assert "redirected" in said and index.origin in said
    assert "--disable-fallback" in said
    assert "verified" not in result.stdout
    assert list(packages.iterdir()) == []  # nothing was uploaded to a registry that lies


def test_a_registry_listing_files_on_another_origin_is_refused(
    allowlist: AllowlistDir, index: HostileIndex, tmp_path: Path, wheels: Path
) -> None:
    registry = HostileIndex(wheels)
    try:
        real = wheels / "zq_app-1.0-py3-none-any.whl"
        registry.routes["/simple/zq-app/"] = raw(
            (
                f'<a href="{index.origin}/files/{real.name}#sha256={sha256(real)}">{real.name}</a>'
            ).encode(),
            "text/html",
        )
        registry_root = registry.origin + "/"
        allowlist.write("config.yaml", config(index.url).replace("file://.registry", registry_root))
        allowlist.write("team.yaml", entries("zq-app==1.0"))
        assert lock(allowlist).returncode == 0
        result = pipgate(
            "upload", "--allowlist", str(allowlist.path), "--cache", str(tmp_path / "cache")
        )
    finally:
        registry.stop()
    assert result.returncode == 3
    assert "another origin than its own" in result.stderr
    assert "verified" not in result.stdout


def test_a_registry_listing_a_file_with_credentials_never_puts_them_in_pylock(
    allowlist: AllowlistDir, index: HostileIndex, tmp_path: Path, wheels: Path
) -> None:
    # The registry's own page names each locked file at a URL of its own origin, but with
    # a user and password in it, and garbage for an upload time: pylock.toml takes the
    # URL as consumers reach it, so it is refused, and neither secret nor page is written.
    registry = HostileIndex(wheels)
    names = {"zq-app": "zq_app-1.0-py3-none-any.whl", "zq-lib": "zq_lib-1.0-py3-none-any.whl"}
    try:
        host = registry.origin.removeprefix("http://")
        for project, filename in names.items():
            real = wheels / filename
            link = f"http://reader:s3cr3t-token@{host}/files/{filename}#sha256={sha256(real)}"
            registry.routes[f"/simple/{project}/"] = raw(
                f'<a href="{link}" data-upload-time="\x1b[2J">{filename}</a>'.encode(),
                "text/html",
            )
        registry_root = registry.origin + "/"
        allowlist.write("config.yaml", config(index.url).replace("file://.registry", registry_root))
        allowlist.write("team.yaml", entries("zq-app==1.0"))
        assert lock(allowlist).returncode == 0
        cache = ("--cache", str(tmp_path / "cache"))
        fetched = pipgate("download", "--allowlist", str(allowlist.path), *cache)
        assert fetched.returncode == 0, fetched.stderr
        result = pipgate("render", "--allowlist", str(allowlist.path), *cache)
    finally:
        registry.stop()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds credentials or is not http(s)" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    generated = allowlist.path.parent / "generated" / "py311"
    assert not (generated / "pylock.toml").exists()
    assert not any("s3cr3t" in p.read_text(errors="replace") for p in every_file(generated))


def test_an_upstream_that_redirects_to_another_origin_is_refused(
    allowlist: AllowlistDir, index: HostileIndex, wheels: Path
) -> None:
    other = HostileIndex(wheels)
    try:
        index.routes["/simple/zq-app/"] = redirect(f"{other.url}zq-app/")
        allowlist.write("config.yaml", config(index.url))
        allowlist.write("team.yaml", entries("zq-app==1.0"))
        result = lock(allowlist)
    finally:
        other.stop()
    assert result.returncode == 3
    assert f"redirected to {other.origin}" in result.stderr
    assert "/simple/zq-app/" not in other.seen


@pytest.mark.parametrize("engine", ["pip-tools", "uv"])
def test_a_dependency_page_that_redirects_away_is_refused_and_never_followed(
    allowlist: AllowlistDir, index: HostileIndex, wheels: Path, engine: str
) -> None:
    # zq-lib is asked for by the resolver only (zq-app needs it): the resolver reads it
    # through pipgate's front, which refuses the redirect; neither pip nor uv follows it.
    other = HostileIndex(wheels)
    try:
        index.routes["/simple/zq-lib/"] = redirect(f"{other.url}zq-lib/")
        allowlist.write("config.yaml", config(index.url, "lock:", f"  engine: {engine}"))
        allowlist.write("team.yaml", entries("zq-app==1.0"))
        result = lock(allowlist)
    finally:
        other.stop()
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"redirected to {other.origin}" in result.stderr
    assert not [path for path in other.seen if "zq-lib" in path]
    assert "Traceback" not in result.stderr
    assert not (allowlist.path.parent / "generated" / "py311" / "requirements.txt").exists()


def test_a_redirect_to_no_url_is_an_error_not_a_traceback(
    allowlist: AllowlistDir, index: HostileIndex
) -> None:
    index.routes["/simple/zq-app/"] = redirect("http://[::1/simple/zq-app/")
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-app==1.0"))
    result = lock(allowlist)
    assert result.returncode == 3, result.stderr
    assert "answered with a redirect to something that is not a URL" in result.stderr
    assert "Traceback" not in result.stderr


# -- bounds ------------------------------------------------------------------------------


def test_an_endless_page_is_cut_off_with_memory_flat(
    allowlist: AllowlistDir, index: HostileIndex
) -> None:
    index.routes["/simple/zq-app/"] = endless()
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-app==1.0"))
    result = lock(allowlist)
    assert result.returncode == 3, result.stderr
    assert f"sent more than {32 << 20} bytes for one page" in result.stderr
    assert "Traceback" not in result.stderr
    assert peak_mib(result) < 300


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_dripping_server_is_cut_off_at_the_deadline(
    allowlist: AllowlistDir, index: HostileIndex, in_headers: bool
) -> None:
    index.routes["/simple/zq-app/"] = drip(in_headers=in_headers)
    allowlist.write("config.yaml", config(index.url, "limits:", "  page_seconds: 2"))
    allowlist.write("team.yaml", entries("zq-app==1.0"))
    result = lock(allowlist)
    assert result.returncode == 3, result.stderr
    assert "did not answer in full within 2 s" in result.stderr


def test_a_file_larger_than_its_index_published_is_cut_off(
    allowlist: AllowlistDir, index: HostileIndex, tmp_path: Path, wheels: Path
) -> None:
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-lib==1.0"))
    assert lock(allowlist).returncode == 0
    real = wheels / "zq_lib-1.0-py3-none-any.whl"
    index.routes[f"/files/{real.name}"] = larger_than_published(real.read_bytes(), 64 << 20)
    result = pipgate("check", "--allowlist", str(allowlist.path), "--cache", str(tmp_path / "c"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"sent more than {real.stat().st_size} bytes for one file" in result.stderr
    assert peak_mib(result) < 300


# -- malformed answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html>this is not json", "not JSON"),
        (b"[1, 2, 3]", "not a mapping with a list of files"),
        (b'{"files": [{"url": "/files/x"}]}', "files[0] has no filename or url text"),
        (b'{"files": "all of them"}', "not a mapping with a list of files"),
        (
            b'{"files": [{"filename": "zq_app-1.0-py3-none-any.whl", "url": "/f",'
            b' "hashes": {"sha256": "zz"}}]}',
            "zq_app-1.0-py3-none-any.whl has a sha256 that is not 64 hex digits",
        ),
        (b'{"files": [{"filename": 7, "url": []}]}', "files[0] has no filename or url text"),
        (
            b'{"files": [{"filename": "zq_app-1.0-py3-none-any.whl", "url": "/f",'
            b' "provenance": {"url": "/p"}}]}',
            "files[0].provenance is not a URL",
        ),
        (
            b'{"files": [{"filename": "zq_app-1.0-py3-none-any.whl", "url": "/f",'
            b' "core-metadata": "yes"}]}',
            "files[0].core-metadata is neither true, false nor hashes",
        ),
        (
            b'{"files": [{"filename": "zq_app-1.0-py3-none-any.whl", "url": "/f",'
            b' "core-metadata": {"sha256": "../../etc"}}]}',
            "files[0].core-metadata.sha256 is not 64 hex digits",
        ),
    ],
    ids=[
        "not-json",
        "a-list",
        "no-filename",
        "files-not-a-list",
        "bad-hash",
        "wrong-types",
        "provenance-not-text",
        "metadata-not-a-flag",
        "metadata-bad-hash",
    ],
)
def test_a_malformed_json_page_is_an_error_naming_the_url(
    allowlist: AllowlistDir, index: HostileIndex, body: bytes, said: str
) -> None:
    index.routes["/simple/zq-app/"] = raw(body)
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-app==1.0"))
    result = lock(allowlist)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"{index.url}zq-app/ is not a valid simple index page: {said}" in result.stderr


def test_malformed_html_links_are_never_candidates(index: HostileIndex, wheels: Path) -> None:
    # pipgate's own reader, in-process: pip itself stumbles over some of these links.
    app = wheels / "zq_app-1.0-py3-none-any.whl"
    good = f"/files/{app.name}#sha256={sha256(app)}"
    index.routes["/simple/zq-app/"] = raw(
        (
            '<a href="http://[::1/x.whl">broken</a><a>no href</a><a href="">empty</a>'
            '<a href="javascript:alert(1)">js</a><a href="http://127.0.0.1:99999/y.whl">port</a>'
            f'<a href="{good}">ok</a><a href="/files/zq_app-1.0-py3-none-any.whl">no hash</a'
        ).encode(),
        "text/html",
    )
    page = project_page(Source(index.url), NormalizedName("zq-app"))
    assert [(f.filename, f.sha256) for f in page.files] == [
        (app.name, sha256(app)),
        (app.name, None),  # listed without a hash: hashed only if it is ever needed
    ]


def test_a_page_without_hashes_costs_only_the_pinned_files(
    allowlist: AllowlistDir, index: HostileIndex, wheels: Path
) -> None:
    # No sha256 anywhere, and the files of every other version are gone (404): only the
    # pinned version's file is fetched to hash it; the old reader fetched them all.
    lib = wheels / "zq_lib-1.0-py3-none-any.whl"
    links = [f'<a href="/files/zq_lib-0.{n}-py3-none-any.whl">old</a>' for n in range(1, 30)]
    links.append(f'<a href="/files/{lib.name}">{lib.name}</a>')
    index.routes["/simple/zq-lib/"] = raw("".join(links).encode(), "text/html")
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-lib==1.0"))
    result = lock(allowlist)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (allowlist.path.parent / "generated" / "py311" / "requirements.txt").read_text()
    assert sha256(lib) in text
    assert not [p for p in index.seen if p.startswith("/files/zq_lib-0.")]


def test_a_link_to_a_local_file_from_a_remote_page_is_refused(
    allowlist: AllowlistDir, index: HostileIndex, wheels: Path
) -> None:
    app = wheels / "zq_app-1.0-py3-none-any.whl"
    index.extra["zq-app"] = [index.entry(app, url=app.as_uri())]
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-app==1.0"))
    result = lock(allowlist)
    assert result.returncode == 3
    assert "links a file on a file: URL" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999/simple/", "http://[::1/simple/", "https://[fe80::1%/x/"]
)
def test_a_bad_registry_url_is_a_clear_input_error(allowlist: AllowlistDir, url: str) -> None:
    allowlist.write("config.yaml", config("null").replace("file://.registry", url))
    result = pipgate("validate", "--allowlist", str(allowlist.path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "config.yaml:1:" in result.stdout


def test_a_bad_upstream_url_is_a_clear_input_error(allowlist: AllowlistDir) -> None:
    allowlist.write("config.yaml", config("http://[::1/simple/"))
    result = pipgate("validate", "--allowlist", str(allowlist.path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "config.yaml:2:" in result.stdout


# -- text is data -----------------------------------------------------------------------------

INJECTED = (
    "\r\n## PASS: approve this\r\n<!-- <img src=x onerror=alert(1)> [click](https://evil.example)"
    " ![i](https://evil.example/i.png) @security-team <b>bold</b> | cell \u202e\u2066 nul\0 "
    "`code` **strong** www.evil.example mail@evil.example &lt;script&gt; <https://evil.example>"
)

ALLOWED_ELEMENTS = {
    "h2",
    "h3",
    "p",
    "strong",
    "em",
    "code",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "details",
    "summary",
}


class _Elements(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.comments: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_injected_text_never_becomes_an_element_of_the_review(
    allowlist: AllowlistDir, index: HostileIndex, tmp_path: Path, wheels: Path
) -> None:
    import subprocess as sp

    repo = allowlist.path.parent
    allowlist.write("config.yaml", config(index.url))
    allowlist.write("team.yaml", entries("zq-lib==1.0"))
    assert lock(allowlist).returncode == 0
    sp.run(["git", "-C", str(repo), "init", "-q", "-b", "main"], check=True)
    sp.run(["git", "-C", str(repo), "add", "-A"], check=True)
    sp.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@localhost",
            "commit",
            "-q",
            "-m",
            "base",
        ],
        check=True,
    )
    # The request: a package whose upstream yanked it and quarantined... with crafted text,
    # and whose wheel declares a crafted licence.
    crafted = Dist("zq-new", "1.0", license=INJECTED.replace("\r\n", " ").replace("\0", ""))
    build_wheel(crafted, "py3-none-any", wheels)
    new = wheels / "zq_new-1.0-py3-none-any.whl"
    index.extra["zq-new"] = []
    index.status["zq-new"] = {"status": "archived", "reason": INJECTED}
    index.routes["/simple/zq-new/"] = lambda request: request.answer(
        200,
        json.dumps(
            {
                "meta": {"api-version": "1.1"},
                "name": "zq-new",
                "files": [index.entry(new, yanked=INJECTED)],
                "project-status": {"status": "archived", "reason": INJECTED},
            }
        ).encode(),
        "application/vnd.pypi.simple.v1+json",
    )
    allowlist.write("team.yaml", entries("zq-lib==1.0", "zq-new==1.0"))
    assert lock(allowlist).returncode == 0
    result = pipgate(
        "review",
        "--allowlist",
        str(allowlist.path),
        "--base",
        "main",
        "--database",
        str(Path(__file__).resolve().parent.parent / "data" / "osv"),
        "--max-data-age-days",
        "0",
        "--cache",
        str(tmp_path / "cache"),
    )
    assert result.returncode == 1, result.stderr[-2000:]  # yanked: the policy says no
    markdown = result.stdout
    assert "\r" not in markdown and "\0" not in markdown and "\u202e" not in markdown
    rendered = cmarkgfm.github_flavored_markdown_to_html(
        markdown,
        options=CmarkOptions.CMARK_OPT_UNSAFE,  # raw HTML passes: the worst case
    )
    elements = _Elements()
    elements.feed(rendered)
    assert elements.tags <= ALLOWED_ELEMENTS, elements.tags - ALLOWED_ELEMENTS
    assert elements.comments == []
    shown = "".join(elements.text)
    # The text is there, as text: the reviewer reads what the package said.
    assert "<img src=x onerror=alert(1)>" in shown and "[click](https" in shown
    assert "PASS: approve this" in shown
    assert not re.search(r"@[A-Za-z0-9]", shown)  # no @mention can form
    assert shown.count("FAIL") >= 1 and "<h2>" not in rendered.split("</h2>", 1)[1]


def test_a_registry_root_page_names_only_its_own_plain_projects(index: HostileIndex) -> None:
    # What verify reads first: every project the registry says it holds. A hostile root
    # page lists paths, scripts, other origins and odd names among a real one.
    index.routes["/simple/"] = raw(
        (
            b'<a href="zq-app/">zq-app</a><a href="../../etc/">etc</a>'
            b'<a href="javascript:alert(1)">js</a><a href="http://127.0.0.1:9/simple/x/">x</a>'
            b'<a href="%2E%2E%2Fup/">up</a><a href="a b/">space</a><a href="http://[::1/">v6</a>'
            b'<a href="Zq_App/">again</a>'
        ),
        "text/html",
    )
    spec = RegistrySpec(kind=RegistryKind.HTTP, url=index.origin + "/")
    registry = HttpRegistry(spec, EnvironmentCredentials(spec.url, {}))
    assert registry.projects() == ("zq-app",)


def test_upstream_credentials_never_reach_a_file_host(
    index: HostileIndex, wheels: Path, tmp_path: Path
) -> None:
    # An Artifact Registry remote repository as upstream is read with a token. A page that
    # links a file on an allowed file host (a CDN) must not hand that host the token.
    from typing import Any

    from pipgate import index as index_module
    from pipgate.http import Origins
    from pipgate.names import normalize

    class Token:
        def get(self) -> tuple[str, str]:
            return "oauth2accesstoken", "ya29.secret-token"

        def refresh(self) -> None:
            return

    cdn = HostileIndex(wheels)
    sent: list[str | None] = []
    real = wheels / "zq_app-1.0-py3-none-any.whl"

    def serve(request: Any) -> None:
        sent.append(request.headers.get("Authorization"))
        request.answer(200, real.read_bytes(), "application/octet-stream")

    cdn.routes[f"/files/{real.name}"] = serve
    page = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "zq-app",
            "files": [index.entry(real, url=f"{cdn.origin}/files/{real.name}")],
        }
    ).encode()
    to_upstream: list[str | None] = []

    def serve_page(request: Any) -> None:
        to_upstream.append(request.headers.get("Authorization"))
        request.answer(200, page, "application/vnd.pypi.simple.v1+json")

    index.routes["/simple/zq-app/"] = serve_page
    source = index_module.Source(
        index.url, origins=Origins(allowed=(cdn.origin,)), credentials=Token()
    )
    try:
        [listed] = index_module.project_files(source, normalize("zq-app"))
        digest = index_module.download(listed, tmp_path / real.name)
    finally:
        cdn.stop()
    assert digest == sha256(real)
    assert to_upstream and all((a or "").startswith("Basic ") for a in to_upstream)
    assert sent == [None]
