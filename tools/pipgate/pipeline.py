"""The pipeline: validate → lock → check → audit → publish → render, and each step alone.

Every function here runs from the frozen ``Options`` and the adapters it is
handed (``Adapters``: a locker, a downloader, an auditor, a registry) and
returns a typed report; none parses arguments, prints a report or builds an
adapter. A verdict ("policy said no") is raised as the step's error with the
step's report attached, so the presenter can show what was found. ``sync``
runs the steps in order, skips those whose inputs are unchanged
(``sync.State``), records each success at once (a failed or killed run
resumes where it stopped) and stops at the first failure with its exit code.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import enum
import functools
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from pipgate import bump, history, outdated, policy, pylock, render, review, sync
from pipgate.allowlist import (
    Allowlist,
    InvalidAllowlistError,
    RegistryKind,
    Target,
    VulnerabilityException,
    load,
)
from pipgate.audit import (
    Auditor,
    FindingsError,
    Source,
    TargetAudit,
    audit_target,
    stale_exceptions,
)
from pipgate.bundle import default_path, write_bundle
from pipgate.download import Downloader, DownloadReport, FileCache
from pipgate.errors import ExitCode, ExternalError, InputError, PipgateError, PolicyError
from pipgate.fsutil import write_atomic
from pipgate.http import TRAFFIC
from pipgate.index import Source as IndexSource
from pipgate.lock import (
    Lock,
    LockedPackage,
    Locker,
    Outcome,
    describe_sources,
    inputs_digest,
    lock_path,
    lock_target,
    read_lock,
)
from pipgate.names import NormalizedName, file_release, normalize, parse_version
from pipgate.options import Options
from pipgate.problems import display_path
from pipgate.publish import PublishReport, publish
from pipgate.registry import Held, Registry, RegistryError, Removal
from pipgate.urls import has_credentials

Progress = Callable[[str], None]
Step = Callable[["Options", Allowlist, "Adapters", Sequence[Target], Progress | None], object]
"""Every step of the pipeline has this shape, so a command is one call of one step."""


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@dataclasses.dataclass(frozen=True)
class Adapters:
    """The ports' backends, made at the edge (``pipgate.cli.adapters``) and handed in."""

    locker: Locker
    downloader: Downloader
    cache: FileCache
    registry: Callable[[], Registry]
    """Made on first use, once: many commands never need the registry."""
    auditor: Callable[[], AbstractContextManager[Auditor]]
    """Opened for the audit only (an offline export is served for that long)."""


# -- the reports ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LockResult:
    target: Target
    outcome: Outcome
    seconds: float

    @property
    def status(self) -> str:
        if self.outcome.skipped:
            return "unchanged"
        return "written" if self.outcome.changed else "same"


@dataclasses.dataclass(frozen=True)
class LockReport:
    results: tuple[LockResult, ...]
    index_bytes: int


@dataclasses.dataclass(frozen=True)
class CheckReport:
    targets: tuple[Target, ...]
    findings: tuple[policy.Finding, ...]
    locked: int
    """Locked packages over every target, as checked."""

    @property
    def errors(self) -> tuple[policy.Finding, ...]:
        return tuple(f for f in self.findings if f.severity is policy.Severity.ERROR)

    @property
    def summary(self) -> str:
        errors = len(self.errors)
        warnings = len(self.findings) - errors
        return (
            f"{errors} polic{'y' if errors == 1 else 'ies'} broken, "
            f"{warnings} warning{'s' if warnings != 1 else ''} "
            f"({self.locked} locked packages in {', '.join(t.name for t in self.targets)})"
        )


@dataclasses.dataclass(frozen=True)
class AuditReport:
    source: Source
    results: tuple[TargetAudit, ...]
    stale: tuple[VulnerabilityException, ...]

    @property
    def failing(self) -> tuple[TargetAudit, ...]:
        return tuple(r for r in self.results if r.unaccepted)


@dataclasses.dataclass(frozen=True)
class Fetched:
    """One target's lock and its files in the cache."""

    target: Target
    lock: Lock
    report: DownloadReport


@dataclasses.dataclass(frozen=True)
class DownloadSummary:
    downloads: tuple[DownloadReport, ...]
    index_bytes: int


@dataclasses.dataclass(frozen=True)
class UploadReport:
    registry: str
    downloads: tuple[DownloadReport, ...]
    publish: PublishReport
    index_bytes: int


