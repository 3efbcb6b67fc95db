"""The command line: parse, build objects, call the core, map errors to exit codes.

Nothing else lives here. Every command that reports takes ``--format json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from pipgate import __version__, index, policy, render, review, sync
from pipgate.allowlist import Allowlist, InvalidAllowlistError, Target, load
from pipgate.allowlist import jsonschema as schemas
from pipgate.allowlist.spec import FILES
from pipgate.audit import (
    Finding,
    FindingsError,
    audit_document,
    audit_target,
    auditor_for,
    stale_exceptions,
)
from pipgate.bundle import default_path, write_bundle
from pipgate.download import DownloadReport, FileCache, download_target
from pipgate.errors import ExitCode, InputError, PipgateError
from pipgate.fsutil import write_atomic
from pipgate.lock import (
    Lock,
    PipToolsLocker,
    describe_sources,
    inputs_digest,
    lock_path,
    lock_target,
    read_lock,
)
from pipgate.names import NormalizedName
from pipgate.osv import Server as OsvServer
from pipgate.osv import load_database
from pipgate.problems import Problem, display_path
from pipgate.publish import publish
from pipgate.registry import registry_for


class Format(enum.Enum):
    TEXT = "text"
    JSON = "json"


def _emit_json(document: dict[str, object], out: TextIO) -> None:
    out.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _summary(allowlist: Allowlist) -> dict[str, object]:
    return {
        "files": [display_path(p) for p in allowlist.files],
        "package_files": len(allowlist.package_files),
        "packages": len(allowlist.packages),
        "targets": [t.name for t in allowlist.config.targets],
        "exceptions": len(allowlist.exceptions),
        "registry": allowlist.config.registry.kind.value,
    }


def cmd_validate(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    directory = Path(args.allowlist)
    try:
        allowlist = load(directory)
    except InvalidAllowlistError as exc:
        if fmt is Format.JSON:
            _emit_json(
                {
                    "command": "validate",
                    "ok": False,
                    "allowlist": display_path(directory),
                    "problems": [p.as_json() for p in exc.problems],
                },
                sys.stdout,
            )
        else:
            for problem in exc.problems:
                print(problem.render())
            count = len(exc.problems)
            print(
                f"{count} problem{'s' if count != 1 else ''} in {display_path(directory)}/; "
                "fix each at the file and line shown",
                file=sys.stderr,
            )
        return ExitCode.BAD_INPUT
    summary = _summary(allowlist)
    if fmt is Format.JSON:
        _emit_json(
            {
                "command": "validate",
                "ok": True,
                "allowlist": display_path(directory),
                "problems": [],
                "summary": summary,
            },
            sys.stdout,
        )
    else:
        targets = ", ".join(t.name for t in allowlist.config.targets)
        print(
            f"{display_path(directory)}/ is valid: {summary['packages']} packages in "
            f"{summary['package_files']} package files, "
            f"targets {targets}, {summary['exceptions']} accepted vulnerabilities"
        )
    return ExitCode.OK


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _select_targets(allowlist: Allowlist, names: Sequence[str] | None) -> list[Target]:
    if not names:
        return list(allowlist.config.targets)
    known = {t.name: t for t in allowlist.config.targets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(
            f"unknown target {', '.join(unknown)}", hint=f"config.yaml defines {', '.join(known)}"
        )
    return [known[n] for n in names]


def cmd_lock(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    allowlist = load(Path(args.allowlist), expired_is_error=False)  # exceptions: the audit's
    targets = _select_targets(allowlist, args.target)
    locker = PipToolsLocker(
        allowlist.config.upstream, registry=lambda: registry_for(allowlist.config.registry)
    )
    output = Path(args.output) if args.output else None
    command = "pipgate lock"  # the same for every run, so equal pins give equal files
    reports = []
    for target in targets:
        started = time.monotonic()
        outcome = lock_target(
            allowlist,
            target,
            locker,
            upgrade=args.upgrade,
            output=output,
            command=command,
            progress=_progress if fmt is Format.TEXT else None,
        )
        elapsed = time.monotonic() - started
        top = [p for p in outcome.lock.packages if p.top_level]
        transitive = [p for p in outcome.lock.packages if not p.top_level]
        status = "unchanged" if outcome.skipped else ("written" if outcome.changed else "same")
        reports.append(
            {
                "target": target.name,
                "path": display_path(outcome.path),
                "status": status,
                "packages": len(outcome.lock.packages),
                "top_level": len(top),
                "transitive": [
                    {"name": p.name, "version": p.version, "via": list(p.via)} for p in transitive
                ],
                "seconds": round(elapsed, 3),
            }
        )
        if fmt is Format.TEXT:
            where = display_path(outcome.path)
            if outcome.skipped:
                print(f"{target.name}: nothing changed (inputs unchanged) {where}")
            else:
                verb = "wrote" if outcome.changed else "re-resolved, same pins in"
                print(
                    f"{target.name}: {verb} {where}: {len(outcome.lock.packages)} packages "
                    f"({len(top)} approved, {len(transitive)} transitive) in {elapsed:.1f} s"
                )
                for p in transitive:
                    print(f"  transitive {p.name}=={p.version} via {', '.join(p.via)}")
    if fmt is Format.JSON:
        _emit_json(
            {"command": "lock", "ok": True, "targets": reports, "index_bytes": index.TRAFFIC.bytes},
            sys.stdout,
        )
    return ExitCode.OK


def _finding_row(finding: Finding) -> list[str]:
    vuln = finding.vulnerability
    ids = vuln.id + (f" ({', '.join(vuln.aliases)})" if vuln.aliases else "")
    how = "direct" if len(finding.chain) == 1 else "via " + " > ".join(finding.chain)
    entry = finding.entry
    return [
        finding.package,
        finding.version,
        ids,
        ", ".join(vuln.fix_versions) or "none",
        f"{entry.location} {entry.spelled} ({how})",
    ]


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]


def cmd_audit(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    allowlist = load(Path(args.allowlist), expired_is_error=False)
    targets = _select_targets(allowlist, args.target)
    output = Path(args.output) if args.output else None
    policy = allowlist.config.policy.audit
    if args.database:
        policy = dataclasses.replace(policy, database=Path(args.database))
    results = []
    with auditor_for(policy) as auditor:
        source = auditor.source
        if fmt is Format.TEXT:
            extra = ""
            if source.records is not None:
                extra = f" ({source.records} records, newest {source.newest})"
            _progress(f"audit: vulnerability data from {source.description}{extra}")
        for target in targets:
            results.append(audit_target(allowlist, target, auditor, output))
    stale = stale_exceptions(allowlist, results)
    failing = [r for r in results if r.unaccepted]
    if fmt is Format.JSON:
        _emit_json(
            {
                "command": "audit",
                "ok": not failing,
                "source": source.as_json(),
                "targets": [audit_document(r) for r in results],
                "stale_exceptions": [
                    {
                        "id": e.id,
                        "package": e.package,
                        "file": display_path(e.location.path),
                        "line": e.location.line,
                    }
                    for e in stale
                ],
            },
            sys.stdout,
        )
    else:
        header = ["PACKAGE", "VERSION", "ID (ALIASES)", "FIXED IN", "BROUGHT IN BY"]
        for result in results:
            accepted = [f for f in result.findings if f.accepted]
            print(
                f"{result.target.name}: {result.packages} packages audited, "
                f"{len(result.unaccepted)} known vulnerabilities not accepted, "
                f"{len(accepted)} accepted"
            )
            if result.unaccepted:
                for line in _table([_finding_row(f) for f in result.unaccepted], header):
                    print(line)
            for finding in result.unaccepted:
                if finding.expired is not None:
                    print(
                        f"  {finding.expired.location}: the exception for "
                        f"{finding.vulnerability.id} in {finding.package} expired on "
                        f"{finding.expired.expires}"
                    )
            for finding in accepted:
                assert finding.accepted_by is not None
                print(
                    f"  accepted {finding.vulnerability.id} in {finding.package} until "
                    f"{finding.accepted_by.expires} ({finding.accepted_by.location})"
                )
        for exception in stale:
            print(
                f"{exception.location}: stale exception: {exception.id} matches no finding "
                f"in {exception.package}; remove it"
            )
    if failing and fmt is Format.JSON:
        return ExitCode.POLICY  # the document above says why; one document per run
    if failing:
        count = sum(len(r.unaccepted) for r in failing)

        raise FindingsError(
            f"{count} known vulnerabilit{'y' if count == 1 else 'ies'} not accepted",
            hint="upgrade the package to a fixed version, or have security accept it in "
            "allowlist/exceptions.yaml with a reason and an expiry",
        )
    return ExitCode.OK


def _lock_or_fail(allowlist: Allowlist, target: Target, output: Path | None) -> Lock:
    path = lock_path(allowlist, target, output)
    lock = read_lock(path, target.name)
    if lock is None:
        raise InputError(
            f"no lock for target {target.name} at {display_path(path)}",
            hint="run 'pipgate lock' first",
        )
    return lock


def _downloads(
    args: argparse.Namespace,
    allowlist: Allowlist,
    fmt: Format,
    cache: FileCache,
    targets: Sequence[Target],
) -> list[tuple[Target, Lock, DownloadReport]]:
    """Each target's lock and its files in the cache (fetched where the cache lacks them)."""
    output = Path(args.output) if args.output else None
    # Made once, and only if an internal package needs it.
    registry = functools.cache(lambda: registry_for(allowlist.config.registry))
    out = []
    for target in targets:
        lock = _lock_or_fail(allowlist, target, output)
        report = download_target(
            allowlist,
            target,
            lock,
            cache,
            progress=_progress if fmt is Format.TEXT else None,
            registry=registry,
        )
        out.append((target, lock, report))
    return out


