"""The private registry: one interface, three backends chosen by the URL scheme.

- ``file://DIR``: a PEP 503 tree on disk (``simple/`` pages with ``#sha256=``
  fragments and ``data-requires-python``, files under ``files/``), pages
  rewritten atomically; pip reads it with ``--index-url file://DIR/simple/``.
- ``http(s)://``: any index with the simple read API and the legacy upload
  API (pypiserver, devpi, Nexus, Artifactory). Credentials come from the
  environment (``PIPGATE_REGISTRY_USERNAME``/``PIPGATE_REGISTRY_PASSWORD``,
  or twine's ``TWINE_USERNAME``/``TWINE_PASSWORD``) or keyring, never from files.
- ``artifact-registry://LOCATION/PROJECT/REPOSITORY``: Google Artifact
  Registry, as ``oauth2accesstoken`` with an access token from google-auth
  application default credentials, refreshed before it expires and on a 401.

Every backend lists what it holds as file name and sha256 from its own
index, so that only missing files are uploaded and the result is verified.
"""

from __future__ import annotations

import abc
import concurrent.futures
import dataclasses
import datetime
import email.parser
import hashlib
import html
import io
import os
import shutil
import sys
import tempfile
import threading
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import requests
from packaging.metadata import ExceptionGroup, InvalidMetadata, Metadata, parse_email

from pipgate import index
from pipgate.allowlist import RegistryKind, RegistrySpec
from pipgate.distmeta import metadata_text
from pipgate.errors import ExternalError, InputError
from pipgate.fsutil import sha256_of, write_atomic
from pipgate.runner import ToolError, redact, run, tool_environment
from pipgate.urls import redact_url

LIST_WORKERS = 8
ENDPOINT_OVERRIDE = "PIPGATE_ARTIFACT_REGISTRY_ENDPOINT"
"""Points artifact-registry:// at another host (a test stand-in or a proxy)."""


class RegistryError(ExternalError):
    """The registry failed or answered something unexpected (exit 3)."""


class RegistryConflictError(RegistryError):
    """The registry holds a file of the same name with a different hash."""


class UploadRefusedError(RegistryError):
    """An upload was refused for a reason retrying cannot fix."""


@dataclasses.dataclass(frozen=True)
class Held:
    filename: str
    sha256: str
    url: str = ""
    """Where the registry serves the file (without credentials)."""


class Registry(abc.ABC):
    """Where approved files go."""

    spec: RegistrySpec

    @property
    @abc.abstractmethod
    def simple_url(self) -> str:
        """The PEP 503 index root consumers use (``…/simple/``)."""

    @abc.abstractmethod
    def list(self, projects: Iterable[str]) -> dict[str, Held]:
        """The files the registry holds for ``projects``, by file name."""

    @abc.abstractmethod
    def upload(self, path: Path, sha256: str) -> None:
        """Upload one file; raises RegistryError when the outcome is unknown or refused."""

    @abc.abstractmethod
    def fetch(self, held: Held, target: Path) -> str:
        """Stream one file the registry holds to ``target``; its sha256."""

    def pip_index_url(self) -> str:
        """The simple index as pip needs it, credentials included: for a child process's
        environment only, never for an argument, a file or a message."""
        return self.simple_url

    def describe(self) -> str:
        return redact_url(self.simple_url)


# -- file:// ----------------------------------------------------------------------------------


def _requires_python(path: Path) -> str | None:
    """``Requires-Python`` from a wheel's METADATA or an sdist's PKG-INFO."""
    text = metadata_text(path)
    if text is None:
        return None
    return email.parser.Parser().parsestr(text, headersonly=True).get("Requires-Python")


