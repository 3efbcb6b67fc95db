"""The one way pipgate runs pip, pip-compile, pip-audit and twine: as subprocesses.

Every call goes through ``run``: argument lists only (never a shell), a
timeout, the environment given explicitly, and command lines redacted before
they are shown to anyone.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipgate.errors import ExternalError
from pipgate.urls import redact_url

_URLISH = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def redact(text: str) -> str:
    """``text`` with credentials in any URL it holds replaced by ``<hidden>``."""
    return _URLISH.sub(lambda m: redact_url(m.group(0)), text)


def show_command(args: Sequence[str]) -> str:
    """A command line as a person can paste it, with credentials hidden."""
    return redact(shlex.join(str(a) for a in args))


class ToolError(ExternalError):
    """An external tool could not be run, timed out, or failed unexpectedly."""


@dataclasses.dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
    on_line: Callable[[str], None] | None = None,
) -> Result:
    """Run a tool and capture its output. Never raises for a non-zero exit code.

    With ``on_line``, each line of standard output is passed on as it comes (for
    progress); standard error is still captured whole.
    """
    argv = tuple(str(a) for a in args)
    try:
        if on_line is not None:
            return _run_streaming(argv, env, cwd, timeout, on_line)
        completed = subprocess.run(
            argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ToolError(
            f"cannot run {argv[0]}: {exc.strerror}", hint="install pipgate with its dependencies"
        ) from None
    except subprocess.TimeoutExpired:
        raise ToolError(
            f"{show_command(argv)} did not finish within {timeout:.0f} s",
            hint="check the network and the index, then run again",
        ) from None
    return Result(argv, completed.returncode, completed.stdout, completed.stderr)


def _run_streaming(
    argv: tuple[str, ...],
    env: Mapping[str, str] | None,
    cwd: Path | None,
    timeout: float,
    on_line: Callable[[str], None],
) -> Result:
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        ) as process,
    ):
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, expire)
        timer.start()
        lines = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                on_line(line.rstrip("\n"))
            returncode = process.wait()
        except BaseException:
            process.kill()
            raise
        finally:
            timer.cancel()
        if expired.is_set():
            raise subprocess.TimeoutExpired(argv, timeout)
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    return Result(argv, returncode, "".join(lines), stderr)


def tool_environment(
    extra: Mapping[str, str] | None = None, *, isolate_pip: bool = False
) -> dict[str, str]:
    """The environment for a tool: ours, optionally without any pip configuration."""
    env = dict(os.environ)
    if isolate_pip:
        for name in list(env):
            if name.startswith("PIP_"):
                del env[name]
        env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if extra:
        env.update(extra)
    return env


_UV_LOCK = threading.Lock()
_UV: list[str] = []


def uv_binary() -> str:
    """The uv executable pipgate depends on (the ``uv`` wheel's). Found once, under a lock:
    uv's finder reads ``sysconfig``, whose first use is not safe from two threads at once
    (targets lock in parallel)."""
    with _UV_LOCK:
        if not _UV:
            from uv import find_uv_bin  # noqa: PLC0415 - only where uv runs

            _UV.append(str(find_uv_bin()))
        return _UV[0]