@dataclasses.dataclass(frozen=True)
class Drift:
    """One way the registry differs from what the locks need."""

    kind: str
    """``missing`` (a locked file it lacks), ``conflict`` (a locked file's name with another
    hash) or ``extra`` (a file no current lock needs)."""
    package: NormalizedName
    filename: str
    """The file's name; for a missing file never fetched here, ``name==version``."""
    sha256: str
    targets: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    registry: str
    locked: int
    """Distinct locked files over every target."""
    held: int
    drift: tuple[Drift, ...]

    def of(self, kind: str) -> tuple[Drift, ...]:
        return tuple(d for d in self.drift if d.kind == kind)

    @property
    def in_step(self) -> bool:
        return not self.drift


class DriftError(PolicyError):
    """The registry is not what the locks need (exit 1)."""


@dataclasses.dataclass(frozen=True)
class RenderReport:
    dry_run: bool
    written: tuple[render.Written, ...]
    uncached: tuple[tuple[str, int], ...] = ()
    """In a dry run: (target, files missing from the cache), whose files were not rendered."""
    unpublished: tuple[tuple[str, int], ...] = ()
    """(target, locked files the registry does not hold): no pylock.toml for it yet."""
    removed: tuple[Path, ...] = ()
    """pylock.toml files removed (or, in a dry run, that would be) as no longer true."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    target: Target
    path: Path
    files: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class BundleReport:
    bundles: tuple[Bundle, ...]


@dataclasses.dataclass(frozen=True)
class ReviewReport:
    review: review.Review
    markdown: str


class StepStatus(enum.Enum):
    RAN = "ran"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class StepResult:
    step: str
    status: StepStatus
    seconds: float
    produced: object | None = None
    """The step's own report (a LockReport, CheckReport, ...) when it ran."""
    error: PipgateError | None = None


@dataclasses.dataclass(frozen=True)
class SyncReport:
    steps: tuple[StepResult, ...]
    seconds: float

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.status is StepStatus.FAILED), None)

    @property
    def exit_code(self) -> ExitCode:
        failed = self.failed
        if failed is None or failed.error is None:
            return ExitCode.OK
        return failed.error.exit_code


# -- helpers --------------------------------------------------------------------------------------


