"""Cloud Build's steps run in order on this machine, as Cloud Build would run them.

Each step's entrypoint and args with the substitutions applied (built-in ones given by
the test, the file's own defaults), the build's and the step's env, in a workspace that
plays /workspace. A step that fails stops the build unless it says ``allowFailure: true``.
Stand-ins on PATH play what the build images provide: ``pip`` (the image would install
nox; the test environment already has pipgate, and the default test run reaches no
index), ``apt-get`` (the image would install git; the machine has it), ``nox`` (each
session of noxfile.py is ``pipgate SESSION ARGS`` under the session's Python; the
stand-in runs exactly that command line) and ``gsutil`` (a bucket is a folder under
``root/gcs``: the four forms the pipelines use, ``cat``, ``cp - URL``, ``cp -r URL/* DIR``
and ``rsync -r DIR URL``). Everything else is real.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

NOX = """\
#!{python}
import subprocess, sys
args = sys.argv[1:]
session = args[args.index("-s") + 1]
posargs = args[args.index("--") + 1 :] if "--" in args else []
sys.exit(subprocess.call([{python!r}, "-m", "pipgate", session, *posargs]))
"""


GSUTIL = """\
#!{python}
import pathlib, shutil, sys
root = pathlib.Path({gcs!r})
args = [a for a in sys.argv[1:] if a not in ("-m", "-q", "-r", "-d")]
def local(url):
    assert url.startswith("gs://"), url
    return root / url[len("gs://"):]
command, *rest = args
if command == "cat":
    path = local(rest[0])
    if not path.is_file():
        sys.exit("CommandException: No URLs matched: " + rest[0])
    sys.stdout.write(path.read_text())
elif command == "cp" and rest[0] == "-":
    local(rest[1]).parent.mkdir(parents=True, exist_ok=True)
    local(rest[1]).write_text(sys.stdin.read())
elif command == "cp" and rest[0].endswith("/*"):
    source = local(rest[0][:-2])
    if not source.is_dir():
        sys.exit("CommandException: No URLs matched: " + rest[0])
    shutil.copytree(source, rest[1], dirs_exist_ok=True)
elif command == "rsync":
    shutil.copytree(rest[0], local(rest[1]), dirs_exist_ok=True)
else:
    sys.exit("gsutil stand-in: not a form the pipelines use: " + " ".join(sys.argv[1:]))
"""


def bucket(root: Path, name: str) -> Path:
    """The folder that plays gs://NAME in the gsutil stand-in."""
    return root / "gcs" / name


@dataclasses.dataclass(frozen=True)
class StepRun:
    id: str
    returncode: int
    stdout: str
    stderr: str


def tools(root: Path) -> Path:
    folder = root / "image-tools"
    folder.mkdir(exist_ok=True)
    (folder / "nox").write_text(NOX.format(python=sys.executable))
    (folder / "gsutil").write_text(GSUTIL.format(python=sys.executable, gcs=str(root / "gcs")))
    for name in ("pip", "apt-get"):
        (folder / name).write_text("#!/bin/sh\nexit 0\n")
    for name in ("nox", "pip", "apt-get", "gsutil"):
        (folder / name).chmod(0o755)
    return folder


def prepare(
    build_file: Path, workspace: Path, root: Path, values: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], Any]:
    """The document, the build's environment and the substitution function."""
    document = yaml.safe_load(build_file.read_text())
    # The trigger's values over the file's defaults, as Cloud Build applies them.
    values = {**document.get("substitutions", {}), **values}

    def substitute(text: str) -> str:
        for key in sorted(values, key=len, reverse=True):
            text = text.replace("${" + key + "}", values[key]).replace("$" + key, values[key])
        # Cloud Build mounts the checkout at /workspace.
        return text.replace("$$", "$").replace("/workspace", str(workspace))

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "GIT_"))},
        "PATH": f"{tools(root)}{os.pathsep}{os.environ['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,
        **dict(substitute(item).split("=", 1) for item in document["options"]["env"]),
    }
    return document, env, substitute


def run_build(
    build_file: Path,
    workspace: Path,
    root: Path,
    values: dict[str, str],
    only: Collection[str] | None = None,
) -> list[StepRun]:
    """Every step in order (with ``only``, those steps); stops after a step that fails
    without allowFailure."""
    document, base_env, substitute = prepare(build_file, workspace, root, values)
    runs = []
    for step in document["steps"]:
        if only is not None and step["id"] not in only:
            continue
        env = {**base_env, **dict(substitute(e).split("=", 1) for e in step.get("env", []))}
        command = [step.get("entrypoint", "bash"), *[substitute(a) for a in step["args"]]]
        done = subprocess.run(
            command, cwd=workspace, env=env, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        runs.append(StepRun(step["id"], done.returncode, done.stdout, done.stderr))
        if done.returncode != 0 and not step.get("allowFailure", False):
            break
    return runs
