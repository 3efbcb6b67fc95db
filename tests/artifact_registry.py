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
  as Artifact Registry's REST reference documents them.
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
import urllib.parse
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

            def do_GET(self) -> None:
                if not stand_in._current(self.headers.get("Authorization")):
                    self._refuse()
                    return
                parts = [p for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
                # /v1/projects/P/locations/L/repositories/R: the repository's resource
                if len(parts) == 7 and parts[0] == "v1" and parts[5] == "repositories":
                    resource = {
                        "name": "/".join(parts[1:]),
                        "format": "PYTHON",
                        "mode": stand_in.mode,
                    }
                    body = stand_in.resource or json.dumps(resource).encode()
                    self._reply(200, body, "application/json")
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