class FileRegistry(Registry):
    """A PEP 503 tree on disk."""

    def __init__(self, spec: RegistrySpec) -> None:
        assert spec.path is not None
        self.spec = spec
        self.root = spec.path
        self._lock = threading.Lock()

    @property
    def simple_url(self) -> str:
        return self.spec.simple_url

    def list(self, projects: Iterable[str]) -> dict[str, Held]:
        held: dict[str, Held] = {}
        for project in projects:
            for item in index.project_files(index.Source(self.simple_url), project):
                held[item.filename] = Held(item.filename, item.sha256, item.url)
        return held

    def fetch(self, held: Held, target: Path) -> str:
        return index.download(held.url, target)

    def upload(self, path: Path, sha256: str) -> None:
        release = index.file_release(path.name)
        if release is None:
            raise UploadRefusedError(f"{path.name} is not a wheel or sdist file name")
        project = release[0]
        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        target = files / path.name
        if target.exists():
            if sha256_of(target) != sha256:
                raise RegistryConflictError(
                    f"the registry holds {path.name} with another sha256",
                    hint="a file is never overwritten: remove it from the registry by hand "
                    "after checking which one is right, then run again",
                )
        else:
            # A staging file of its own: two syncs racing never write into one inode.
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=files)
            os.close(handle)
            staging = Path(name)
            try:
                shutil.copyfile(path, staging)
                staging.chmod(0o644)
                staging.replace(target)
            finally:
                staging.unlink(missing_ok=True)
        with self._lock:
            self._write_project_page(project)
            self._write_root_page()

    def _write_project_page(self, project: str) -> None:
        entries = []
        for item in sorted((self.root / "files").iterdir()):
            release = index.file_release(item.name)
            if item.name.startswith(".") or release is None or release[0] != project:
                continue
            requires = _requires_python(item)
            attribute = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            href = f"../../files/{urllib.parse.quote(item.name)}#sha256={sha256_of(item)}"
            entries.append(f'    <a href="{href}"{attribute}>{html.escape(item.name)}</a><br>')
        page = (
            '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" '
            f'content="1.0"><title>Links for {project}</title></head><body>\n'
            f"<h1>Links for {project}</h1>\n" + "\n".join(entries) + "\n</body></html>\n"
        )
        write_atomic(self.root / "simple" / project / "index.html", page)

    def _write_root_page(self) -> None:
        simple = self.root / "simple"
        projects = sorted(p.name for p in simple.iterdir() if p.is_dir())
        links = "\n".join(f'    <a href="{p}/">{p}</a><br>' for p in projects)
        page = (
            '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" '
            'content="1.0"><title>Simple index</title></head><body>\n'
            f"{links}\n</body></html>\n"
        )
        write_atomic(simple / "index.html", page)


# -- http(s):// ---------------------------------------------------------------------------------


class Credentials(abc.ABC):
    @abc.abstractmethod
    def get(self) -> tuple[str, str] | None:
        """(username, password), or None to let twine and pip ask keyring."""

    def refresh(self) -> None:  # noqa: B027 - an optional hook: most credentials are fixed
        """Called after a 401: get fresh credentials."""