def _download_all(
    args: argparse.Namespace, allowlist: Allowlist, fmt: Format, cache: FileCache
) -> list[DownloadReport]:
    targets = _select_targets(allowlist, args.target)
    return [report for _, _, report in _downloads(args, allowlist, fmt, cache, targets)]


def _download_json(reports: list[DownloadReport]) -> list[dict[str, object]]:
    return [
        {
            "target": r.target,
            "files": len(r.files),
            "fetched": r.fetched,
            "fetched_bytes": r.fetched_bytes,
            "cached": r.cached,
        }
        for r in reports
    ]


def cmd_download(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    allowlist = load(Path(args.allowlist), expired_is_error=False)
    cache = FileCache(Path(args.cache) if args.cache else None)
    reports = _download_all(args, allowlist, fmt, cache)
    if fmt is Format.JSON:
        _emit_json(
            {
                "command": "download",
                "ok": True,
                "targets": _download_json(reports),
                "index_bytes": index.TRAFFIC.bytes,
            },
            sys.stdout,
        )
    else:
        for r in reports:
            print(
                f"{r.target}: {len(r.files)} files, {r.fetched} fetched "
                f"({r.fetched_bytes / 1e6:.1f} MB), {r.cached} already cached"
            )
    return ExitCode.OK


def cmd_upload(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    allowlist = load(Path(args.allowlist), expired_is_error=False)
    cache = FileCache(Path(args.cache) if args.cache else None)
    reports = _download_all(args, allowlist, fmt, cache)
    registry = registry_for(allowlist.config.registry)
    files = [f for r in reports for f in r.files]
    report = publish(
        registry,
        files,
        workers=args.jobs,
        backoff=float(os.environ.get("PIPGATE_RETRY_BACKOFF") or 1.0),
        progress=_progress if fmt is Format.TEXT else None,
    )

    if fmt is Format.JSON:
        _emit_json(
            {
                "command": "upload",
                "ok": True,
                "registry": registry.describe(),
                "downloaded": _download_json(reports),
                "files": report.files,
                "already_present": report.present,
                "uploaded": report.uploaded,
                "uploaded_bytes": report.uploaded_bytes,
                "verified": report.verified,
                "index_bytes": index.TRAFFIC.bytes,
            },
            sys.stdout,
        )
    else:
        print(
            f"{registry.describe()}: {report.files} files, {report.present} already present, "
            f"{report.uploaded} uploaded ({report.uploaded_bytes / 1e6:.1f} MB), "
            f"{report.verified} verified by hash"
        )
    return ExitCode.OK


def _upstream_sources(allowlist: Allowlist, targets: Sequence[Target]) -> list[index.Source]:
    """Where the targets' packages come from: the upstream, or pip's own configuration."""
    locker = PipToolsLocker(allowlist.config.upstream)
    return list(dict.fromkeys(s for t in targets for s in locker.sources(t)))


def cmd_check(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    allowlist = load(Path(args.allowlist), expired_is_error=False)
    targets = _select_targets(allowlist, args.target)
    output = Path(args.output) if args.output else None
    locks = {t.name: (t, _lock_or_fail(allowlist, t, output)) for t in targets}
    sources = _upstream_sources(allowlist, targets)
    if fmt is Format.TEXT:
        _progress(f"check: reading the upstream at {describe_sources(sources)}")
    cache = FileCache(Path(args.cache) if args.cache else None)
    findings = policy.run_checks(policy.make_context(allowlist, locks, sources, cache))
    errors = [f for f in findings if f.severity is policy.Severity.ERROR]
    if fmt is Format.JSON:
        _emit_json(
            {
                "command": "check",
                "ok": not errors,
                "targets": [t.name for t in targets],
                "findings": [f.as_json() for f in findings],
            },
            sys.stdout,
        )
        return ExitCode.POLICY if errors else ExitCode.OK
    for finding in findings:
        where = display_path(finding.entry.location.path)
        version = f"=={finding.version}" if finding.version else ""
        print(
            f"{where}:{finding.entry.location.line}: {finding.severity.value}: "
            f"{finding.package}{version} [{finding.rule}] {finding.message}"
        )
        if len(finding.chain) > 1:
            print(f"  brought in by {' > '.join(finding.chain)}")
        if finding.targets:
            print(f"  targets: {', '.join(finding.targets)}")
        print(f"  what to do: {finding.hint}")
    warnings = len(findings) - len(errors)
    summary = (
        f"{len(errors)} polic{'y' if len(errors) == 1 else 'ies'} broken, "
        f"{warnings} warning{'s' if warnings != 1 else ''} "
        f"({sum(len(lock.packages) for _, lock in locks.values())} locked packages in "
        f"{', '.join(locks)})"
    )
    if errors:
        raise policy.PolicyFailedError(
            summary, hint="each finding above says what to change in which file"
        )
    print(f"check: {summary}")
    return ExitCode.OK


def _manifests(
    args: argparse.Namespace,
    allowlist: Allowlist,
    fmt: Format,
    targets: Sequence[Target],
    only: Sequence[NormalizedName] | None = None,
) -> list[render.Manifest]:
    """Each target's files (downloaded where the cache lacks them), in install order."""
    cache = FileCache(Path(args.cache) if args.cache else None)
    return [
        render.build_manifest(allowlist, target, lock, report.files, only=only)
        for target, lock, report in _downloads(args, allowlist, fmt, cache, targets)
    ]


def cmd_render(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    allowlist = load(Path(args.allowlist), expired_is_error=False)
    folder = render.output_folder(allowlist, Path(args.output) if args.output else None)
    registry = allowlist.config.registry
    files = {
        folder / render.PIP_CONF: render.render_pip_conf(registry),
        folder / render.UV_TOML: render.render_uv_toml(registry),
    }
    for manifest in _manifests(args, allowlist, fmt, _select_targets(allowlist, args.target)):
        for name, text in render.target_files(manifest).items():
            files[folder / manifest.target.name / name] = text
    written = render.write(files, dry_run=args.dry_run)
    if fmt is Format.JSON:
        _emit_json(
            {
                "command": "render",
                "ok": True,
                "dry_run": args.dry_run,
                "files": [{"path": display_path(w.path), "changed": w.changed} for w in written],
            },
            sys.stdout,
        )
    else:
        verb = "would write" if args.dry_run else "wrote"
        for item in written:
            if item.changed:
                print(f"{verb} {display_path(item.path)}")
        unchanged = sum(not w.changed for w in written)
        print(f"{verb} {len(written) - unchanged} files, {unchanged} unchanged")
    return ExitCode.OK


def cmd_bundle(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    allowlist = load(Path(args.allowlist), expired_is_error=False)
    targets = _select_targets(allowlist, args.target)
    only = None
    if args.bootstrap:
        bootstrap = allowlist.config.bootstrap
        if bootstrap is None:
            raise InputError(
                f"{display_path(allowlist.config.path)} configures no bootstrap set",
                hint="add 'bootstrap: {file: bootstrap.yaml}' naming the package file of "
                "keyring and its registry backend",
            )
        targets = [t for t in targets if bootstrap.enabled_for(t)]
        if not targets:
            raise InputError(
                "the bootstrap bundle is enabled for none of the selected targets",
                hint=f"bootstrap.targets at {bootstrap.location} lists the targets",
            )
        only = [e.name for e in allowlist.bootstrap_packages()]
    if args.out and len(targets) > 1:
        raise InputError("--out names one bundle; choose one --target")
    bundles = []
    for manifest in _manifests(args, allowlist, fmt, targets, only):
        target = manifest.target
        out = (
            Path(args.out)
            if args.out
            else default_path(allowlist.root, manifest, bootstrap=args.bootstrap)
        )
        command = f"pipgate bundle{' --bootstrap' if args.bootstrap else ''} --target {target.name}"
        write_bundle(manifest, out, command)
        size = sum(f.size for f in manifest.files)
        bundles.append(
            {
                "target": target.name,
                "path": display_path(out),
                "files": len(manifest.files),
                "bytes": size,
            }
        )
        if fmt is Format.TEXT:
            print(
                f"{target.name}: {display_path(out)}: {len(manifest.files)} files "
                f"({size / 1e6:.1f} MB)"
            )
    if fmt is Format.JSON:
        _emit_json({"command": "bundle", "ok": True, "bundles": bundles}, sys.stdout)
    return ExitCode.OK


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _stdout_file() -> Path | None:
    """The regular file standard output is redirected to, where the system tells."""
    try:
        link = Path(f"/proc/self/fd/{sys.stdout.fileno()}")
        return link.readlink() if link.is_file() else None
    except (OSError, ValueError):
        return None


def cmd_pip_conf(args: argparse.Namespace) -> int:
    allowlist = load(Path(args.allowlist), expired_is_error=False)
    key_path = Path(args.json_key)
    try:
        key = key_path.read_bytes()
    except OSError as error:
        raise InputError(
            f"cannot read {args.json_key}: {error.strerror}", hint="check the key's path"
        ) from None
    text = render.render_composer_pip_conf(allowlist.config.registry, key, args.json_key)
    repository = allowlist.root
    target = Path(args.output) if args.output else _stdout_file()
    if target is not None and _inside(target, repository):
        raise InputError(
            f"refusing to write a pip.conf holding a key inside the repository "
            f"({display_path(target)})",
            hint="print it to the terminal or write it outside the repository, then upload "
            "it to the Composer environment's bucket",
        )
    print(
        "pipgate: warning: this pip.conf holds a service-account key; never commit or log it",
        file=sys.stderr,
    )
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return ExitCode.OK


def cmd_review(args: argparse.Namespace) -> int:
    fmt = Format(args.format)
    head = load(Path(args.allowlist), expired_is_error=False)
    targets = list(head.config.targets)
    output = Path(args.output) if args.output else None
    head_locks = {}
    for target in targets:
        lock = _lock_or_fail(head, target, output)
        if lock.digest != inputs_digest(head, target):
            raise InputError(
                f"the lock of {target.name} is older than the allowlist",
                hint="run 'pipgate lock' first, then review",
            )
        head_locks[target.name] = lock
    audit_policy = head.config.policy.audit
    if args.database:
        audit_policy = dataclasses.replace(audit_policy, database=Path(args.database))
    report = review.build(
        head,
        head_locks,
        base=args.base,
        sources=_upstream_sources(head, targets),
        cache=FileCache(Path(args.cache) if args.cache else None),
        audit_policy=audit_policy,
        lock_file=lambda target: lock_path(head, target, output),
    )
    markdown = review.render_markdown(report)
    if args.report:
        write_atomic(Path(args.report), markdown)
    if fmt is Format.JSON:
        _emit_json(review.as_json(report), sys.stdout)
        return ExitCode.OK if report.ok else ExitCode.POLICY
    sys.stdout.write(markdown)
    if not report.ok:
        raise policy.PolicyFailedError(
            f"review: {report.verdict()}", hint="the report above says what to change"
        )
    return ExitCode.OK


def _run_step(
    name: str,
    command: Callable[[argparse.Namespace], int],
    namespace: argparse.Namespace,
    fmt: Format,
) -> None:
    # Each step's own report goes to stderr under --format json, so that standard output
    # holds the one document of the sync.
    with contextlib.redirect_stdout(sys.stderr if fmt is Format.JSON else sys.stdout):
        code = command(namespace)
    if code != ExitCode.OK:  # the steps raise on failure; a bare code is not let through
        raise PipgateError(f"{name} exited {code}")


def cmd_sync(args: argparse.Namespace) -> int:
    """validate, lock, check, audit, publish (download, upload, verify), render; each step
    skipped when its inputs have not changed, the first failure stopping the run."""
    fmt = Format(args.format)
    started_all = time.monotonic()
    allowlist = load(Path(args.allowlist))
    targets = list(allowlist.config.targets)
    output = Path(args.output) if args.output else None
    folder = render.output_folder(allowlist, output)
    state = sync.State.load(folder / sync.STATE_NAME)
    common = {
        "allowlist": args.allowlist,
        "format": Format.TEXT.value,
        "target": None,
        "output": args.output,
        "cache": args.cache,
    }
    steps: list[tuple[str, Callable[[argparse.Namespace], int], dict[str, object]]] = [
        ("lock", cmd_lock, {"upgrade": False}),
        ("check", cmd_check, {}),
        ("audit", cmd_audit, {"database": args.database}),
        ("publish", cmd_upload, {"jobs": args.jobs}),
        ("render", cmd_render, {"dry_run": False}),
    ]
    report: list[dict[str, object]] = [{"step": "validate", "status": "ran", "seconds": 0.0}]
    if fmt is Format.TEXT:
        _progress(
            f"sync: validate: {len(allowlist.packages)} packages, targets "
            f"{', '.join(t.name for t in targets)}"
        )
    for name, command, extra in steps:
        inputs = None
        if name != "lock":
            inputs = sync.step_inputs(name, allowlist, targets, output, database=args.database)
            if not args.force and state.is_done(name, inputs):
                report.append({"step": name, "status": "skipped", "seconds": 0.0})
                if fmt is Format.TEXT:
                    _progress(f"sync: {name}: skipped, inputs unchanged")
                continue
        if fmt is Format.TEXT:
            _progress(f"sync: {name}")
        namespace = argparse.Namespace(**common, **extra)
        started = time.monotonic()
        try:
            _run_step(name, command, namespace, fmt)
        except PipgateError as error:
            report.append(
                {
                    "step": name,
                    "status": "failed",
                    "exit_code": int(error.exit_code),
                    "seconds": round(time.monotonic() - started, 3),
                }
            )
            error.message = f"sync stopped at {name}: {error.message}"
            if fmt is Format.JSON:
                _emit_json(
                    {
                        "command": "sync",
                        "ok": False,
                        "steps": report,
                        "error": {
                            "message": error.message,
                            "hint": error.hint or "",
                            "exit_code": int(error.exit_code),
                        },
                    },
                    sys.stdout,
                )
                print(f"pipgate: error: {error.message}", file=sys.stderr)
                if error.hint:
                    print(f"  hint: {error.hint}", file=sys.stderr)
                return int(error.exit_code)
            raise
        report.append(
            {"step": name, "status": "ran", "seconds": round(time.monotonic() - started, 3)}
        )
        if inputs is not None:
            # Recomputed after the step: publishing changes what the embedded registry's
            # folder holds, and rendering makes its files, both inputs of those steps.
            state.record(
                name, sync.step_inputs(name, allowlist, targets, output, database=args.database)
            )
    elapsed = time.monotonic() - started_all
    if fmt is Format.JSON:
        _emit_json(
            {"command": "sync", "ok": True, "seconds": round(elapsed, 3), "steps": report},
            sys.stdout,
        )
    else:
        ran = [str(r["step"]) for r in report if r["status"] == "ran"]
        published = next(str(r["status"]) for r in report if r["step"] == "publish")
        registry = (
            "the registry holds every locked file, verified by hash"
            if published == "ran"
            else "publish skipped: the registry was verified for these locks before"
        )
        print(f"sync: done in {elapsed:.1f} s; ran {', '.join(ran)}; {registry}")
    return ExitCode.OK


def cmd_osv_serve(args: argparse.Namespace) -> int:
    database = load_database(Path(args.database))
    with OsvServer(database, args.port) as server:
        print(
            f"serving {database.count} OSV records (newest {database.newest}) from "
            f"{args.database} at {server.url}",
            flush=True,
        )
        try:
            server.thread.join()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return ExitCode.OK


def cmd_schema(args: argparse.Namespace) -> int:
    if args.check is not None or args.out is not None:
        folder = Path(args.check if args.check is not None else args.out)
        stale = []
        for name in FILES:
            path = folder / f"{name}.schema.json"
            text = schemas.render(name)
            if args.check is not None:
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
                hint=f"run 'pipgate schema --out {display_path(folder)}'",
            )
        return ExitCode.OK
    sys.stdout.write(schemas.render(args.name or "packages"))
    return ExitCode.OK


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--allowlist",
        default="allowlist",
        metavar="DIR",
        help="the allowlist folder (default: allowlist)",
    )
    common.add_argument(
        "--format",
        choices=[f.value for f in Format],
        default="text",
        help="output format (default: text)",
    )

    parser = argparse.ArgumentParser(
        prog="pipgate",
        description="Keep a private Python package registry holding exactly what was approved.",
        epilog="exit codes: 0 ok, 1 policy said no, 2 bad input or usage, "
        "3 an external tool or service failed, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"pipgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = sub.add_parser(
        "validate", parents=[common], help="check every allowlist file and report every problem"
    )
    validate.set_defaults(func=cmd_validate)

    output_option = argparse.ArgumentParser(add_help=False)
    output_option.add_argument(
        "--output",
        metavar="DIR",
        help="the generated/ tree (default: generated/ beside the allowlist folder)",
    )
    per_target = argparse.ArgumentParser(add_help=False, parents=[output_option])
    per_target.add_argument(
        "--target",
        action="append",
        metavar="NAME",
        help="only this target (repeatable; default: every target)",
    )

    lock = sub.add_parser(
        "lock",
        parents=[common, per_target],
        help="resolve one hashed lock per target with pip-compile",
    )
    lock.add_argument(
        "--upgrade", action="store_true", help="re-resolve even when the inputs have not changed"
    )
    lock.set_defaults(func=cmd_lock)

    audit = sub.add_parser(
        "audit",
        parents=[common, per_target],
        help="audit every lock with pip-audit, failing closed",
    )
    audit.add_argument(
        "--database",
        metavar="PATH",
        help="an offline OSV export to audit against for this run (overrides policy.audit)",
    )
    audit.set_defaults(func=cmd_audit)

    cache_option = argparse.ArgumentParser(add_help=False)
    cache_option.add_argument(
        "--cache",
        metavar="DIR",
        help="the file cache (default: $PIPGATE_CACHE_DIR/files or ~/.cache/pipgate/files)",
    )
    check = sub.add_parser(
        "check",
        parents=[common, per_target, cache_option],
        help="the supply-chain policy: cooldown, yanked, typosquats, dependency confusion, "
        "licences, project status",
    )
    check.set_defaults(func=cmd_check)
    download = sub.add_parser(
        "download",
        parents=[common, per_target, cache_option],
        help="fetch each target's files into the cache, checked against the lock",
    )
    download.set_defaults(func=cmd_download)
    upload = sub.add_parser(
        "upload",
        parents=[common, per_target, cache_option],
        help="download, upload only what the registry lacks, and verify it by hash",
    )
    upload.add_argument("--jobs", type=int, default=4, help="parallel uploads (default: 4)")
    upload.set_defaults(func=cmd_upload)

    render_parser = sub.add_parser(
        "render",
        parents=[common, per_target, cache_option],
        help="write pip.conf, uv.toml and each target's install order and offline installers",
    )
    render_parser.add_argument(
        "--dry-run", action="store_true", help="write nothing; say which files would change"
    )
    render_parser.set_defaults(func=cmd_render)

    bundle = sub.add_parser(
        "bundle",
        parents=[common, per_target, cache_option],
        help="pack a target's files with their install order and installer, for no index",
    )
    bundle.add_argument(
        "--bootstrap",
        action="store_true",
        help="only the bootstrap set of config.yaml (keyring and its registry backend)",
    )
    bundle.add_argument(
        "--out",
        metavar="PATH",
        help="a .tar.gz archive, or else a folder "
        "(default: dist/pipgate-[bootstrap-]TARGET.tar.gz)",
    )
    bundle.set_defaults(func=cmd_bundle)

    pip_conf = sub.add_parser(
        "pip-conf",
        parents=[common],
        help="print a pip.conf embedding a service-account key, for Cloud Composer",
    )
    pip_conf.add_argument(
        "--json-key", required=True, metavar="KEY.json", help="the service-account key file"
    )
    pip_conf.add_argument(
        "--output", metavar="FILE", help="write it here (mode 0600), never inside the repository"
    )
    pip_conf.set_defaults(func=cmd_pip_conf)

    review_parser = sub.add_parser(
        "review",
        parents=[common, cache_option, output_option],
        help="a Markdown report of what the allowlist and locks change since a git ref",
    )
    review_parser.add_argument(
        "--base", required=True, metavar="REF", help="the git ref to compare with (origin/main)"
    )
    review_parser.add_argument(
        "--database", metavar="PATH", help="an offline OSV export for the vulnerabilities"
    )
    review_parser.add_argument(
        "--report", metavar="FILE", help="also write the Markdown report to FILE"
    )
    review_parser.set_defaults(func=cmd_review)

    sync_parser = sub.add_parser(
        "sync",
        parents=[common, cache_option, output_option],
        help="validate, lock, check, audit, download, upload, verify and render, skipping "
        "what has not changed",
    )
    sync_parser.add_argument(
        "--database",
        metavar="PATH",
        help="an offline OSV export for the audit (overrides policy.audit)",
    )
    sync_parser.add_argument("--jobs", type=int, default=4, help="parallel uploads (default: 4)")
    sync_parser.add_argument(
        "--force", action="store_true", help="run every step even when its inputs are unchanged"
    )
    sync_parser.set_defaults(func=cmd_sync)

    serve = sub.add_parser(
        "osv-serve", help="serve the OSV query API on 127.0.0.1 from a local OSV export"
    )
    serve.add_argument(
        "--database",
        required=True,
        metavar="PATH",
        help="a folder of OSV records (JSON or YAML) or an all.zip export",
    )
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.set_defaults(func=cmd_osv_serve)

    schema = sub.add_parser("schema", help="print or write the JSON Schemas of the allowlist files")
    schema.add_argument(
        "name", nargs="?", choices=list(FILES), help="print the schema of this file kind"
    )
    group = schema.add_mutually_exclusive_group()
    group.add_argument("--out", metavar="DIR", help="write every schema into DIR")
    group.add_argument(
        "--check", metavar="DIR", help="exit 2 when the schemas in DIR are not current"
    )
    schema.set_defaults(func=cmd_schema)
    return parser


def _report_error(error: PipgateError, fmt: Format) -> None:
    problems: Sequence[Problem] = getattr(error, "problems", ())
    if fmt is Format.JSON:
        _emit_json(
            {
                "ok": False,
                "error": {
                    "message": error.message,
                    "hint": error.hint or "",
                    "exit_code": int(error.exit_code),
                },
                "problems": [p.as_json() for p in problems],
            },
            sys.stdout,
        )
    else:
        for problem in problems:
            print(problem.render())
    print(f"pipgate: error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"  hint: {error.hint}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    fmt = Format(getattr(args, "format", "text"))
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args))
    except PipgateError as error:
        _report_error(error, fmt)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("pipgate: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except OSError as error:
        if os.environ.get("PIPGATE_DEBUG"):
            raise
        where = f": {error.filename}" if error.filename else ""
        _report_error(
            PipgateError(
                f"{error.strerror or error}{where}", hint="check the path and its permissions"
            ),
            fmt,
        )
        return int(ExitCode.EXTERNAL)