def select_targets(allowlist: Allowlist, names: Sequence[str]) -> tuple[Target, ...]:
    if not names:
        return tuple(allowlist.config.targets)
    known = {t.name: t for t in allowlist.config.targets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(
            f"unknown target {', '.join(unknown)}", hint=f"config.yaml defines {', '.join(known)}"
        )
    return tuple(known[n] for n in names)


def current_lock(allowlist: Allowlist, target: Target, output: Path | None) -> Lock:
    path = lock_path(allowlist, target, output)
    lock = read_lock(path, target.name)
    if lock is None:
        raise InputError(
            f"no lock for target {target.name} at {display_path(path)}",
            hint="run 'pipgate lock' first",
        )
    return lock


def upstream_sources(locker: Locker, targets: Sequence[Target]) -> list[IndexSource]:
    """Where the targets' packages come from: the upstream, or pip's own configuration."""
    return list(dict.fromkeys(s for t in targets for s in locker.sources(t)))


def memoized(factory: Callable[[], Registry]) -> Callable[[], Registry]:
    """``factory`` called once, on first use."""
    return functools.cache(factory)


# -- the steps ------------------------------------------------------------------------------------


def lock(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> LockReport:

    def one(target: Target) -> LockResult:
        started = time.monotonic()
        outcome = lock_target(
            allowlist,
            target,
            adapters.locker,
            upgrade=options.upgrade,
            output=options.output,
            command="pipgate lock",  # the same for every run, so equal pins give equal files
            progress=progress,
        )
        return LockResult(target, outcome, time.monotonic() - started)

    # Targets lock at once (each its own resolver process and lock file); the first
    # failure, in the targets' order, is the step's.
    workers = max(1, min(options.jobs, len(targets)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, targets))
    return LockReport(tuple(results), TRAFFIC.bytes)


def check(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> CheckReport:
    """The supply-chain policy on every lock; raises PolicyFailedError when it says no."""
    locks = {t.name: (t, current_lock(allowlist, t, options.output)) for t in targets}
    sources = upstream_sources(adapters.locker, targets)
    _say(progress, f"check: reading the upstream at {describe_sources(sources)}")
    context = policy.make_context(
        allowlist, locks, sources, adapters.cache, adapters.registry, progress=progress
    )
    report = CheckReport(
        tuple(targets),
        tuple(policy.run_checks(context)),
        sum(len(lock.packages) for _, lock in locks.values()),
    )
    if report.errors:
        raise policy.PolicyFailedError(
            report.summary,
            hint="each finding above says what to change in which file",
            report=report,
        )
    return report


def audit(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> AuditReport:
    """pip-audit on every lock; raises FindingsError for unaccepted vulnerabilities."""
    results = []
    with adapters.auditor() as auditor:
        source = auditor.source
        _say(progress, f"audit: vulnerability data from {source.summary()}")
        for target in targets:
            results.append(audit_target(allowlist, target, auditor, options.output))
    report = AuditReport(source, tuple(results), tuple(stale_exceptions(allowlist, results)))
    malicious = sorted(
        {
            f"{f.package}=={f.version}"
            for r in results
            for f in r.findings
            if f.vulnerability.malicious
        }
    )
    if malicious:
        raise FindingsError(
            f"known malicious release{'s' if len(malicious) > 1 else ''} in the lock: "
            f"{', '.join(malicious)}; remove {'them' if len(malicious) > 1 else 'it'}",
            hint="a release reported malicious (OSV MAL-) has no fix and no exception accepts "
            "it: remove its entry, or the entry that pulls it in, and treat any machine that "
            "installed it as compromised",
            report=report,
        )
    if report.failing:
        count = sum(len(r.unaccepted) for r in report.failing)
        raise FindingsError(
            f"{count} known vulnerabilit{'y' if count == 1 else 'ies'} not accepted",
            hint="upgrade the package to a fixed version, or have security accept it in "
            "allowlist/exceptions.yaml with a reason and an expiry",
            report=report,
        )
    return report


def fetch(
    options: Options,
    allowlist: Allowlist,
    downloader: Downloader,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> list[Fetched]:
    """Each target's lock and its files in the cache (fetched where the cache lacks them)."""
    out = []
    for target in targets:
        current = current_lock(allowlist, target, options.output)
        out.append(
            Fetched(target, current, downloader.download(target, current, progress=progress))
        )
    return out


def download(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> DownloadSummary:
    fetched = fetch(options, allowlist, adapters.downloader, targets, progress)
    return DownloadSummary(tuple(f.report for f in fetched), TRAFFIC.bytes)


def upload(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> UploadReport:
    """Download, upload what the registry lacks, verify every locked file by hash."""
    registry = adapters.registry()
    registry.check_usable()  # before a byte is fetched or sent
    downloads = [
        f.report for f in fetch(options, allowlist, adapters.downloader, targets, progress)
    ]
    report = publish(
        registry,
        [f for r in downloads for f in r.files],
        workers=options.jobs,
        backoff=options.retry_backoff,
        progress=progress,
    )
    return UploadReport(registry.describe(), tuple(downloads), report, TRAFFIC.bytes)


def manifests(
    options: Options,
    allowlist: Allowlist,
    downloader: Downloader,
    targets: Sequence[Target],
    *,
    only: Sequence[NormalizedName] | None = None,
    progress: Progress | None = None,
) -> list[render.Manifest]:
    """Each target's files (downloaded where the cache lacks them), in install order."""
    return [
        render.build_manifest(allowlist, f.target, f.lock, f.report.files, only=only)
        for f in fetch(options, allowlist, downloader, targets, progress)
    ]


def render_files(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> RenderReport:
    """pip.conf, uv.toml and each target's install order, offline installers and, once its
    files are on the registry, pylock.toml. A dry run writes and fetches nothing: a target
    whose files are not all cached is reported, as is one whose files are not published."""
    folder = render.output_folder(allowlist, options.output)
    consumers = render.consumer_folder(allowlist, options.output)
    registry = allowlist.config.registry
    if registry.kind is RegistryKind.ARTIFACT_REGISTRY:
        adapters.registry().check_usable()  # consumers are never pointed at a remote one
    files = {
        consumers / render.PIP_CONF: render.render_pip_conf(registry),
        consumers / render.UV_TOML: render.render_uv_toml(registry),
    }
    uncached = []
    ready = []
    for target in targets:
        current = current_lock(allowlist, target, options.output)
        found = adapters.downloader.download(
            target, current, progress=progress, fetch=not options.dry_run
        )
        if found.missing:
            uncached.append((target.name, found.missing))
            continue
        manifest = render.build_manifest(allowlist, target, current, found.files)
        for name, text in render.target_files(manifest).items():
            files[folder / target.name / name] = text
        ready.append((current, manifest, {f.sha256: f.size for f in found.files}))
    unpublished = []
    removed = []
    if ready:
        _say(progress, "render: listing the locked files the registry holds, for pylock.toml")
        listed = _registry_files(allowlist, adapters, [lock_ for lock_, _, _ in ready])
        for lock_, manifest, sizes in ready:
            path = folder / manifest.target.name / pylock.PYLOCK
            missing = [d for p in lock_.packages for d in p.hashes if d not in listed]
            if missing:
                # Not on the registry yet (rendered before publishing): no pylock.toml can
                # name them there; one already written is of another lock, or of files
                # the registry no longer holds, and goes.
                unpublished.append((manifest.target.name, len(missing)))
                if path.is_file():
                    removed.append(path)
                    if not options.dry_run:
                        path.unlink()
                continue
            found_files = _pylock_files(
                allowlist, lock_, manifest.target, listed=listed, sizes=sizes, path=path
            )
            files[path] = _render_pylock(allowlist, lock_, manifest, found_files)
    written = render.write(files, dry_run=options.dry_run)
    return RenderReport(
        options.dry_run, tuple(written), tuple(uncached), tuple(unpublished), tuple(removed)
    )


def _registry_files(
    allowlist: Allowlist, adapters: Adapters, locks: Sequence[Lock]
) -> dict[str, tuple[Held, str | None]]:
    """Each locked file the private registry holds, by sha256, with its upload time, and
    its URL as consumers reach it."""
    registry = adapters.registry()
    projects = sorted({p.name for lock_ in locks for p in lock_.packages})
    held = registry.list(projects)
    times = registry.upload_times(projects) if held else {}
    consumer = allowlist.config.registry.simple_url
    return {
        h.sha256: (
            dataclasses.replace(h, url=_as_consumer_url(h.url, registry.simple_url, consumer)),
            times.get(h.filename) or h.upload_time,
        )
        for h in held.values()
    }


def _as_consumer_url(url: str, listed_from: str, consumer: str) -> str:
    """A file's URL from the registry's own page as consumers reach it: the page may be
    read at another address than the one consumers use (an API endpoint override)."""
    got, base, want = (urllib.parse.urlsplit(u) for u in (url, listed_from, consumer))
    if (got.scheme, got.netloc) != (base.scheme, base.netloc):
        return url
    return urllib.parse.urlunsplit((want.scheme, want.netloc, got.path, got.query, ""))


def _pylock_files(
    allowlist: Allowlist,
    current: Lock,
    target: Target,
    *,
    listed: Mapping[str, tuple[Held, str | None]],
    sizes: Mapping[str, int],
    path: Path,
) -> dict[str, pylock.RegistryFile]:
    """Each locked file as the registry serves it, by sha256: a file of the embedded
    registry by its path (relative to the lock's folder for a relative registry)."""
    spec = allowlist.config.registry
    files: dict[str, pylock.RegistryFile] = {}
    for package in current.packages:
        for digest in package.hashes:
            found = listed.get(digest)
            if found is None:
                raise render.RenderError(
                    f"the registry holds no file of {package.name}=={package.version} with "
                    f"sha256 {digest}, which the lock of {target.name} needs",
                    hint="publish first: 'pipgate upload' (or 'pipgate sync')",
                )
            held, uploaded = found
            if spec.kind is RegistryKind.FILE:
                assert spec.path is not None
                place = pylock.relative_path(
                    spec.path / "files" / held.filename,
                    path.parent,
                    absolute=not spec.in_each_clone,
                )
                item = pylock.RegistryFile(held.filename, digest, sizes[digest], path=place)
            else:
                if has_credentials(held.url) or not held.url.startswith(("https://", "http://")):
                    raise render.RenderError(
                        f"the registry lists {held.filename} at a URL that holds credentials "
                        "or is not http(s); it is not written into pylock.toml",
                        hint="the registry must serve its files at plain URLs of its own",
                    )
                item = pylock.RegistryFile(
                    held.filename, digest, sizes[digest], url=held.url, upload_time=uploaded
                )
            files[digest] = item
    return files


def _render_pylock(
    allowlist: Allowlist,
    current: Lock,
    manifest: render.Manifest,
    files: Mapping[str, pylock.RegistryFile],
) -> str:
    spec = allowlist.config.registry
    # An embedded registry at a relative path is each clone's own folder: its files are
    # named by their path from the lock, and no index is recorded (it would name one
    # machine's folder). At an absolute path (a shared folder) its index is recorded.
    index_url = None if spec.in_each_clone else render.consumer_index_url(spec)
    inputs = render.digest_of(
        [
            "pylock.toml",
            manifest.target.name,
            current.digest,
            index_url,
            sorted(dataclasses.astuple(f) for f in files.values()),
        ]
    )
    return pylock.render_pylock(manifest.target, current, files, index_url=index_url, inputs=inputs)


def outdated_entries(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> outdated.OutdatedReport:
    """Each entry's newest passing release and newest release (a report: it judges nothing)."""
    del targets  # an entry is judged for every target it serves
    names = _entry_names(allowlist, options.names)
    sources = upstream_sources(adapters.locker, allowlist.config.targets)
    _say(progress, f"outdated: reading the upstream at {describe_sources(sources)}")
    with adapters.auditor() as auditor:
        return outdated.outdated(
            allowlist, sources, auditor, names=names or None, progress=progress
        )


def _entry_names(allowlist: Allowlist, asked: Sequence[str]) -> list[NormalizedName]:
    known = {e.name for e in allowlist.packages}
    names = [normalize(n) for n in asked]
    unknown = [a for a, n in zip(asked, names, strict=True) if n not in known]
    if unknown:
        raise InputError(
            f"no allowlist entry named {', '.join(repr(u[:80]) for u in unknown)}",
            hint="'pipgate outdated' lists the entries; add a new package with an entry "
            "in a pull request instead",
        )
    return names


def bump_entries(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> bump.BumpReport:
    """New versions written into the entries' YAML; the allowlist validated after."""
    del targets  # an entry is bumped for every target it serves
    names = _entry_names(allowlist, options.names)
    if bool(names) == (options.every or options.only_security):
        raise InputError(
            "name the entries to bump, or give --all or --only-security (not both)",
            hint="pipgate bump NAME [VERSION], pipgate bump --all, pipgate bump --only-security",
        )
    if options.version is not None:
        if len(names) != 1:
            raise InputError("a VERSION goes with exactly one NAME")
        parsed = parse_version(options.version)
        if parsed is None:
            raise InputError(f"{options.version[:80]!r} is not a version (PEP 440)")
        wanted: dict[NormalizedName, str] = {names[0]: str(parsed)}
        skipped: list[tuple[NormalizedName, str]] = []
    else:
        wanted, skipped = _passing_versions(options, allowlist, adapters, names, progress)
    plan: dict[Path, dict[NormalizedName, tuple[str, str]]] = {}
    for entry in allowlist.packages:
        new = wanted.get(entry.name)
        if new is not None and new != entry.version:
            plan.setdefault(entry.location.path, {})[entry.name] = (entry.version, new)
    saved = bump.originals(plan)
    try:
        edits = bump.apply(plan)
        load(options.allowlist, expired_is_error=False)
    except (bump.BumpError, InvalidAllowlistError):
        bump.restore(saved)  # every file as it was, the ones written before the failure too
        raise
    return bump.BumpReport(tuple(edits), tuple(skipped))


def _passing_versions(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    names: Sequence[NormalizedName],
    progress: Progress | None,
) -> tuple[dict[NormalizedName, str], list[tuple[NormalizedName, str]]]:
    """The newest passing release of each entry asked for, and the entries skipped (with
    --all or --only-security) with why; a named entry with none is a PolicyError."""
    report = outdated_entries(
        dataclasses.replace(options, names=tuple(names)), allowlist, adapters, (), progress
    )
    wanted: dict[NormalizedName, str] = {}
    skipped: list[tuple[NormalizedName, str]] = []
    refused = []
    for status in report.entries:
        if options.only_security and not status.security_fix:
            continue
        if status.passing is None:
            why = "; ".join(status.newest.refused) if status.newest else "no newer release"
            if names:
                refused.append(f"{status.entry.spelled}: {why}")
            else:
                skipped.append((status.entry.name, why))
            continue
        wanted[status.entry.name] = str(status.passing.version)
    if refused:
        raise PolicyError(
            "no newer release passes the policy: " + "; ".join(refused),
            hint="'pipgate outdated' shows each release and what refuses it; a VERSION "
            "given by hand is written as it is, and the lock's check judges it",
        )
    return wanted, skipped


def bundle(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> BundleReport:
    """Each target's files with install order and installer, or only the bootstrap set."""
    only = None
    if options.bootstrap:
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
    if options.bundle_out and len(targets) > 1:
        raise InputError("--output names one bundle; choose one --target")
    bundles = []
    for manifest in manifests(
        options, allowlist, adapters.downloader, targets, only=only, progress=progress
    ):
        target = manifest.target
        out = options.bundle_out or default_path(
            allowlist.root, manifest, bootstrap=options.bootstrap
        )
        flag = " --bootstrap" if options.bootstrap else ""
        write_bundle(manifest, out, f"pipgate bundle{flag} --target {target.name}")
        bundles.append(
            Bundle(target, out, len(manifest.files), sum(f.size for f in manifest.files))
        )
    return BundleReport(tuple(bundles))


def verify(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> VerifyReport:
    """What the registry holds against what every lock needs, from its own index:
    missing, conflicting and extra files. Raises DriftError when they differ."""
    report = drift(options, allowlist, adapters, targets, progress)
    if not report.in_step:
        counts = ", ".join(
            f"{len(report.of(kind))} {kind}" for kind in ("missing", "conflict", "extra")
        )
        raise DriftError(
            f"the registry is not what the locks need: {counts}",
            hint="'pipgate sync --verify' uploads what is missing; a conflict is fixed by "
            "hand; 'extra' files are those no current lock needs",
            report=report,
        )
    return report


def drift(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> VerifyReport:
    """The comparison ``verify`` judges: every project the registry holds, listed."""
    locks = {t.name: current_lock(allowlist, t, options.output) for t in targets}
    wanted: dict[str, tuple[LockedPackage, list[str]]] = {}
    for name, lock_ in locks.items():
        for package in lock_.packages:
            for digest in package.hashes:
                wanted.setdefault(digest, (package, []))[1].append(name)
    registry = adapters.registry()
    _say(progress, f"verify: listing what {registry.describe()} holds")
    held = registry.inventory({p.name for p, _ in wanted.values()})
    by_hash = {h.sha256: h for h in held.values()}
    found: list[Drift] = []
    locked_names: dict[str, str] = {}
    for digest, (package, names) in sorted(wanted.items()):
        cached = adapters.cache.get(digest)
        if cached is not None:
            locked_names[cached.name] = digest
        if digest not in by_hash:
            shown = cached.name if cached is not None else f"{package.name}=={package.version}"
            found.append(Drift("missing", package.name, shown, digest, tuple(sorted(names))))
    for filename, item in sorted(held.items()):
        if item.sha256 in wanted:
            continue
        release = file_release(filename)
        project = release[0] if release else NormalizedName(filename)
        kind = "conflict" if filename in locked_names else "extra"
        found.append(Drift(kind, project, filename, item.sha256))
    found.sort(key=lambda d: (d.kind, d.filename))
    return VerifyReport(registry.describe(), len(wanted), len(held), tuple(found))


@dataclasses.dataclass(frozen=True)
class PruneItem:
    """A file the registry holds that no current lock needs, and what prune does with it."""

    action: str
    """``remove`` (removed, or would be in a dry run), ``retain`` (a lock of a recent commit
    needs it) or ``keep`` (the registry deletes whole releases, and another file of this one
    is needed)."""
    package: NormalizedName
    filename: str
    sha256: str
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class PruneReport:
    registry: str
    applied: bool
    removal: str
    """What one deletion removes there: ``file``, ``release`` or ``none``."""
    commits: int
    """Commits of generated/ whose locks were kept."""
    held: int
    items: tuple[PruneItem, ...]

    def of(self, action: str) -> tuple[PruneItem, ...]:
        return tuple(i for i in self.items if i.action == action)


def prune(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    targets: Sequence[Target],
    progress: Progress | None = None,
) -> PruneReport:
    """Remove from the registry the files no lock needs, now or in the last
    ``options.keep_commits`` commits of generated/ (a rollback keeps working). Only with
    ``options.apply``; else says what would go."""
    every = tuple(allowlist.config.targets)  # never only some: a file may serve another target
    needed: dict[str, str] = {}
    for target in every:
        for package in current_lock(allowlist, target, options.output).packages:
            for digest in package.hashes:
                needed.setdefault(digest, f"the current lock of {target.name}")
    generated = render.output_folder(allowlist, options.output)
    retained = history.recent_locks(generated, options.keep_commits)
    registry = adapters.registry()
    _say(progress, f"prune: listing what {registry.describe()} holds")
    held = registry.inventory()
    items, removals = _prune_plan(held, needed, retained.hashes, registry.removal)
    if options.apply and removals:
        if registry.removal is Removal.NONE:
            registry.remove(removals[0])  # raises: says the registry cannot and how to by hand
        for number, files in enumerate(removals, 1):
            names = ", ".join(h.filename for h in files)
            _say(progress, f"prune: removing {number}/{len(removals)}: {names}")
            registry.remove(files)
        # What the registry says it did is not taken on trust: it is listed again.
        after = registry.inventory()
        still = sorted(h.filename for files in removals for h in files if h.filename in after)
        if still:
            raise RegistryError(
                f"the registry accepted the deletion but still holds {', '.join(still[:5])}"
                + (f" and {len(still) - 5} more" if len(still) > 5 else ""),
                hint=registry.removal_hint,
            )
    return PruneReport(
        registry.describe(),
        options.apply,
        registry.removal.value,
        len(retained.commits),
        len(held),
        tuple(items),
    )


def _prune_plan(
    held: dict[str, Held], needed: dict[str, str], retained: dict[str, str], removal: Removal
) -> tuple[list[PruneItem], list[list[Held]]]:
    """What prune does with each file no current lock needs, and the deletions to make."""
    by_release: dict[tuple[str, str], list[Held]] = {}
    for item in held.values():
        release = file_release(item.filename)
        key = (str(release[0]), str(release[1])) if release else (item.filename, "")
        by_release.setdefault(key, []).append(item)
    items: list[PruneItem] = []
    removals: list[list[Held]] = []
    whole = removal is Removal.RELEASE
    for (project, _version), files in sorted(by_release.items()):
        unneeded = [h for h in files if h.sha256 not in needed]
        going = [h for h in unneeded if h.sha256 not in retained]
        for h in unneeded:
            if h.sha256 in retained:
                items.append(
                    PruneItem(
                        "retain",
                        NormalizedName(project),
                        h.filename,
                        h.sha256,
                        f"in {retained[h.sha256]}",
                    )
                )
        if whole and going and len(going) < len(files):
            # One deletion takes the whole release: never while another file of it is needed.
            for h in going:
                items.append(
                    PruneItem(
                        "keep",
                        NormalizedName(project),
                        h.filename,
                        h.sha256,
                        "the registry deletes whole releases, and other files of this one "
                        "are still needed",
                    )
                )
            continue
        if going:
            removals.append(going)
            items.extend(
                PruneItem("remove", NormalizedName(project), h.filename, h.sha256) for h in going
            )
    return items, removals


def review_change(options: Options, head: Allowlist, adapters: Adapters) -> ReviewReport:
    """The review report since ``options.base``, whatever the locks say: a lock that cannot
    be made is part of the report (its problems at their entries), and everything else is
    still determined. Raises, with the report, when it says no: exit 3 when a service could
    not answer, 2 for invalid allowlist input, 1 when the policy refused."""
    assert options.base is not None
    targets = list(head.config.targets)
    head_locks: dict[str, Lock] = {}
    lock_files: dict[str, Path] = {}
    failures: list[review.LockFailure] = []
    with tempfile.TemporaryDirectory(prefix="pipgate-review-") as scratch:
        for target in targets:
            path = lock_path(head, target, options.output)
            current = read_lock(path, target.name)
            if current is not None and current.digest == inputs_digest(head, target):
                head_locks[target.name], lock_files[target.name] = current, path
                continue
            # No current lock (a pull request's own lock step failed, or was not run): the
            # review locks it here, into scratch, leaving generated/ as it is.
            made, made_path, found = review.lock_for_review(
                head, target, adapters.locker, Path(scratch)
            )
            failures.extend(found)
            if made is not None:
                head_locks[target.name], lock_files[target.name] = made, made_path
        with adapters.auditor() as auditor:
            found_review = review.build(
                head,
                head_locks,
                base=options.base,
                sources=upstream_sources(adapters.locker, targets),
                cache=adapters.cache,
                auditor=auditor,
                registry=adapters.registry,
                lock_file=lambda target: lock_files[target.name],
                lock_failures=tuple(failures),
            )
    report = ReviewReport(found_review, review.render_markdown(found_review))
    if options.report is not None:
        write_atomic(options.report, report.markdown)
    if not found_review.ok:
        kinds = {f.kind for f in found_review.lock_failures}
        error: type[PipgateError] = policy.PolicyFailedError
        if review.FailureKind.TOOL in kinds:
            error = ExternalError
        elif review.FailureKind.INPUT in kinds:
            error = InputError
        raise error(
            f"review: {found_review.verdict()}",
            hint="the report above says what to change",
            report=report,
        )
    return report


# -- sync -----------------------------------------------------------------------------------------


def sync_all(
    options: Options,
    allowlist: Allowlist,
    adapters: Adapters,
    *,
    progress: Progress | None = None,
    announce: Progress | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> SyncReport:
    """Every step in order, skipping those whose inputs have not changed, stopping at the
    first failure. ``progress`` gets the steps' own progress, ``announce`` the sync's,
    ``on_step`` each step's result as it ends."""
    started_all = time.monotonic()
    targets = tuple(allowlist.config.targets)
    state = sync.State.load(render.output_folder(allowlist, options.output) / sync.STATE_NAME)
    database = str(options.database) if options.database else None
    step_options = dataclasses.replace(options, targets=(), upgrade=False, dry_run=False)
    remote = allowlist.config.registry.kind is not RegistryKind.FILE
    steps: list[tuple[str, Callable[[], object]]] = [
        ("lock", lambda: lock(step_options, allowlist, adapters, targets, progress)),
        ("check", lambda: check(step_options, allowlist, adapters, targets, progress)),
        ("audit", lambda: audit(step_options, allowlist, adapters, targets, progress)),
        ("publish", lambda: upload(step_options, allowlist, adapters, targets, progress)),
        ("render", lambda: render_files(step_options, allowlist, adapters, targets, progress)),
    ]
    results = [StepResult("validate", StepStatus.RAN, 0.0)]
    _say(
        announce,
        f"sync: validate: {len(allowlist.packages)} packages, targets "
        f"{', '.join(t.name for t in targets)}",
    )

    def inputs_of(name: str) -> str:
        return sync.step_inputs(name, allowlist, targets, options.output, database=database)

    for name, run_step in steps:
        inputs = None
        if name != "lock":  # the lock has its own inputs digest, in its header
            inputs = inputs_of(name)
            done = not options.force and state.is_done(name, inputs)
            if done and name == "publish" and options.verify and remote:
                # Published for these locks before; asked to prove the registry still
                # holds them (emptied, replaced, a file deleted by hand).
                _say(announce, "sync: verify")
                found = drift(step_options, allowlist, adapters, targets, progress)
                results.append(StepResult("verify", StepStatus.RAN, 0.0, found))
                if on_step is not None:
                    on_step(results[-1])
                done = not (found.of("missing") or found.of("conflict"))
            if done:
                results.append(StepResult(name, StepStatus.SKIPPED, 0.0))
                _say(announce, f"sync: {name}: skipped, inputs unchanged")
                continue
        _say(announce, f"sync: {name}")
        started = time.monotonic()
        try:
            produced = run_step()
        except PipgateError as error:
            failed = StepResult(name, StepStatus.FAILED, time.monotonic() - started, error=error)
            results.append(failed)
            if on_step is not None:
                on_step(failed)
            break
        result = StepResult(name, StepStatus.RAN, time.monotonic() - started, produced)
        results.append(result)
        if on_step is not None:
            on_step(result)
        if inputs is not None:
            # Recomputed after the step: publishing changes what the embedded registry's
            # folder holds, and rendering makes its files, both inputs of those steps.
            state.record(name, inputs_of(name))
    return SyncReport(tuple(results), time.monotonic() - started_all)
