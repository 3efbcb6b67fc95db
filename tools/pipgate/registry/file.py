"""``file://DIR``: the embedded registry, a PEP 503 tree on disk.

``simple/`` pages with ``#sha256=`` fragments and ``data-requires-python``,
files under ``files/``, pages rewritten atomically; pip reads it with
``--index-url file://DIR/simple/``.
"""

from __future__ import annotations

import email.parser
import hashlib
import html
import shutil
import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipgate import index
from pipgate.allowlist import RegistrySpec
from pipgate.distmeta import metadata_text
from pipgate.fsutil import locked, owned_scratch, sha256_of, sweep_scratch, write_atomic
from pipgate.names import NormalizedName, file_release
from pipgate.registry.interface import (
    Held,
    Registry,
    RegistryConflictError,
    RegistryError,
    Removal,
    UploadRefusedError,
)

STAGING_PREFIX = ".staging-"


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
        self._swept = False

    @property
    def simple_url(self) -> str:
        return self.spec.simple_url

    def list(self, projects: Iterable[NormalizedName]) -> dict[str, Held]:
        held: dict[str, Held] = {}
        for project in projects:
            listed = index.project_files(index.Source(self.simple_url), project)
            for item in index.with_hashes(listed):
                assert item.sha256 is not None
                held[item.filename] = Held(item.filename, item.sha256, item.url)
        return held

    def size(self, held: Held) -> int | None:
        path = self.root / "files" / held.filename
        return (
            path.stat().st_size if index.safe_filename(held.filename) and path.is_file() else None
        )

    @property
    def removal_hint(self) -> str:
        return f"delete it from {self.root / 'files'} (the page is rewritten on the next upload)"

    def projects(self) -> tuple[NormalizedName, ...]:
        files = self.root / "files"
        if not files.is_dir():
            return ()
        names = {
            release[0]
            for item in files.iterdir()
            if not item.name.startswith(".") and (release := file_release(item.name))
        }
        return tuple(sorted(names))

    def fetch(self, held: Held, target: Path) -> str:
        source = self.root / "files" / held.filename
        if not index.safe_filename(held.filename) or not source.is_file():
            raise RegistryError(f"the registry holds no file {held.filename[:200]!r}")
        with target.open("wb") as handle, source.open("rb") as read:
            digest = hashlib.sha256()
            for chunk in iter(lambda: read.read(1 << 20), b""):
                digest.update(chunk)
                handle.write(chunk)
        return digest.hexdigest()

    @property
    def removal(self) -> Removal:
        return Removal.FILE

    def remove(self, files: Sequence[Held]) -> None:
        """Delete each file and rewrite its project's page (and the root page) at once,
        under the lock every writer shares."""
        projects = set()
        with self._lock, locked(self.root / ".pages.lock"):
            for held in files:
                release = file_release(held.filename)
                if not index.safe_filename(held.filename) or release is None:
                    raise RegistryError(f"not a file name: {held.filename[:200]!r}")
                path = self.root / "files" / held.filename
                if path.is_file() and sha256_of(path) != held.sha256:
                    raise RegistryConflictError(
                        f"{held.filename} changed since it was listed; not deleted",
                        hint="run again: what the registry holds now is listed afresh",
                    )
                path.unlink(missing_ok=True)
                projects.add(release[0])
            for project in sorted(projects):
                self._write_project_page(project)
            self._write_root_page()

    def upload(self, path: Path, sha256: str) -> None:
        release = file_release(path.name)
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
            # A staging folder of its own: two syncs racing never write into one inode, and
            # what a killed run left half-copied is swept by the next one.
            with self._lock:
                if not self._swept:
                    sweep_scratch(self.root, STAGING_PREFIX)
                    self._swept = True
            with owned_scratch(self.root, STAGING_PREFIX) as staging_folder:
                staging = staging_folder / path.name
                shutil.copyfile(path, staging)
                staging.chmod(0o644)
                staging.replace(target)
        # Listing files/ and writing the pages happen under one lock shared by every
        # process: the last writer lists every file placed before it, so none is dropped.
        with self._lock, locked(self.root / ".pages.lock"):
            self._write_project_page(project)
            self._write_root_page()

    def _write_project_page(self, project: str) -> None:
        entries = []
        folder = self.root / "simple" / project
        for item in sorted((self.root / "files").iterdir()):
            release = file_release(item.name)
            if item.name.startswith(".") or release is None or release[0] != project:
                continue
            requires = _requires_python(item)
            attribute = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            href = f"../../files/{urllib.parse.quote(item.name)}#sha256={sha256_of(item)}"
            entries.append(f'    <a href="{href}"{attribute}>{html.escape(item.name)}</a><br>')
        if not entries:
            # The last file of the project is gone: so is its page, and its root link.
            (folder / "index.html").unlink(missing_ok=True)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
            return
        page = (
            '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" '
            f'content="1.0"><title>Links for {project}</title></head><body>\n'
            f"<h1>Links for {project}</h1>\n" + "\n".join(entries) + "\n</body></html>\n"
        )
        write_atomic(folder / "index.html", page)

    def _write_root_page(self) -> None:
        simple = self.root / "simple"
        simple.mkdir(parents=True, exist_ok=True)
        projects = sorted(p.name for p in simple.iterdir() if (p / "index.html").is_file())
        links = "\n".join(f'    <a href="{p}/">{p}</a><br>' for p in projects)
        page = (
            '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" '
            'content="1.0"><title>Simple index</title></head><body>\n'
            f"{links}\n</body></html>\n"
        )
        write_atomic(simple / "index.html", page)
