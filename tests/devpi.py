"""devpi-server on 127.0.0.1 as a registry: a user and an index of its own, no bases.

devpi's URLs are not pypiserver's: uploads go to ``/USER/INDEX/`` and the simple
index is ``/USER/INDEX/+simple/``, so pipgate must be given both (the long form
of ``registry``). The index inherits from nothing, so it never falls back to the
public index (devpi's ``root/pypi`` mirror is not reached).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.universe import free_port

USER = "pipgate"
PASSWORD = "devpi-secret-value"
INDEX = "approved"


@dataclasses.dataclass
class Devpi:
    origin: str
    process: subprocess.Popen[bytes]
    data: Path

    @property
    def upload(self) -> str:
        return f"{self.origin}/{USER}/{INDEX}/"

    @property
    def simple(self) -> str:
        return f"{self.origin}/{USER}/{INDEX}/+simple/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _request(
    origin: str, method: str, path: str, body: object, auth: str | None = None
) -> dict[str, object]:
    request = urllib.request.Request(
        origin + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    if auth is not None:
        request.add_header("X-Devpi-Auth", base64.b64encode(f"{USER}:{auth}".encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _token(origin: str) -> str:
    login = _request(origin, "POST", "/+login", {"user": USER, "password": PASSWORD})
    result = login["result"]
    assert isinstance(result, dict)
    return str(result["password"])


def set_volatile(server: Devpi, volatile: bool) -> None:
    """Whether the index lets files be deleted (devpi's own switch, as an admin sets it)."""
    _request(
        server.origin,
        "PATCH",
        f"/{USER}/{INDEX}",
        ["volatile=" + ("True" if volatile else "False")],
        auth=_token(server.origin),
    )


def delete_file(server: Devpi, url: str) -> None:
    """Delete one file behind pipgate's back, with devpi's own API (``?force``)."""
    request = urllib.request.Request(url + "?force", method="DELETE")
    request.add_header(
        "X-Devpi-Auth",
        base64.b64encode(f"{USER}:{_token(server.origin)}".encode()).decode(),
    )
    request.add_header("Accept", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def file_urls(server: Devpi, project: str) -> dict[str, str]:
    """The files the index's simple page lists for ``project``: name -> URL."""
    import re

    try:
        with urllib.request.urlopen(f"{server.simple}{project}/", timeout=30) as response:
            page = response.read().decode()
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 404:
            return {}
        raise
    found = {}
    for href, name in re.findall(r'<a href="([^"#]+)[^"]*"[^>]*>([^<]+)</a>', page):
        found[name] = urllib.parse.urljoin(f"{server.simple}{project}/", href)
    return found


def start_devpi(folder: Path) -> Devpi:
    """devpi-server with the user and the index made, ready for uploads."""
    bin_dir = Path(sys.executable).parent
    data = folder / "devpi-data"
    subprocess.run(
        [str(bin_dir / "devpi-init"), "--serverdir", str(data), "--root-passwd", "root-secret"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    with (folder / "devpi.log").open("wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [
                str(bin_dir / "devpi-server"),
                "--serverdir",
                str(data),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--offline-mode",  # never reach out to a mirror
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    origin = f"http://127.0.0.1:{port}"
    server = Devpi(origin, process, data)
    try:
        _wait(origin, process, folder / "devpi.log")
        _request(origin, "PUT", f"/{USER}", {"password": PASSWORD})
        login = _request(origin, "POST", "/+login", {"user": USER, "password": PASSWORD})
        result = login["result"]
        assert isinstance(result, dict)
        _request(
            origin,
            "PUT",
            f"/{USER}/{INDEX}",
            {"bases": [], "volatile": False},
            auth=str(result["password"]),
        )
    except BaseException:
        server.stop()
        raise
    return server


def _wait(origin: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devpi-server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(origin + "/+api", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"devpi-server did not start: {log.read_text(errors='replace')[-2000:]}")
