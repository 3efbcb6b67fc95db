"""A local stand-in for Google Artifact Registry and Google's OAuth token endpoint.

Artifact Registry itself cannot run here; this plays its two parts that
pipgate depends on, on 127.0.0.1:

- a token endpoint that google-auth's service-account credentials call: it
  verifies the RS256-signed JWT assertion against the key's public half and
  issues short-lived access tokens;
- a Python repository (``/PROJECT/REPOSITORY/``): the simple index with
  sha256 fragments and the legacy upload API, accepting only
  ``oauth2accesstoken`` with a token that is current;
- the repositories API (``GET /v1/projects/P/locations/L/repositories/R``,
  Bearer token), answering the repository's format and mode
  (``STANDARD_REPOSITORY``, ``REMOTE_REPOSITORY`` or ``VIRTUAL_REPOSITORY``)
  as Artifact Registry's REST reference documents them;
- ``files.list`` (``GET .../repositories/R/files?pageSize=&pageToken=``): File
  resources (``name`` with the file ID's slashes escaped, ``sizeBytes`` as a
  string, ``hashes`` of type ``SHA256`` and ``MD5`` whose values are bytes,
  base64 in JSON, ``owner`` the version), at most 1000 a page, then
  ``nextPageToken``;
- ``packages.versions.delete`` (``DELETE .../packages/N/versions/V``): removes
  the version and its files, answering a long-running Operation that
  ``GET .../locations/L/operations/ID`` then reports done; ``files.delete``
  on a Python repository is refused (the reference allows it on generic
  repositories only);
- remote repositories (``add_remote``): ``/PROJECT/NAME/...`` passed through
  to an upstream index, for a current token only.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import html
import http.server
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class StandIn:
    """Both servers in one: ``/token`` and ``/PROJECT/REPOSITORY/...``."""

    def __init__(
        self,
        folder: Path,
        *,
        claimed_lifetime: int,
        real_lifetime: float,
        upload_delay: float = 0.0,
    ) -> None:
        self.folder = folder
        self.files = folder / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.claimed_lifetime = claimed_lifetime
        """What the token endpoint tells google-auth (expires_in)."""
        self.real_lifetime = real_lifetime
        """How long the repository actually accepts a token."""
        self.upload_delay = upload_delay
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.refused = 0
        self.uploads = 0
        self.mode: object = "STANDARD_REPOSITORY"
        """What the repositories API says the repository is."""
        self.resource: bytes | None = None
        """A raw answer of the repositories API instead (a hostile one)."""
        self.remotes: dict[str, str] = {}
        """Remote repositories: name -> the upstream index root they cache."""
        self.remote_requests = 0
        self.page_size = 1000
        """The most files ``files.list`` answers a page (the API's own bound)."""
        self.list_calls = 0
        self.can_delete = True
        """False: the token's account lacks artifactregistry.versions.delete (HTTP 403)."""
        self.operations: dict[str, bool] = {}
        self.delete_answer: dict[str, object] | None = None
        """The answer of versions.delete instead of the real one (a hostile operation)."""
        self.files_answers: list[bytes] = []
        """Raw answers of files.list, one per call, instead of the real listing (hostile)."""
        self.lock = threading.Lock()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def service_account_file(self, path: Path) -> Path:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "test-project",
                    "private_key_id": "test-key-1",
                    "private_key": pem,
                    "client_email": "pipgate-sync@test-project.example.invalid",
                    "client_id": "1",
                    "token_uri": f"{self.endpoint}/token",
                }
            )
        )
        return path

    def add_remote(self, name: str, upstream_root: str) -> str:
        """A remote repository ``name`` caching ``upstream_root``; its artifact-registry:// URL."""
        self.remotes[name] = upstream_root.rstrip("/")
        return f"artifact-registry://europe-west1/test-project/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- the token endpoint --------------------------------------------------------------

    def _verify(self, assertion: str) -> bool:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64decode(header_b64))
            claims = json.loads(_b64decode(claims_b64))
            if header.get("alg") != "RS256":
                return False
            self.key.public_key().verify(
                _b64decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:  # noqa: BLE001 - any malformed or forged assertion is refused
            return False
        now = time.time()
        # google-auth signs for Google's token audience whatever token_uri says; the
        # signature, the issuer and the expiry are what the stand-in can hold it to.
        return (
            str(claims.get("aud", "")).endswith("/token")
            and claims.get("iss") == "pipgate-sync@test-project.example.invalid"
            and float(claims.get("exp", 0)) > now
        )

    def _issue(self) -> dict[str, object]:
        with self.lock:
            self.token_requests += 1
            token = f"ya29.test-{self.token_requests}-{secrets.token_hex(6)}"
            self.tokens[token] = time.monotonic() + self.real_lifetime
        return {"access_token": token, "expires_in": self.claimed_lifetime, "token_type": "Bearer"}

    def _current(self, authorization: str | None) -> bool:
        if authorization and authorization.startswith("Bearer "):
            user, token = "oauth2accesstoken", authorization[7:]
        elif authorization and authorization.startswith("Basic "):
            user, _, token = base64.b64decode(authorization[6:]).decode().partition(":")
        else:
            return False
        with self.lock:
            until = self.tokens.get(token)
        return user == "oauth2accesstoken" and until is not None and time.monotonic() < until

    # -- the repository -------------------------------------------------------------------

    def _page(self, project: str) -> bytes | None:
        from packaging.utils import canonicalize_name

        links = []
        for item in sorted(self.files.iterdir()):
            if canonicalize_name(item.name.split("-", 1)[0]) != project:
                continue
            digest = hashlib.sha256(item.read_bytes()).hexdigest()
            links.append(
                f'<a href="../../files/{urllib.parse.quote(item.name)}#sha256={digest}">'
                f"{html.escape(item.name)}</a><br>"
            )
        if not links:
            return None
        return ("<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>").encode()

    # -- the REST API: files.list, versions.delete, operations.get --------------------------

    @staticmethod
    def _release(filename: str) -> tuple[str, str] | None:
        from packaging.utils import (
            InvalidSdistFilename,
            InvalidWheelFilename,
            parse_sdist_filename,
            parse_wheel_filename,
        )

        try:
            if filename.endswith(".whl"):
                name, version, _, _ = parse_wheel_filename(filename)
            else:
                name, version = parse_sdist_filename(filename)
        except (InvalidWheelFilename, InvalidSdistFilename):
            return None
        return str(name), str(version)

    def _files_page(self, parent: str, query: dict[str, list[str]]) -> dict[str, object]:
        with self.lock:
            self.list_calls += 1
        size = min(int((query.get("pageSize") or ["1000"])[0]), self.page_size, 1000)
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        items = sorted(p for p in self.files.iterdir() if not p.name.startswith("."))
        files = []
        for item in items[start : start + size]:
            data = item.read_bytes()
            release = self._release(item.name)
            entry: dict[str, object] = {
                "name": f"{parent}/files/{urllib.parse.quote(item.name, safe='')}",
                "sizeBytes": str(len(data)),
                "hashes": [
                    {
                        "type": "SHA256",
                        "value": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                    },
                    {
                        "type": "MD5",
                        "value": base64.b64encode(
                            hashlib.md5(data, usedforsecurity=False).digest()
                        ).decode(),
                    },
                ],
                "createTime": "2026-01-01T00:00:00Z",
                "updateTime": "2026-01-01T00:00:00Z",
            }
            if release is not None:
                entry["owner"] = f"{parent}/packages/{release[0]}/versions/{release[1]}"
            files.append(entry)
        page: dict[str, object] = {"files": files}
        if start + size < len(items):
            page["nextPageToken"] = str(start + size)
        return page

    def _delete_version(
        self, name: str, package: str, version: str
    ) -> tuple[int, dict[str, object]]:
        if not self.can_delete:
            return 403, {"error": {"code": 403, "status": "PERMISSION_DENIED"}}
        gone = [p for p in self.files.iterdir() if self._release(p.name) == (package, version)]
        if not gone:
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": name}}
        for path in gone:
            path.unlink()
        project, location = name.split("/")[1], name.split("/")[3]
        with self.lock:
            operation = (
                f"projects/{project}/locations/{location}/operations/op-{len(self.operations) + 1}"
            )
            self.operations[operation] = True
        return 200, {"name": operation, "done": False}

    def _store(self, content_type: str, body: bytes) -> bool:
        message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        fields: dict[str, str] = {}
        upload: tuple[str, bytes] | None = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                continue
            if name == "content" and filename:
                upload = (filename, payload)
            else:
                fields[name] = payload.decode()
        if upload is None or fields.get(":action") != "file_upload":
            return False
        filename, data = upload
        if (
            fields.get("sha256_digest")
            and fields["sha256_digest"] != hashlib.sha256(data).hexdigest()
        ):
            return False
        target = self.files / Path(filename).name
        if target.exists():
            return target.read_bytes() == data
        partial = target.with_name("." + target.name)
        partial.write_bytes(data)
        partial.replace(target)
        return True

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _reply(self, status: int, body: bytes, content_type: str = "text/html") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="stand-in"')
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self) -> None:
                with stand_in.lock:
                    stand_in.refused += 1
                self._reply(401, b"token missing, wrong or expired")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = urllib.parse.urlsplit(self.path).path
                if path == "/token":
                    form = urllib.parse.parse_qs(body.decode())
                    grant = form.get("grant_type", [""])[0]
                    assertion = form.get("assertion", [""])[0]
                    if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not (
                        stand_in._verify(assertion)
                    ):
                        self._reply(400, b'{"error": "invalid_grant"}', "application/json")
                        return
                    self._reply(200, json.dumps(stand_in._issue()).encode(), "application/json")
                    return
                if not stand_in._current(self.headers.get("Authorization")):
                    self._refuse()
                    return
                time.sleep(stand_in.upload_delay)
                if stand_in._store(self.headers.get("Content-Type", ""), body):
                    with stand_in.lock:
                        stand_in.uploads += 1
                    self._reply(200, b"OK", "text/plain")
                else:
                    self._reply(400, b"bad upload", "text/plain")

            def _json(self, status: int, document: dict[str, object]) -> None:
                self._reply(status, json.dumps(document).encode(), "application/json")

            def do_DELETE(self) -> None:
                if not stand_in._current(self.headers.get("Authorization")):
                    self._refuse()
                    return
                parts = [p for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
                # /v1/projects/P/locations/L/repositories/R/packages/N/versions/V
                if (
                    len(parts) == 11
                    and parts[0] == "v1"
                    and parts[7:10:2] == ["packages", "versions"]
                ):
                    if stand_in.delete_answer is not None:
                        self._json(200, stand_in.delete_answer)
                        return
                    status, document = stand_in._delete_version(
                        "/".join(parts[1:]), parts[8], parts[10]
                    )
                    self._json(status, document)
                    return
                if len(parts) == 9 and parts[0] == "v1" and parts[7] == "files":
                    self._json(
                        400,
                        {
                            "error": {
                                "code": 400,
                                "status": "FAILED_PRECONDITION",
                                "message": "deleting files is only allowed on generic repositories",
                            }
                        },
                    )
                    return
                self._json(404, {"error": {"code": 404, "status": "NOT_FOUND"}})

            def _remote(self, name: str, rest: str) -> None:
                with stand_in.lock:
                    stand_in.remote_requests += 1
                request = urllib.request.Request(
                    stand_in.remotes[name] + rest,
                    headers={"Accept": self.headers.get("Accept", "*/*")},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, body = response.status, response.read()
                        content_type = response.headers.get("Content-Type", "")
                except urllib.error.HTTPError as error:
                    status, body, content_type = error.code, error.read(), "text/plain"
                    error.close()
                # Like a remote repository, it serves the files itself: links to the
                # upstream's files are rewritten to its own URL.
                prefix = f"/{self.path.split('/')[1]}/{name}/"
                body = (
                    body.replace(stand_in.remotes[name].encode() + b"/", prefix.encode())
                    .replace(b'href="/', b'href="' + prefix.encode())
                    .replace(b'"url": "/', b'"url": "' + prefix.encode())
                )
                self._reply(status, body, content_type)

            def _rest(self, parts: list[str], query: dict[str, list[str]]) -> None:
                # /v1/projects/P/locations/L/repositories/R/files: files.list
                if len(parts) == 8 and parts[0] == "v1" and parts[7] == "files":
                    if stand_in.files_answers:
                        self._reply(200, stand_in.files_answers.pop(0), "application/json")
                        return
                    self._json(200, stand_in._files_page("/".join(parts[1:7]), query))
                    return
                # /v1/projects/P/locations/L/operations/ID: operations.get
                if len(parts) == 7 and parts[0] == "v1" and parts[5] == "operations":
                    name = "/".join(parts[1:])
                    if name in stand_in.operations:
                        self._json(200, {"name": name, "done": True, "response": {}})
                    else:
                        self._json(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
                    return
                # /v1/projects/P/locations/L/repositories/R: the repository's resource
                if len(parts) == 7 and parts[0] == "v1" and parts[5] == "repositories":
                    remote = parts[6] in stand_in.remotes
                    resource = {
                        "name": "/".join(parts[1:]),
                        "format": "PYTHON",
                        "mode": "REMOTE_REPOSITORY" if remote else stand_in.mode,
                    }
                    body = stand_in.resource or json.dumps(resource).encode()
                    self._reply(200, body, "application/json")
                    return
                self._json(404, {"error": {"code": 404, "status": "NOT_FOUND"}})

            def do_GET(self) -> None:
                if not stand_in._current(self.headers.get("Authorization")):
                    self._refuse()
                    return
                split = urllib.parse.urlsplit(self.path)
                parts = [p for p in split.path.split("/") if p]
                if len(parts) >= 2 and parts[1] in stand_in.remotes and parts[0] != "v1":
                    self._remote(
                        parts[1],
                        "/" + "/".join(parts[2:]) + ("/" if split.path.endswith("/") else ""),
                    )
                    return
                if parts and parts[0] == "v1":
                    self._rest(parts, urllib.parse.parse_qs(split.query))
                    return
                # /PROJECT/REPOSITORY/simple/NAME/  or  /PROJECT/REPOSITORY/files/FILE
                if len(parts) == 4 and parts[2] == "simple":
                    page = stand_in._page(parts[3])
                    if page is None:
                        self._reply(404, b"not found")
                    else:
                        self._reply(200, page)
                    return
                if len(parts) == 4 and parts[2] == "files":
                    target = stand_in.files / urllib.parse.unquote(parts[3])
                    if target.is_file():
                        self._reply(200, target.read_bytes(), "application/octet-stream")
                        return
                self._reply(404, b"not found")

        return Handler
