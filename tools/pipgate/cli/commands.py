"""The commands: each builds objects, calls the pipeline and presents the result.

A command is a function of the frozen ``Options`` and the presenter; errors
are mapped to exit codes in one place (``pipgate.cli.main``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipgate import pipeline, render
from pipgate.allowlist import Allowlist, InvalidAllowlistError, load
from pipgate.allowlist import jsonschema as schemas
from pipgate.allowlist.spec import FILES
from pipgate.audit.osv import Server as OsvServer
from pipgate.audit.osv import load_database
from pipgate.audit.osvsync import sync_export, sync_json
from pipgate.cli import adapters
from pipgate.cli.json_reports import emit_json
from pipgate.cli.present import Presenter, progress
from pipgate.errors import ExitCode, InputError
from pipgate.fsutil import write_atomic
from pipgate.options import Format, Options
from pipgate.problems import display_path


def _load(options: Options) -> Allowlist:
    """The allowlist; an expired exception is loaded (marked) for the audit to report."""
    return load(options.allowlist, expired_is_error=False)


def _progress(options: Options) -> pipeline.Progress | None:
    return progress if options.text else None


def cmd_validate(options: Options, presenter: Presenter) -> int:
    try:
        allowlist = load(options.allowlist)
    except InvalidAllowlistError as exc:
        presenter.validation_failed(options.allowlist, exc.problems)
        return ExitCode.BAD_INPUT
    presenter.validated(options.allowlist, allowlist)
    return ExitCode.OK


def _run(step: pipeline.Step, options: Options, presenter: Presenter) -> int:
    """One step of the pipeline for the selected targets, its report presented."""
    allowlist = _load(options)
    targets = pipeline.select_targets(allowlist, options.targets)
    found = adapters.build(options, allowlist)
    presenter.report(step(options, allowlist, found, targets, _progress(options)))
    return ExitCode.OK


def cmd_lock(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.lock, options, presenter)


def cmd_check(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.check, options, presenter)


def cmd_audit(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.audit, options, presenter)


def cmd_download(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.download, options, presenter)


def cmd_upload(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.upload, options, presenter)


def cmd_render(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.render_files, options, presenter)


def cmd_outdated(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.outdated_entries, options, presenter)


def cmd_bump(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.bump_entries, options, presenter)


def cmd_verify(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.verify, options, presenter)


def cmd_prune(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.prune, options, presenter)


def cmd_bundle(options: Options, presenter: Presenter) -> int:
    return _run(pipeline.bundle, options, presenter)


def cmd_review(options: Options, presenter: Presenter) -> int:
    head = _load(options)
    presenter.report(pipeline.review_change(options, head, adapters.build(options, head)))
    return ExitCode.OK


def cmd_sync(options: Options, presenter: Presenter) -> int:
    """validate, lock, check, audit, publish (download, upload, verify), render."""
    allowlist = load(options.allowlist)  # an expired exception stops the sync here
    report = pipeline.sync_all(
        options,
        allowlist,
        adapters.build(options, allowlist),
        progress=progress,
        announce=_progress(options),
        on_step=presenter.step,
    )
    if report.failed is not None:
        presenter.sync_failed(report)
        return int(report.exit_code)
    presenter.report(report)
    return ExitCode.OK


def _repository_of(path: Path) -> Path | None:
    """The git work tree ``path`` is in (a ``.git`` folder or file above it), or None."""
    resolved = path.resolve()
    for folder in (resolved, *resolved.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _refused_destination(target: Path, allowlist: Allowlist) -> Path | None:
    """The repository a key may not be written into: any git work tree the destination is
    in, the current directory's, or the allowlist's (even where it is not a git tree)."""
    resolved = target.resolve()
    for folder in (_repository_of(target), _repository_of(Path.cwd()), allowlist.root):
        if folder is not None and resolved.is_relative_to(folder.resolve()):
            return folder
    return None


def _stdout_file() -> Path | None:
    """The regular file standard output is redirected to, where the system tells."""
    try:
        link = Path(f"/proc/self/fd/{sys.stdout.fileno()}")
        return link.readlink() if link.is_file() else None
    except (OSError, ValueError):
        return None


def cmd_pip_conf(options: Options, presenter: Presenter) -> int:
    allowlist = _load(options)
    assert options.json_key is not None
    try:
        key = options.json_key.read_bytes()
    except OSError as error:
        raise InputError(
            f"cannot read {options.json_key}: {error.strerror}", hint="check the key's path"
        ) from None
    text = render.render_composer_pip_conf(allowlist.config.registry, key, str(options.json_key))
    target = options.conf_output or _stdout_file()
    repository = _refused_destination(target, allowlist) if target is not None else None
    if target is not None and repository is not None:
        raise InputError(
            f"refusing to write a pip.conf holding a key inside the repository "
            f"{display_path(repository)} ({display_path(target)})",
            hint="print it to the terminal or write it outside the repository, then upload "
            "it to the Composer environment's bucket",
        )
    print(
        "pipgate: warning: this pip.conf holds a service-account key; never commit or log it",
        file=sys.stderr,
    )
    if options.conf_output is None:
        if options.format is Format.JSON:
            # The same secret as the text form prints, as one JSON document.
            emit_json(_pip_conf_json(options, text))
        else:
            sys.stdout.write(text)
        return ExitCode.OK
    # 0600 whatever was there before (O_CREAT's mode applies only to a new file), set
    # before a byte of the key is written; a symbolic link is not followed.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(options.conf_output, flags, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    if options.format is Format.JSON:
        emit_json(_pip_conf_json(options, None))  # the key stays in the file
    return ExitCode.OK


def _pip_conf_json(options: Options, text: str | None) -> dict[str, object]:
    output = options.conf_output
    return {
        "command": "pip-conf",
        "ok": True,
        "key": display_path(options.json_key) if options.json_key else None,
        "output": display_path(output) if output is not None else None,
        "mode": "0600" if output is not None else None,
        "pip_conf": text,
        "holds_secret": True,
    }


def cmd_osv_serve(database: Path, port: int) -> int:
    loaded = load_database(database)
    with OsvServer(loaded, port) as server:
        print(
            f"serving {loaded.count} OSV records (newest {loaded.newest}) from "
            f"{database} at {server.url}",
            flush=True,
        )
        try:
            server.thread.join()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return ExitCode.OK


def cmd_osv_sync(sources: list[str], output: Path, output_format: Format) -> int:
    def progress(line: str) -> None:
        print(f"osv-sync: {line}", file=sys.stderr, flush=True)

    result = sync_export(sources, output, progress=progress)
    if output_format is Format.JSON:
        emit_json(sync_json(result))
        return ExitCode.OK
    print(
        f"wrote {result.records} OSV records to {display_path(output)} "
        f"({result.malicious} malicious-package reports, {result.withdrawn} withdrawn; "
        f"{result.read} read, {result.same_id} copies of one id and {result.merged} aliases "
        f"merged); newest {result.newest or 'none'}, fetched "
        f"{result.fetched or 'unknown (a source tells no time: the newest record dates it)'}"
    )
    return ExitCode.OK


def cmd_schema(name: str | None, check: Path | None, out: Path | None) -> int:
    folder = check if check is not None else out
    if folder is None:
        sys.stdout.write(schemas.render(name or "packages"))
        return ExitCode.OK
    stale = []
    for kind in FILES:
        path = folder / f"{kind}.schema.json"
        text = schemas.render(kind)
        if check is not None:
            try:
                current = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                current = None
            if current != text:
                stale.append(display_path(path))
        elif write_atomic(path, text):
            print(f"wrote {display_path(path)}")
    if stale:
        raise InputError(
            f"stale JSON Schema: {', '.join(stale)}",
            hint=f"run 'pipgate schema --output {display_path(folder)}'",
        )
    return ExitCode.OK
