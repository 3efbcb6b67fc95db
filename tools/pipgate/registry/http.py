"""``http(s)://``: any index with the simple read API and the legacy upload API.

pypiserver, devpi, Nexus, Artifactory. Reads and direct uploads go through
the one HTTP client; uploads otherwise through twine's command line.
"""

from __future__ import annotations

import concurrent.futures
import email.parser
import io
import os
import re
import sys
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.metadata import ExceptionGroup, InvalidMetadata, Metadata, parse_email

from pipgate import index
from pipgate.allowlist import RegistrySpec
from pipgate.distmeta import metadata_text
from pipgate.http import Answer, HttpError, RedirectRefusedError, client
from pipgate.names import NormalizedName, check_name, file_release, normalize
from pipgate.registry.credentials import Credentials
from pipgate.registry.interface import (
    Held,
    Registry,
    RegistryError,
    Removal,
    UploadRefusedError,
)
from pipgate.runner import ToolError, redact, run, tool_environment
from pipgate.urls import origin, redact_url, with_credentials

LIST_WORKERS = 8
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
FALLBACK_HINT = (
    "the private registry must answer from what it holds and never redirect to another "
    "index: for pypiserver, start it with --disable-fallback; for devpi, use an index "
    "without bases; for Nexus or Artifactory, a hosted (not proxy or group) repository"
)


