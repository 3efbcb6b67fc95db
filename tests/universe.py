"""The test universe: small real wheels and sdists, and real index servers on 127.0.0.1.

The packages have a dependency graph of their own that covers what real
packages do (chains, a diamond, a cycle, extras, python_version and
sys_platform markers, a Linux-only dependency, a release with several files,
an sdist-only project, a yanked release, a conflict), so end-to-end tests
never need the public index. Sdists carry an in-tree PEP 517 backend, so
pip can build their metadata with no build dependency from any index.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name


@dataclasses.dataclass(frozen=True)
class Dist:
    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[tuple[str, tuple[str, ...]], ...] = ()
    wheel_tags: tuple[str, ...] = ("py3-none-any",)
    sdist: bool = False
    requires_python: str | None = None
    license: str | None = "MIT"
    metadata_version: str = "2.1"
    license_expression: str | None = None
    classifiers: tuple[str, ...] = ()
    payload: int = 0
    """Bytes of incompressible data the wheel carries (for benchmarks of large files)."""
    build_error: str | None = None
    """What its sdist's build prints on standard error before it fails (a missing compiler)."""

    @property
    def module(self) -> str:
        return canonicalize_name(self.name).replace("-", "_")


def _metadata(dist: Dist) -> str:
    lines = [
        f"Metadata-Version: {dist.metadata_version}",
        f"Name: {dist.name}",
        f"Version: {dist.version}",
    ]
    if dist.license:
        lines.append(f"License: {dist.license}")
    if dist.license_expression:
        lines.append(f"License-Expression: {dist.license_expression}")
    lines += [f"Classifier: {c}" for c in dist.classifiers]
    if dist.requires_python:
        lines.append(f"Requires-Python: {dist.requires_python}")
    lines += [f"Requires-Dist: {r}" for r in dist.requires]
    for extra, requires in dist.extras:
        lines.append(f"Provides-Extra: {extra}")
        lines += [
            f"Requires-Dist: {r}; extra == '{extra}'"
            if ";" not in r
            else f"Requires-Dist: {r} and extra == '{extra}'"
            for r in requires
        ]
    return "\n".join(lines) + "\n\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(dist: Dist, tag: str, folder: Path) -> Path:
    module = dist.module
    info = f"{module}-{dist.version}.dist-info"
    files = {
        f"{module}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
        f"{info}/METADATA": _metadata(dist).encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: pipgate-tests\n"
            f"Root-Is-Purelib: {'true' if tag.endswith('-any') else 'false'}\nTag: {tag}\n\n"
        ).encode(),
    }
    record = [_record_line(p, d) for p, d in files.items()]
    path = folder / f"{module}-{dist.version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info_ = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            archive.writestr(info_, data)
        if dist.payload:
            record.append(_write_payload(archive, f"{module}/payload.bin", dist))
        record.append(f"{info}/RECORD,,")
        archive.writestr(
            zipfile.ZipInfo(f"{info}/RECORD", date_time=(2024, 1, 1, 0, 0, 0)),
            ("\n".join(record) + "\n").encode(),
        )
    return path


def _write_payload(archive: zipfile.ZipFile, name: str, dist: Dist) -> str:
    """Write ``dist.payload`` bytes of seeded pseudo-random data in chunks; its RECORD line."""
    digest = hashlib.sha256()
    seed = hashlib.sha256(f"{dist.name}-{dist.version}".encode()).digest()
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED  # random data does not compress
    remaining = dist.payload
    with archive.open(info, "w", force_zip64=remaining > (1 << 31)) as handle:
        counter = 0
        while remaining > 0:
            block = b"".join(
                hashlib.sha512(seed + (counter * 4096 + i).to_bytes(8, "big")).digest()
                for i in range(4096)
            )[:remaining]
            handle.write(block)
            digest.update(block)
            remaining -= len(block)
            counter += 1
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return f"{name},sha256={encoded},{dist.payload}"