class EnvironmentCredentials(Credentials):
    """A user name and password from the environment, else from keyring for the registry URL."""

    def __init__(self, url: str, environ: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.environ = environ if environ is not None else os.environ
        self._keyring: tuple[str, str] | None = None
        self._asked_keyring = False

    def get(self) -> tuple[str, str] | None:
        for user_key, password_key in (
            ("PIPGATE_REGISTRY_USERNAME", "PIPGATE_REGISTRY_PASSWORD"),
            ("TWINE_USERNAME", "TWINE_PASSWORD"),
        ):
            user, password = self.environ.get(user_key), self.environ.get(password_key)
            if user and password:
                return user, password
        if not self._asked_keyring:
            self._keyring, self._asked_keyring = _from_keyring(self.url), True
        return self._keyring


def _from_keyring(url: str) -> tuple[str, str] | None:
    """keyring's credential for ``url`` (as pip and twine look it up), or None."""
    import keyring  # noqa: PLC0415 - only where no credential is in the environment
    import keyring.errors  # noqa: PLC0415

    netloc = urllib.parse.urlsplit(url).netloc
    for service in (url, netloc):
        try:
            found = keyring.get_credential(service, None)
        except keyring.errors.KeyringError:
            return None
        if found is not None and found.username and found.password:
            return found.username, found.password
    return None


class GoogleCredentials(Credentials):
    """google-auth application default credentials, as Artifact Registry wants them."""

    MARGIN = datetime.timedelta(minutes=5)
    SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

    def __init__(self) -> None:
        # google-auth is imported only for Artifact Registry, where it is needed.
        import google.auth  # noqa: PLC0415
        import google.auth.exceptions  # noqa: PLC0415

        try:
            self.credentials, _ = google.auth.default(scopes=list(self.SCOPES))
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise InputError(
                f"no Google application default credentials: {exc}",
                hint="on Cloud Build the service account provides them; elsewhere run "
                "'gcloud auth application-default login' or set GOOGLE_APPLICATION_CREDENTIALS",
            ) from None
        self._lock = threading.Lock()

    def _expiring(self) -> bool:
        expiry = getattr(self.credentials, "expiry", None)
        token = getattr(self.credentials, "token", None)
        if token is None or expiry is None:
            return True
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return bool(expiry - now < self.MARGIN)

    def refresh(self) -> None:
        import google.auth.exceptions  # noqa: PLC0415
        import google.auth.transport.requests  # noqa: PLC0415

        with self._lock:
            try:
                request = google.auth.transport.requests.Request()
                self.credentials.refresh(request)  # type: ignore[no-untyped-call]
            except google.auth.exceptions.GoogleAuthError as exc:
                raise RegistryError(
                    f"cannot get an access token: {type(exc).__name__}",
                    hint="check the service account and its roles",
                ) from None

    def get(self) -> tuple[str, str] | None:
        if self._expiring():
            self.refresh()
        return "oauth2accesstoken", str(self.credentials.token)


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
        self.session = requests.Session()
        self.timeout = float(os.environ.get("PIPGATE_UPLOAD_TIMEOUT") or 600)
        """Seconds one upload may take before its outcome is treated as unknown."""

    def _upload_directly(self, path: Path, sha256: str) -> None:
        fields = legacy_upload_fields(path, sha256)
        for attempt in range(2):
            body = MultipartFile(fields, path)
            try:
                response = self.session.post(
                    self.upload_url,
                    data=body,
                    auth=self.credentials.get(),
                    headers={"Content-Type": body.content_type, "Content-Length": str(len(body))},
                    timeout=(10, self.timeout),
                )
            except requests.RequestException as exc:
                raise RegistryError(f"uploading {path.name}: {type(exc).__name__}") from None
            if response.status_code == 401 and attempt == 0:
                self.credentials.refresh()
                continue
            if response.status_code >= 400:
                raise RegistryError(
                    f"the registry answered HTTP {response.status_code} to the "
                    f"upload of {path.name}"
                )
            return

    @property
    def simple_url(self) -> str:
        return self._simple_url

    @property
    def upload_url(self) -> str:
        return self._upload_url

    def pip_index_url(self) -> str:
        creds = self.credentials.get()
        if creds is None:
            return self.simple_url  # pip asks keyring itself
        user, password = (urllib.parse.quote(c, safe="") for c in creds)
        parts = urllib.parse.urlsplit(self.simple_url)
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))

    def fetch(self, held: Held, target: Path) -> str:
        digest = hashlib.sha256()
        for attempt in range(2):
            try:
                with self.session.get(
                    held.url, auth=self.credentials.get(), stream=True, timeout=(10, self.timeout)
                ) as response:
                    if response.status_code == 401 and attempt == 0:
                        self.credentials.refresh()
                        continue
                    if response.status_code >= 400:
                        raise RegistryError(
                            f"the registry answered HTTP {response.status_code} for {held.filename}"
                        )
                    with target.open("wb") as handle:
                        for chunk in response.iter_content(1 << 20):
                            digest.update(chunk)
                            handle.write(chunk)
                    return digest.hexdigest()
            except requests.RequestException as exc:
                raise RegistryError(f"fetching {held.filename}: {type(exc).__name__}") from None
        raise RegistryError(f"the registry refused {held.filename} (HTTP 401)")

    def _get(self, url: str) -> requests.Response:
        for attempt in range(2):
            auth = self.credentials.get()
            try:
                response = self.session.get(
                    url, auth=auth, timeout=(10, 60), headers={"Accept": "text/html"}
                )
            except requests.RequestException as exc:
                raise RegistryError(
                    f"cannot reach the registry at {redact_url(url)}: {type(exc).__name__}"
                ) from None
            index.TRAFFIC.add(len(response.content))
            if response.status_code == 401 and attempt == 0:
                self.credentials.refresh()
                continue
            return response
        return response

    def list(self, projects: Iterable[str]) -> dict[str, Held]:
        # One page per project, read a few at a time: a no-op sync is mostly this.
        with concurrent.futures.ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:
            pages = list(pool.map(self._list_project, projects))
        return {name: held for page in pages for name, held in page.items()}

    def _list_project(self, project: str) -> dict[str, Held]:
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
        for name, link, *_ in index.parse_html(response.text, url):
            _, digest = index.split_sha256(link)
            if digest is None:
                raise RegistryError(
                    f"the registry lists {name} without a sha256",
                    hint="pipgate verifies by hash; configure the index to publish "
                    "sha256 fragments",
                )
            held[name] = Held(name, digest.lower(), link.partition("#")[0])
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


def registry_for(spec: RegistrySpec) -> Registry:
    if spec.kind is RegistryKind.FILE:
        return FileRegistry(spec)
    if spec.kind is RegistryKind.HTTP:
        return HttpRegistry(spec, EnvironmentCredentials(spec.url))
    override = os.environ.get(ENDPOINT_OVERRIDE)
    upload = spec.upload_url
    if override:
        upload = f"{override.rstrip('/')}/{spec.project}/{spec.repository}/"
    return HttpRegistry(
        spec, GoogleCredentials(), upload_url=upload, simple_url=upload.rstrip("/") + "/simple/"
    )


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
    release = index.file_release(path.name)
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