class HttpRegistry(Registry):
    """An index with the simple API and the legacy upload API."""

    def __init__(
        self,
        spec: RegistrySpec,
        credentials: Credentials,
        upload_url: str | None = None,
        simple_url: str | None = None,
    ) -> None:
        self.spec = spec
        self.credentials = credentials
        self._upload_url = upload_url or spec.upload_url
        self._simple_url = simple_url or spec.simple_url
        self.timeout = float(os.environ.get("PIPGATE_UPLOAD_TIMEOUT") or 600)
        """Seconds one upload may take before its outcome is treated as unknown."""

    def _upload_directly(self, path: Path, sha256: str) -> None:
        fields = legacy_upload_fields(path, sha256)
        body = MultipartFile(fields, path)
        try:
            response = client().post(
                self.upload_url,
                data=body,
                credentials=self.credentials,
                headers={"Content-Type": body.content_type, "Content-Length": str(len(body))},
                rewind=body.rewind,
                seconds=self.timeout,
            )
        except HttpError as exc:
            raise RegistryError(f"uploading {path.name}: {exc.reason}") from None
        if response.status_code >= 400:
            raise RegistryError(
                f"the registry answered HTTP {response.status_code} to the upload of {path.name}"
            )

    @property
    def simple_url(self) -> str:
        return self._simple_url

    @property
    def upload_url(self) -> str:
        return self._upload_url

    def pip_index_url(self) -> str:
        # Without a credential here, pip asks keyring itself.
        return with_credentials(self.simple_url, self.credentials.get())

    def size(self, held: Held) -> int | None:
        if origin(held.url) != origin(self.simple_url):
            return None
        try:
            answer = client().head(held.url, credentials=self.credentials)
        except HttpError:
            return None
        length = answer.headers.get("Content-Length", "")
        return int(length) if answer.status_code < 400 and length.isdigit() else None

    @property
    def removal_hint(self) -> str:
        return (
            "delete it with the registry's own tools (pypiserver: remove it from its packages "
            "folder; devpi: 'devpi remove NAME==VERSION'; Nexus, Artifactory, GitLab: the "
            "package's page or API)"
        )

    @property
    def removal(self) -> Removal:
        return {"devpi": Removal.FILE, "pypiserver": Removal.RELEASE}.get(
            self.spec.server or "", Removal.NONE
        )

    def remove(self, files: Sequence[Held]) -> None:
        if self.removal is Removal.FILE:
            for held in files:
                self._delete_file(held)
        elif self.removal is Removal.RELEASE and files:
            self._remove_release(files)
        else:
            super().remove(files)

    def _delete_file(self, held: Held) -> None:
        """devpi: ``DELETE`` on the file's own URL (``/USER/INDEX/+f/...``)."""
        if origin(held.url) != origin(self.simple_url) or "/+f/" not in held.url:
            raise RegistryError(f"{held.filename} is not served by the devpi index; not deleted")
        try:
            answer = client().delete(held.url, credentials=self.credentials)
        except HttpError as exc:
            raise RegistryError(f"deleting {held.filename}: {exc.reason}") from None
        if answer.status_code in (404, 410):
            return  # already gone: what was asked holds
        if answer.status_code == 403 and b"volatile" in answer.content:
            raise RegistryError(
                f"devpi refused to delete {held.filename}: the index is not volatile",
                hint="a non-volatile index keeps every file by design; make it volatile for "
                "the prune ('devpi index USER/INDEX volatile=True'), or delete by hand",
            )
        if answer.status_code >= 400:
            raise RegistryError(
                f"the registry answered HTTP {answer.status_code} to deleting {held.filename}",
                hint="the user needs permission to delete from the index",
            )

    def _remove_release(self, files: Sequence[Held]) -> None:
        """pypiserver: its ``remove_pkg`` action, which removes every file of a release whose
        name and version are spelled as given (as in the file names: ``cycle_x``, ``1.0``)."""
        release = file_release(files[0].filename)
        if release is None or any(file_release(h.filename) != release for h in files):
            raise RegistryError("the files to remove are not of one release; nothing removed")
        for name, version in sorted({_spelled(h.filename) for h in files}):
            body = urllib.parse.urlencode(
                {":action": "remove_pkg", "name": name, "version": version}
            )
            try:
                answer = client().post(
                    self.upload_url,
                    data=body.encode(),
                    credentials=self.credentials,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    seconds=self.timeout,
                )
            except HttpError as exc:
                raise RegistryError(f"removing {name}=={version}: {exc.reason}") from None
            if answer.status_code >= 400:
                raise RegistryError(
                    f"the registry answered HTTP {answer.status_code} to removing "
                    f"{name}=={version}",
                    hint="pypiserver removes with the credentials that upload ('-a update' "
                    "and its password file)",
                )

    def fetch(self, held: Held, target: Path) -> str:
        if origin(held.url) != origin(self.simple_url):
            raise RegistryError(f"{held.filename} is not on the registry's origin; not fetched")
        try:
            with target.open("wb") as handle:
                status, digest = client().download(
                    held.url,
                    handle,
                    credentials=self.credentials,
                    retries=0,
                    redirect_hint=FALLBACK_HINT,
                )
        except HttpError as exc:
            raise RegistryError(f"fetching {held.filename}: {exc.reason}") from None
        if status >= 400:
            raise RegistryError(f"the registry answered HTTP {status} for {held.filename}")
        return digest

    def _get(self, url: str) -> Answer:
        try:
            return client().get(
                url,
                credentials=self.credentials,
                headers={"Accept": "text/html"},
                retries=0,
                redirect_hint=FALLBACK_HINT,
            )
        except RedirectRefusedError as exc:
            raise RegistryError(
                f"the registry redirected {redact_url(url)} to {redact_url(exc.target)}: it "
                "falls back to another index, so what it lists is not what it holds",
                hint=FALLBACK_HINT,
            ) from None
        except HttpError as exc:
            raise RegistryError(
                f"cannot reach the registry at {redact_url(url)}: {exc.reason}", hint=exc.hint
            ) from None

    def projects(self) -> tuple[NormalizedName, ...]:
        response = self._get(self.simple_url)
        if response.status_code >= 400:
            raise RegistryError(
                f"the registry answered HTTP {response.status_code} for its index "
                f"{redact_url(self.simple_url)}"
            )
        names = set()
        for link in index.parse_html(response.text, response.url):
            # The root page links each project's page: .../simple/NAME/
            segment = link.url.rstrip("/").rsplit("/", 1)[-1]
            if check_name(segment) is None and link.url.startswith(self.simple_url):
                names.add(normalize(segment))
        return tuple(sorted(names))

    def list(self, projects: Iterable[NormalizedName]) -> dict[str, Held]:
        # One page per project, read a few at a time: a no-op sync is mostly this.
        with concurrent.futures.ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:
            pages = list(pool.map(self._list_project, projects))
        return {name: held for page in pages for name, held in page.items()}

    def _list_project(self, project: NormalizedName) -> dict[str, Held]:
        held: dict[str, Held] = {}
        url = self.simple_url.rstrip("/") + f"/{project}/"
        response = self._get(url)
        if response.status_code == 404:
            return held
        if response.status_code in (401, 403):
            raise RegistryError(
                f"the registry refused to list {project} (HTTP {response.status_code})",
                hint="set PIPGATE_REGISTRY_USERNAME and PIPGATE_REGISTRY_PASSWORD (or "
                "TWINE_USERNAME/TWINE_PASSWORD), or store them in keyring",
            )
        if response.status_code >= 400:
            raise RegistryError(
                f"the registry answered HTTP {response.status_code} for {redact_url(url)}"
            )
        for link in index.parse_html(response.text, response.url):
            release = file_release(link.filename) if index.safe_filename(link.filename) else None
            if release is None or release[0] != project:
                continue  # not a file of this project: never taken for one
            if origin(link.url) != origin(self.simple_url):
                # Credentials go with every fetch from the registry: a file listed on another
                # origin would receive them, and would not be a file this registry holds.
                raise RegistryError(
                    f"the registry lists {link.filename} on {origin(link.url) or link.url[:80]}, "
                    "another origin than its own",
                    hint="the private registry must serve its files itself; check what "
                    "answers at its URL (a proxy or a fallback to another index)",
                )
            if link.sha256 is None or not _SHA256.fullmatch(link.sha256):
                raise RegistryError(
                    f"the registry lists {link.filename} without a sha256",
                    hint="pipgate verifies by hash; configure the index to publish "
                    "sha256 fragments",
                )
            held[link.filename] = Held(
                link.filename, link.sha256.lower(), link.url, upload_time=link.upload_time
            )
        return held

    def upload(self, path: Path, sha256: str) -> None:
        refused = twine_refuses(path)
        if refused is not None:
            # twine 7 rejects metadata some published releases still carry (Metadata-Version
            # 2.0, for one). The file itself is what the lock approved, byte for byte, so it
            # goes up through the same legacy upload API directly.
            self._upload_directly(path, sha256)
            return
        for attempt in range(2):
            env = tool_environment(isolate_pip=True)
            for key in list(env):
                if key.startswith("TWINE_"):
                    del env[key]
            creds = self.credentials.get()
            if creds is not None:
                env["TWINE_USERNAME"], env["TWINE_PASSWORD"] = creds
            args = [
                sys.executable,
                "-m",
                "twine",
                "upload",
                "--non-interactive",
                "--disable-progress-bar",
                "--config-file",
                os.devnull,
                "--repository-url",
                self.upload_url,
                str(path),
            ]
            try:
                result = run(args, env=env, timeout=self.timeout)
            except ToolError as error:
                raise RegistryError(f"uploading {path.name}: {error.message}") from None
            if result.returncode == 0:
                return
            text = redact(result.output)
            if "401" in text and attempt == 0:
                self.credentials.refresh()
                continue
            raise RegistryError(f"twine could not upload {path.name}:\n{text.strip()[-800:]}")


