"""The command line's grammar: one ``register`` per command, shared option groups.

Each command's parser sets ``handler``: a function of the parsed arguments
that returns the exit code (most build ``Options`` and call a command).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from pipgate import __version__
from pipgate.allowlist.spec import FILES
from pipgate.cli import commands
from pipgate.cli.options import from_args
from pipgate.cli.present import Presenter, presenter_for
from pipgate.options import Format, Options

Command = Callable[[Options, Presenter], int]
Subparsers = argparse._SubParsersAction


def _with_options(command: Command) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        options = from_args(args)
        return command(options, presenter_for(options.format, verbose=options.verbose))

    return handler


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number of commits: {value[:40]!r}")
    return int(value)


class _Groups:
    """The option groups commands share, each a parent parser."""

    def __init__(self) -> None:
        self.common = argparse.ArgumentParser(add_help=False)
        self.common.add_argument(
            "--allowlist",
            default="allowlist",
            metavar="DIR",
            help="the allowlist folder (default: allowlist)",
        )
        self.common.add_argument(
            "--format",
            choices=[f.value for f in Format],
            default="text",
            help="output format (default: text)",
        )
        self.common.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="text reports in full (a lock's every pin, not only what changed)",
        )
        self.output = argparse.ArgumentParser(add_help=False)
        self.output.add_argument(
            "--generated",
            dest="output",
            metavar="DIR",
            help="the generated/ tree (default: generated/ beside the allowlist folder)",
        )
        self.per_target = argparse.ArgumentParser(add_help=False, parents=[self.output])
        self.per_target.add_argument(
            "--target",
            action="append",
            metavar="NAME",
            help="only this target (repeatable; default: every target)",
        )
        self.cache = argparse.ArgumentParser(add_help=False)
        self.cache.add_argument(
            "--cache",
            metavar="DIR",
            help="the file cache (default: $PIPGATE_CACHE_DIR/files or ~/.cache/pipgate/files)",
        )


def _add(
    sub: Subparsers[argparse.ArgumentParser],
    name: str,
    command: Command,
    help_text: str,
    parents: list[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, parents=parents, help=help_text)
    parser.set_defaults(handler=_with_options(command))
    return parser


def _database(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--database", metavar="PATH", help=help_text)
    parser.add_argument(
        "--max-data-age-days",
        type=int,
        metavar="N",
        help="this run's policy.audit.max_data_age_days (0: no limit, for an export frozen "
        "on purpose)",
    )


def _jobs(parser: argparse.ArgumentParser, what: str = "uploads") -> None:
    parser.add_argument("--jobs", type=int, default=4, help=f"parallel {what} (default: 4)")


def register_validate(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = "check every allowlist file and report every problem"
    _add(sub, "validate", commands.cmd_validate, help_text, [g.common])


def register_lock(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = "resolve one hashed lock per target (pip-tools, or uv with lock.engine: uv)"
    lock = _add(sub, "lock", commands.cmd_lock, help_text, [g.common, g.per_target])
    _jobs(lock, "targets locked at once")
    lock.add_argument(
        "--upgrade", action="store_true", help="re-resolve even when the inputs have not changed"
    )


def register_audit(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = "audit every lock with pip-audit, failing closed"
    audit = _add(sub, "audit", commands.cmd_audit, help_text, [g.common, g.per_target])
    _database(audit, "an offline OSV export to audit against for this run (overrides policy.audit)")


def register_files(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    """check, download, upload and render: per target, with the file cache."""
    parents = [g.common, g.per_target, g.cache]
    _add(
        sub,
        "check",
        commands.cmd_check,
        "the supply-chain policy: cooldown, yanked, typosquats, dependency confusion, "
        "licences, project status",
        parents,
    )
    _add(
        sub,
        "download",
        commands.cmd_download,
        "fetch each target's files into the cache, checked against the lock",
        parents,
    )
    upload = _add(
        sub,
        "upload",
        commands.cmd_upload,
        "download, upload only what the registry lacks, and verify it by hash",
        parents,
    )
    _jobs(upload)
    _add(
        sub,
        "verify",
        commands.cmd_verify,
        "compare what the registry holds with every lock: missing, conflicting and extra "
        "files (exit 1 on drift)",
        parents,
    )
    prune = _add(
        sub,
        "prune",
        commands.cmd_prune,
        "remove from the registry the files no lock needs, now or in the last commits of "
        "generated/ (a dry run unless --apply)",
        parents,
    )
    action = prune.add_mutually_exclusive_group()
    action.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be removed, remove nothing (the default)",
    )
    action.add_argument("--apply", action="store_true", help="remove the files")
    prune.add_argument(
        "--keep-commits",
        type=_count,
        default=10,
        metavar="N",
        help="keep what the locks of the last N commits of generated/ need, so a rollback "
        "still installs (default: 10; 0 keeps only what the current locks need)",
    )
    render = _add(
        sub,
        "render",
        commands.cmd_render,
        "write pip.conf, uv.toml and each target's install order and offline installers",
        parents,
    )
    render.add_argument(
        "--dry-run", action="store_true", help="write nothing; say which files would change"
    )


def register_bundle(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = "pack a target's files with their install order and installer, for no index"
    bundle = _add(sub, "bundle", commands.cmd_bundle, help_text, [g.common, g.per_target, g.cache])
    bundle.add_argument(
        "--bootstrap",
        action="store_true",
        help="only the bootstrap set of config.yaml (keyring and its registry backend)",
    )
    bundle.add_argument(
        "--output",
        dest="bundle_out",
        metavar="PATH",
        help="a .tar.gz archive, or else a folder "
        "(default: dist/pipgate-[bootstrap-]TARGET.tar.gz)",
    )


def register_outdated(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = (
        "each entry's newest upstream release that passes the policy, and the newest of "
        "all with what refuses it (a report: exit 0)"
    )
    outdated = _add(sub, "outdated", commands.cmd_outdated, help_text, [g.common])
    outdated.add_argument("names", nargs="*", metavar="NAME", help="only these entries")
    _database(outdated, "an offline OSV export for the vulnerability data, as for audit")


def register_bump(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = (
        "write a newer version into an entry's YAML in place (the newest passing release, "
        "or VERSION), then validate"
    )
    bump = _add(sub, "bump", commands.cmd_bump, help_text, [g.common])
    bump.add_argument("names", nargs="?", metavar="NAME", help="the entry to bump")
    bump.add_argument("version", nargs="?", metavar="VERSION", help="the version to write")
    bump.add_argument(
        "--all", dest="every", action="store_true", help="every entry a passing release updates"
    )
    bump.add_argument(
        "--only-security",
        action="store_true",
        help="only pins with a known vulnerability that a passing release fixes",
    )
    _database(bump, "an offline OSV export for the vulnerability data, as for audit")


def register_pip_conf(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = "print a pip.conf embedding a service-account key, for Cloud Composer"
    pip_conf = _add(sub, "pip-conf", commands.cmd_pip_conf, help_text, [g.common])
    pip_conf.add_argument(
        "--json-key", required=True, metavar="KEY.json", help="the service-account key file"
    )
    pip_conf.add_argument(
        "--output",
        dest="conf_output",
        metavar="FILE",
        help="write it here (mode 0600), never inside the repository",
    )


def register_review(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = "a Markdown report of what the allowlist and locks change since a git ref"
    review = _add(sub, "review", commands.cmd_review, help_text, [g.common, g.cache, g.output])
    review.add_argument(
        "--base", required=True, metavar="REF", help="the git ref to compare with (origin/main)"
    )
    _database(review, "an offline OSV export for the vulnerabilities")
    review.add_argument("--report", metavar="FILE", help="also write the Markdown report to FILE")


def register_sync(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    help_text = (
        "validate, lock, check, audit, download, upload, verify and render, skipping "
        "what has not changed"
    )
    sync = _add(sub, "sync", commands.cmd_sync, help_text, [g.common, g.cache, g.output])
    _database(sync, "an offline OSV export for the audit (overrides policy.audit)")
    _jobs(sync, "targets locked and files uploaded at once")
    sync.add_argument(
        "--force", action="store_true", help="run every step even when its inputs are unchanged"
    )
    sync.add_argument(
        "--verify",
        action="store_true",
        help="with a remote registry: prove from its index that it still holds every locked "
        "file, and publish again what it lacks",
    )


def register_osv_serve(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
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
    serve.set_defaults(handler=lambda a: commands.cmd_osv_serve(Path(a.database), a.port))


def register_osv_sync(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    sync = sub.add_parser(
        "osv-sync",
        help="merge OSV sources (advisory-database and malicious-packages clones, all.zip "
        "files or URLs) into one export folder, with its fetch time",
    )
    sync.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="a folder of OSV records (a clone), an all.zip file, or an http(s) URL of one",
    )
    sync.add_argument(
        "--output", required=True, metavar="DIR", help="the export folder, replaced whole"
    )
    sync.add_argument(
        "--format",
        choices=[f.value for f in Format],
        default="text",
        help="output format (default: text)",
    )
    sync.set_defaults(
        handler=lambda a: commands.cmd_osv_sync(a.sources, Path(a.output), Format(a.format))
    )


def register_schema(sub: Subparsers[argparse.ArgumentParser], g: _Groups) -> None:
    schema = sub.add_parser("schema", help="print or write the JSON Schemas of the allowlist files")
    schema.add_argument(
        "name", nargs="?", choices=list(FILES), help="print the schema of this file kind"
    )
    group = schema.add_mutually_exclusive_group()
    group.add_argument("--output", dest="out", metavar="DIR", help="write every schema into DIR")
    group.add_argument(
        "--check", metavar="DIR", help="exit 2 when the schemas in DIR are not current"
    )
    schema.set_defaults(
        handler=lambda a: commands.cmd_schema(
            a.name,
            Path(a.check) if a.check is not None else None,
            Path(a.out) if a.out is not None else None,
        )
    )


REGISTER = (
    register_validate,
    register_lock,
    register_audit,
    register_files,
    register_bundle,
    register_pip_conf,
    register_outdated,
    register_bump,
    register_review,
    register_sync,
    register_osv_serve,
    register_osv_sync,
    register_schema,
)


def build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipgate",
        description="Keep a private Python package registry holding exactly what was approved.",
        epilog="exit codes: 0 ok, 1 policy said no, 2 bad input or usage, "
        "3 an external tool or service failed, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"pipgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = _Groups()
    for register in REGISTER:
        register(sub, groups)
    return parser
