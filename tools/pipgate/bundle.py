"""Bundles for machines with no index: the files, their install order and the installer.

A bundle is a folder, or one ``.tar.gz`` archive of that folder, holding
``files/`` (every file, as locked), ``install-order.txt`` and
``install-offline.sh``. Archives are deterministic (sorted members, fixed
times and owners, no gzip timestamp), so the same inputs give the same bytes;
files are streamed from the cache, never held in memory. The bootstrap
bundle holds only the bootstrap set (keyring and its Artifact Registry
backend, with everything they need), so a machine with no credentials yet can
install it first and then reach the registry.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from pipgate.render import INSTALL_ORDER, OFFLINE_SCRIPT, Manifest, target_files

_MTIME = 1704067200  # 2024-01-01: a fixed time, so archives do not change by themselves


def default_path(root: Path, manifest: Manifest, *, bootstrap: bool) -> Path:
    kind = "bootstrap-" if bootstrap else ""
    return root / "dist" / f"pipgate-{kind}{manifest.target.name}.tar.gz"


def write_bundle(manifest: Manifest, out: Path, command: str) -> Path:
    """Write the bundle to ``out`` (a ``.tar.gz`` archive, or else a folder), atomically."""
    texts = {
        name: text
        for name, text in target_files(manifest, command).items()
        if name in (INSTALL_ORDER, OFFLINE_SCRIPT)
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.name.endswith((".tar.gz", ".tgz")):
        _write_archive(manifest, texts, out)
    else:
        _write_folder(manifest, texts, out)
    return out


def _write_archive(manifest: Manifest, texts: dict[str, str], out: Path) -> None:
    top = out.name.removesuffix(".tar.gz").removesuffix(".tgz")
    with tempfile.NamedTemporaryFile(
        prefix=f".{out.name}.", suffix=".tmp", dir=out.parent, delete=False
    ) as raw:
        temporary = Path(raw.name)
        try:
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed,
                tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
            ):
                archive.addfile(_member(f"{top}/", 0, directory=True))
                for name, text in sorted(texts.items()):
                    data = text.encode()
                    executable = name == OFFLINE_SCRIPT
                    archive.addfile(
                        _member(f"{top}/{name}", len(data), executable=executable),
                        io.BytesIO(data),
                    )
                archive.addfile(_member(f"{top}/files/", 0, directory=True))
                for item in sorted(manifest.files, key=lambda f: f.filename):
                    with item.path.open("rb") as handle:
                        archive.addfile(_member(f"{top}/files/{item.filename}", item.size), handle)
            temporary.chmod(0o644)
            temporary.replace(out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise


def _member(
    name: str, size: int, *, directory: bool = False, executable: bool = False
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o755 if executable else 0o644
    return info


def _write_folder(manifest: Manifest, texts: dict[str, str], out: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
        (staging / OFFLINE_SCRIPT).chmod(0o755)
        files = staging / "files"
        files.mkdir()
        for item in manifest.files:
            shutil.copyfile(item.path, files / item.filename)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