def _spelled(filename: str) -> tuple[str, str]:
    """A file's name and version as its file name spells them (not normalised)."""
    if filename.endswith(".whl"):
        name, version = filename[:-4].split("-")[:2]
        return name, version
    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    name, _, version = stem.rpartition("-")
    return name, version


def twine_refuses(path: Path) -> str | None:
    """Why twine would refuse ``path``'s metadata (it validates it with packaging), or None."""
    text = metadata_text(path)
    if text is None:
        return None
    raw, unparsed = parse_email(text)
    unparsed.pop("license-file", None)
    try:
        Metadata.from_raw(raw)
    except ExceptionGroup as group:
        return "; ".join(sorted(str(e) for e in group.exceptions))
    except InvalidMetadata as error:
        return str(error)
    return None


def legacy_upload_fields(path: Path, sha256: str) -> list[tuple[str, str]]:
    """The form fields of the legacy upload API, from the file's own metadata."""
    text = metadata_text(path) or ""
    headers = email.parser.Parser().parsestr(text, headersonly=True)
    release = file_release(path.name)
    if release is None:
        raise UploadRefusedError(f"{path.name} is not a wheel or sdist file name")
    if path.name.endswith(".whl"):
        filetype, pyversion = "bdist_wheel", path.name[:-4].split("-")[-3]
    else:
        filetype, pyversion = "sdist", "source"
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("name", headers.get("Name") or str(release[0])),
        ("version", str(release[1])),
        ("filetype", filetype),
        ("pyversion", pyversion),
        ("metadata_version", headers.get("Metadata-Version") or "1.0"),
        ("sha256_digest", sha256),
    ]
    for key in ("Summary", "Requires-Python", "License", "Author", "Home-page"):
        if headers.get(key):
            fields.append((key.lower().replace("-", "_"), str(headers.get(key))))
    return fields


class MultipartFile:
    """A multipart/form-data body read in chunks: the file is never held in memory.

    Not an ``io`` object on purpose: requests treats iterables as streams of
    unknown length and would send them chunked.
    """

    def __init__(self, fields: list[tuple[str, str]], path: Path) -> None:
        self.boundary = "pipgate-" + uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
            for name, value in fields
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self._parts: list[bytes | Path] = [head, path, f"\r\n--{self.boundary}--\r\n".encode()]
        self._length = len(head) + path.stat().st_size + len(self._parts[2])  # type: ignore[arg-type]
        self._handle: io.BufferedReader | None = None
        self._index = 0
        self._offset = 0
        self._position = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._position

    def rewind(self) -> None:
        """Back to the first byte, to be sent again (after a 401)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._index = self._offset = self._position = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._read(size)
        self._position += len(chunk)
        return chunk

    def _read(self, size: int) -> bytes:

        size = 1 << 16 if size is None or size < 0 else size
        while self._index < len(self._parts):
            part = self._parts[self._index]
            if isinstance(part, Path):
                if self._handle is None:
                    self._handle = part.open("rb")
                chunk = self._handle.read(size)
                if chunk:
                    return chunk
                self._handle.close()
                self._handle = None
            else:
                chunk = part[self._offset : self._offset + size]
                if chunk:
                    self._offset += len(chunk)
                    return chunk
                self._offset = 0
            self._index += 1
        return b""