_BACKEND = '''\
"""A PEP 517 backend in the sdist itself, so building needs nothing from an index."""
import base64, hashlib, os, zipfile

NAME = {name!r}
MODULE = {module!r}
VERSION = {version!r}
METADATA = {metadata!r}


BUILD_ERROR = {build_error!r}


def _ran():
    # The tests' witness that this build code ran at all (a real sdist's could do anything).
    folder = os.environ.get("PIPGATE_TEST_BUILD_MARKER")
    if folder:
        with open(os.path.join(folder, NAME), "a") as f:
            f.write("built\\n")
    if BUILD_ERROR:
        import sys

        print("running build_ext", flush=True)
        print(BUILD_ERROR, file=sys.stderr, flush=True)
        raise SystemExit(1)


def get_requires_for_build_wheel(config_settings=None):
    _ran()
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _ran()
    info = f"{{MODULE}}-{{VERSION}}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w") as f:
        f.write(METADATA)
    return info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{{MODULE}}-{{VERSION}}.dist-info"
    files = {{
        f"{{MODULE}}/__init__.py": f"__version__ = {{VERSION!r}}\\n".encode(),
        f"{{info}}/METADATA": METADATA.encode(),
        f"{{info}}/WHEEL": (
            b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\n"
            b"Tag: py3-none-any\\n\\n"
        ),
    }}
    lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    lines.append(f"{{info}}/RECORD,,")
    files[f"{{info}}/RECORD"] = ("\\n".join(lines) + "\\n").encode()
    name = f"{{MODULE}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return name
'''


def build_sdist(dist: Dist, folder: Path) -> Path:
    root = f"{dist.module}-{dist.version}"
    metadata = _metadata(dist)
    files = {
        "PKG-INFO": metadata,
        "pyproject.toml": textwrap.dedent("""\
            [build-system]
            requires = []
            build-backend = "backend"
            backend-path = ["."]
            """),
        "backend.py": _BACKEND.format(
            name=dist.name,
            module=dist.module,
            version=dist.version,
            metadata=metadata,
            build_error=dist.build_error,
        ),
    }
    path = folder / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"{root}/{name}")
            member.size = len(data)
            member.mtime = 1704067200
            archive.addfile(member, io.BytesIO(data))
    return path


AGPL_CLASSIFIER = "License :: OSI Approved :: GNU Affero General Public License v3"
LINUX_311 = "cp311-cp311-manylinux_2_17_x86_64"
LINUX_312 = "cp312-cp312-manylinux_2_17_x86_64"
WINDOWS_311 = "cp311-cp311-win_amd64"

UNIVERSE: tuple[Dist, ...] = (
    # a chain
    Dist("chain-a", "1.0", ("chain-b>=1",)),
    Dist("chain-b", "1.0", ("chain-c",)),
    Dist("chain-b", "1.1", ("chain-c",)),
    Dist("chain-c", "1.0"),
    # a diamond
    Dist("diamond-top", "1.0", ("diamond-left", "diamond-right")),
    Dist("diamond-left", "1.0", ("diamond-base>=1.0",)),
    Dist("diamond-right", "1.0", ("diamond-base<3",)),
    Dist("diamond-base", "1.0"),
    Dist("diamond-base", "2.0"),
    Dist("diamond-base", "3.0"),
    # a dependency cycle
    Dist("cycle-x", "1.0", ("cycle-y",)),
    Dist("cycle-y", "1.0", ("cycle-x",)),
    # extras
    Dist("extra-host", "1.0", (), (("fancy", ("extra-dep",)),)),
    Dist("extra-dep", "1.0"),
    # markers: a python_version split and a Linux-only dependency
    Dist(
        "marker-pkg",
        "1.0",
        (
            "old-py-dep; python_version < '3.12'",
            "new-py-dep; python_version >= '3.12'",
            "linux-only-dep; sys_platform == 'linux'",
            "windows-only-dep; sys_platform == 'win32'",
        ),
    ),
    Dist("old-py-dep", "1.0"),
    Dist("new-py-dep", "1.0"),
    Dist("linux-only-dep", "1.0"),
    Dist("windows-only-dep", "1.0"),
    # several files for one version: two platform wheels, a Windows wheel and an sdist
    Dist("multi-file", "1.0", (), (), (LINUX_311, LINUX_312, WINDOWS_311), sdist=True),
    # only an sdist, and a wheel that needs it
    Dist("sdist-only", "1.0", (), (), (), sdist=True),
    Dist("needs-sdist", "1.0", ("sdist-only",)),
    # newer releases of one project, each refused for another reason but one (outdated,
    # bump): 1.1 passes, 1.2 is known vulnerable (a record the test writes), 1.3 yanked,
    # 1.4 too young, 1.5 an sdist alone
    Dist("bump-me", "1.0"),
    Dist("bump-me", "1.1"),
    Dist("bump-me", "1.2"),
    Dist("bump-me", "1.3"),
    Dist("bump-me", "1.4"),
    Dist("bump-me", "1.5", (), (), (), sdist=True),
    # a yanked release next to a good one (yanking is shown by the index that serves it)
    Dist("yanked-pkg", "1.0"),
    Dist("yanked-pkg", "1.1"),
    # a conflict: both pins need a different shared
    Dist("conflict-a", "1.0", ("conflict-shared<2",)),
    Dist("conflict-b", "1.0", ("conflict-shared>=2",)),
    Dist("conflict-shared", "1.0"),
    Dist("conflict-shared", "2.0"),
    # only for Python 3.12 and newer
    Dist("py312-only", "1.0", (), (), ("py3-none-any",), requires_python=">=3.12"),
    # real names at versions with real advisories (tests/data/osv), served only here
    Dist("requests", "2.30.0", ("certifi>=2017.4.17",)),
    Dist("requests", "2.31.0", ("certifi>=2017.4.17",)),
    Dist("certifi", "2022.12.7"),
    Dist("certifi", "2023.7.22"),
    Dist("uses-old-certifi", "1.0", ("certifi<2023",)),
    Dist("redis", "4.5.4"),
    # Metadata-Version 2.0, as old bdist_wheel wrote it: twine 7 refuses to upload it
    Dist("old-metadata", "1.0", metadata_version="2.0"),
    # for the policy checks: a release uploaded "today" (FRESH), project statuses (STATUS),
    # a name one letter from a popular package, and licences
    Dist("fresh-pkg", "1.0"),
    Dist("quarantined-pkg", "1.0"),
    Dist("archived-pkg", "1.0"),
    Dist("requets", "1.0"),
    Dist("gpl-pkg", "1.0", license=None, license_expression="GPL-3.0-only", metadata_version="2.4"),
    Dist("agpl-classified", "1.0", license=None, classifiers=(AGPL_CLASSIFIER,)),
    Dist("no-license", "1.0", license=None),
    Dist("needs-gpl", "1.0", ("gpl-pkg",)),
    Dist("uses-fresh", "1.0", ("fresh-pkg>=1.0",)),
    Dist("fresh-pkg", "0.9"),  # so that fresh-pkg is no new project (TIMES: 200 days ago)
    # an sdist whose build fails (no compiler here), and a wheel that needs it
    Dist(
        "broken-build",
        "1.0",
        (),
        (),
        (),
        sdist=True,
        build_error="error: command 'gcc' failed: No such file or directory",
    ),
    Dist("needs-broken", "1.0", ("broken-build",)),
    # the cooldown in the resolver: the newest cool-dep is fresh, an older one is not
    Dist("cool-dep", "1.0"),
    Dist("cool-dep", "1.1"),
    Dist("cool-top", "1.0", ("cool-dep>=1.0",)),
    # the signals of real incidents (TIMES, PROVENANCE): a revival after years of silence, a
    # project first published a month ago, a file added to a release two months late, and
    # releases with PEP 740 provenance by one publisher, then another, then none
    Dist("dormant-pkg", "1.0"),
    Dist("dormant-pkg", "2.0"),
    Dist("young-project", "1.0"),
    Dist("late-files", "1.0", sdist=True),
    Dist("attested", "1.0"),
    Dist("attested", "1.1"),
    Dist("attested", "1.2"),
    Dist("attested", "1.3"),
    # a release reported malicious (tests/data/osv/synthetic/MAL-2000-1.json)
    Dist("evil-pkg", "1.0"),
)


def build_universe(folder: Path, dists: Sequence[Dist] = UNIVERSE) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    built = []
    for dist in dists:
        for tag in dist.wheel_tags:
            built.append(build_wheel(dist, tag, folder))
        if dist.sdist:
            built.append(build_sdist(dist, folder))
    return built


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Server:
    url: str
    """The index root, ending in /simple/."""
    packages: Path
    process: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = None

    @property
    def root(self) -> str:
        return self.url.removesuffix("simple/")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pypiserver exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError as answered:
            answered.close()
            return  # it answers (401 for a protected index): it is up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"pypiserver did not start at {url}")


def start_pypiserver(
    packages: Path,
    logs: Path,
    *,
    htpasswd: Path | None = None,
    username: str | None = None,
    password: str | None = None,
    fallback: str | None = None,
    authenticate: str = "update,download,list",
) -> Server:
    """pypiserver on 127.0.0.1 at a free port, serving ``packages``; with ``fallback``, as it
    starts by default: a project it lacks is redirected there (never to a public index).
    With ``htpasswd``, the actions in ``authenticate`` need its password."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        *(["--fallback-url", fallback] if fallback else ["--disable-fallback"]),
        "--hash-algo",
        "sha256",
    ]
    if htpasswd is None:
        args += ["-a", ".", "-P", "."]
    else:
        args += ["-a", authenticate, "-P", str(htpasswd)]
    args.append(str(packages))
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"pypiserver-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TWINE_"))}
    with log.open("wb") as handle:
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        _wait_until_up(url, process, log)
    except BaseException:
        process.kill()
        raise
    return Server(url, packages, process, username, password)


def write_htpasswd(path: Path, username: str, password: str) -> Path:
    """An htpasswd file with a {SHA} entry, which pypiserver's passlib accepts."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()  # noqa: S324
    path.write_text(f"{username}:{{SHA}}{digest}\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


class InterceptingProxy:
    """An HTTPS proxy on 127.0.0.1 that answers every request itself with one status.

    It terminates TLS with a certificate issued, for whatever host the client
    asks for, by a test CA (trustme) that the child process is told to trust,
    so a tool's hard-wired online service can be made to answer "not found"
    without any traffic leaving the machine.
    """

    def __init__(self, status: int = 404, body: bytes = b'{"message": "Not Found"}') -> None:
        import ssl
        import threading

        import trustme

        self.ca = trustme.CA()
        self.status = status
        self.body = body
        self.hosts: list[str] = []
        self._ssl = ssl
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def ca_bundle(self, folder: Path) -> Path:
        path = folder / "intercepting-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError), client:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            target = request.split(b" ", 2)[1].decode()
            host = target.rsplit(":", 1)[0]
            self.hosts.append(host)
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            context = self._ssl.SSLContext(self._ssl.PROTOCOL_TLS_SERVER)
            self.ca.issue_cert(host).configure_cert(context)
            with context.wrap_socket(client, server_side=True) as tls:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                reason = {404: "Not Found", 503: "Service Unavailable"}.get(self.status, "X")
                tls.sendall(
                    f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n".encode()
                    + self.body
                )

    def close(self) -> None:
        self._listener.close()


YANKED = {
    "yanked_pkg-1.0-py3-none-any.whl": "broken build, use 1.1",
    "bump_me-1.3-py3-none-any.whl": "wrong files",
}
"""Files the upstream marks as yanked (PEP 592), with the reason it gives."""

UPLOADED_LONG_AGO = "2024-01-01T00:00:00.000000Z"
TIMES: dict[str, str | datetime.timedelta] = {
    "fresh_pkg-0.9-py3-none-any.whl": datetime.timedelta(days=200),
    "cool_dep-1.0-py3-none-any.whl": datetime.timedelta(days=200),
    "dormant_pkg-1.0-py3-none-any.whl": "2019-01-01T00:00:00.000000Z",
    "dormant_pkg-2.0-py3-none-any.whl": datetime.timedelta(days=30),
    "young_project-1.0-py3-none-any.whl": datetime.timedelta(days=30),
    "late_files-1.0.tar.gz": "2024-03-01T00:00:00.000000Z",
}
"""Upload times other than UPLOADED_LONG_AGO: a time, or how long ago (from the request)."""
ATTESTED = {"kind": "GitHub", "repository": "attested-org/attested", "workflow": "release.yml"}
PROVENANCE: dict[str, dict[str, str]] = {
    "attested-1.0-py3-none-any.whl": ATTESTED,
    "attested-1.1-py3-none-any.whl": ATTESTED,
    "attested-1.2-py3-none-any.whl": {
        "kind": "GitHub",
        "repository": "someone-else/attested",
        "workflow": "publish.yml",
    },
}
"""Files the upstream publishes PEP 740 provenance for, by their publisher."""
FRESH = frozenset(
    {
        "fresh_pkg-1.0-py3-none-any.whl",
        "cool_dep-1.1-py3-none-any.whl",
        "bump_me-1.4-py3-none-any.whl",
    }
)
"""Files the upstream says were uploaded just now (PEP 700 upload-time); the rest long ago."""

STATUS = {
    "quarantined-pkg": ("quarantined", "reported as malware"),
    "archived-pkg": ("archived", ""),
}
"""Projects whose page carries a PEP 792 status."""


class UpstreamFront:
    """A reverse proxy in front of pypiserver that makes it look like a modern index.

    pypiserver cannot yank a release, and its pages carry no upload time and no
    project status; a real index does, and the tests need one that does. It
    answers the simple API in PEP 691 JSON (api-version 1.4: PEP 700 upload
    times, PEP 792 status) to clients that prefer it, and in HTML with
    ``data-yanked`` and the status meta tags to the others. Files pass through.
    """

    def __init__(  # noqa: PLR0915 - one server, its handlers inline
        self,
        backend: Server,
        yanked: dict[str, str],
        *,
        fresh: frozenset[str] = FRESH,
        status: dict[str, tuple[str, str]] | None = None,
        times: dict[str, str | datetime.timedelta] | None = None,
        provenance: dict[str, dict[str, str]] | None = None,
        hidden: set[str] | frozenset[str] = frozenset(),
        raw_provenance: dict[str, bytes] | None = None,
        provenance_at: str = "/provenance/",
        core_metadata: bool = False,
        metadata_served: dict[str, bytes] | None = None,
    ) -> None:
        import datetime
        import html
        import html.parser
        import http.server
        import json
        import threading

        status = STATUS if status is None else status

        times = TIMES if times is None else times
        attested: dict[str, dict[str, str]] = PROVENANCE if provenance is None else provenance

        def upload_time(filename: str) -> str:
            now = datetime.datetime.now(datetime.UTC)
            if filename in fresh:
                return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            given = times.get(filename, UPLOADED_LONG_AGO)
            if isinstance(given, datetime.timedelta):
                return (now - given).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return given

        class Links(html.parser.HTMLParser):
            def __init__(self) -> None:
                super().__init__()
                self.links: list[tuple[str, dict[str, str | None]]] = []
                self._current: dict[str, str | None] | None = None

            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                if tag == "a":
                    self._current = dict(attrs)

            def handle_data(self, data: str) -> None:
                if self._current is not None:
                    self.links.append((data.strip(), self._current))
                    self._current = None

        def wheel_metadata(path: str) -> bytes:
            """The METADATA of the backend's wheel at ``path`` (PEP 658's metadata file)."""
            with urllib.request.urlopen(backend.root.rstrip("/") + path, timeout=30) as answer:
                data = answer.read()
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                return archive.read(name)

        def as_json(project: str, text: str) -> bytes:
            parser = Links()
            parser.feed(text)
            files = []
            for filename, attrs in parser.links:
                if filename in hidden:
                    continue  # no longer listed (a removed release's file)
                href = attrs.get("href") or ""
                url, _, fragment = href.partition("#")
                entry: dict[str, object] = {
                    "filename": filename,
                    "url": url,
                    "hashes": dict([fragment.split("=", 1)]) if "=" in fragment else {},
                    "yanked": yanked.get(filename, False),
                    "upload-time": upload_time(filename),
                }
                if attrs.get("data-requires-python"):
                    entry["requires-python"] = html.unescape(attrs["data-requires-python"] or "")
                if filename in attested:
                    entry["provenance"] = f"{provenance_at}{filename}"
                if core_metadata and filename.endswith(".whl"):
                    listed = hashlib.sha256(wheel_metadata(urllib.parse.urlsplit(url).path))
                    entry["core-metadata"] = {"sha256": listed.hexdigest()}
                files.append(entry)
            document: dict[str, object] = {
                "meta": {"api-version": "1.4"},
                "name": project,
                "files": files,
            }
            if project in status:
                document["project-status"] = {
                    "status": status[project][0],
                    "reason": status[project][1],
                }
            return json.dumps(document).encode()

        def as_html(project: str, text: str) -> bytes:
            import re

            for filename in hidden:
                text = re.sub(rf"<a [^>]*>{re.escape(filename)}</a>(<br>)?", "", text)
            for filename in attested:
                text = text.replace(
                    f">{filename}</a>", f' data-provenance="/provenance/{filename}">{filename}</a>'
                )
            for filename, reason in yanked.items():
                text = text.replace(
                    f">{filename}</a>", f' data-yanked="{html.escape(reason)}">{filename}</a>'
                )
            if project in status:
                state, reason = status[project]
                text = text.replace(
                    "<head>",
                    f'<head><meta name="pypi:project-status" content="{state}">'
                    f'<meta name="pypi:project-status-reason" content="{html.escape(reason)}">',
                    1,
                )
            return text.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_HEAD(self) -> None:
                # A file's headers (uv asks them before a range request), as an index does.
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                if self.path.startswith("/provenance/"):
                    self.provenance(self.path.rsplit("/", 1)[-1])
                    return
                if core_metadata and self.path.endswith(".whl.metadata"):
                    front.metadata_requests.append(self.path)
                    name = self.path.rsplit("/", 1)[-1].removesuffix(".metadata")
                    served = (metadata_served or {}).get(name)
                    if served is None:
                        served = wheel_metadata(self.path.removesuffix(".metadata"))
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(served)))
                    self.end_headers()
                    self.wfile.write(served)
                    return
                url = backend.root.rstrip("/") + self.path
                try:
                    with urllib.request.urlopen(url, timeout=30) as response:
                        status_code, body = response.status, response.read()
                        content_type = response.headers.get("Content-Type", "")
                except urllib.error.HTTPError as error:
                    status_code, body, content_type = error.code, error.read(), "text/plain"
                    error.close()
                parts = self.path.split("/")
                if self.path.startswith("/simple/") and status_code == 200 and len(parts) > 3:
                    project = parts[2]
                    accept = self.headers.get("Accept", "")
                    if "application/vnd.pypi.simple.v1+json" in accept.split(",")[0]:
                        body = as_json(project, body.decode())
                        content_type = "application/vnd.pypi.simple.v1+json"
                    else:
                        body = as_html(project, body.decode())
                self.send_response(status_code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def provenance(self, filename: str) -> None:
                """A PEP 740 provenance object: one attestation bundle by the publisher."""
                publisher = attested.get(filename)
                raw = (raw_provenance or {}).get(filename)
                if raw is not None:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                if publisher is None:
                    self.send_error(404)
                    return
                body = json.dumps(
                    {
                        "version": 1,
                        "attestation_bundles": [{"publisher": publisher, "attestations": []}],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.pypi.integrity.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        front = self
        self.metadata_requests: list[str] = []
        """The metadata files asked for (PEP 658), in order."""
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"
        self.backend = backend
        self.yanked = yanked

    def server(self) -> Server:
        """The front as a Server: its URL, the backend's files and process."""
        return dataclasses.replace(self.backend, url=self.url)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FaultyFront:
    """A reverse proxy in front of the registry that misbehaves on uploads, as scheduled.

    Each POST takes the next action from ``schedule`` (then ``pass``):
    ``503`` answers 503 and forwards nothing; ``cut`` reads half the body and
    drops the connection (nothing reaches the registry); ``drop`` forwards the
    upload and drops the connection before answering (it did reach the
    registry); ``slow`` forwards it and answers only after ``delay`` seconds.
    GETs pass through. With an empty schedule it is a plain pass-through proxy
    that counts bytes: ``bytes_served`` (GET answers) and ``bytes_received``
    (POST bodies), as the benchmarks use it.
    """

    def __init__(self, backend: Server, schedule: list[str], delay: float = 30) -> None:
        import http.server
        import threading

        import requests

        self.backend = backend
        self.schedule = list(schedule)
        self.seen: list[str] = []
        self.bytes_served = 0
        self.bytes_received = 0
        lock = threading.Lock()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _headers(self) -> dict[str, str]:
                return {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "accept")
                }

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                response = requests.get(
                    backend.root.rstrip("/") + self.path,
                    headers=self._headers(),
                    timeout=30,
                    allow_redirects=False,
                )
                with lock:
                    front.bytes_served += len(response.content)
                self._reply(
                    response.status_code,
                    response.content,
                    response.headers.get("Content-Type", "text/html"),
                )

            def do_POST(self) -> None:
                with lock:
                    action = front.schedule.pop(0) if front.schedule else "pass"
                    front.seen.append(action)
                length = int(self.headers.get("Content-Length") or 0)
                if action == "cut":
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self.rfile.read(length)
                with lock:
                    front.bytes_received += len(body)
                if action == "503":
                    self._reply(503, b"try later", "text/plain")
                    return
                response = requests.post(
                    backend.root.rstrip("/") + self.path,
                    data=body,
                    headers=self._headers(),
                    timeout=60,
                )
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "slow":
                    time.sleep(delay)
                self._reply(
                    response.status_code,
                    response.content,
                    response.headers.get("Content-Type", "text/plain"),
                )

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
