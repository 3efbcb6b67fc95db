"""Load and validate an allowlist folder, reporting every problem in one run."""

from __future__ import annotations

import dataclasses
import datetime
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from pipgate.allowlist import spec
from pipgate.allowlist.model import (
    Allowlist,
    AuditPolicy,
    AuditService,
    Bootstrap,
    Config,
    PackageEntry,
    Policy,
    RegistryKind,
    RegistrySpec,
    SdistPolicy,
    Signals,
    Target,
    TransitivePolicy,
    VulnerabilityException,
)
from pipgate.allowlist.reader import Record, Value, read_map
from pipgate.bounds import MIB, Limits
from pipgate.errors import InputError
from pipgate.markdown import HIDDEN
from pipgate.names import (
    ExactVersion,
    NormalizedName,
    PythonVersion,
    check_exact_version,
    check_name,
    check_platform_tag,
    check_python_version,
    normalize,
)
from pipgate.problems import Location, Problem, Problems
from pipgate.urls import has_credentials, origin, redact_url, split
from pipgate.yamlsafe import read

CONFIG_FILE = "config.yaml"
EXCEPTIONS_FILE = "exceptions.yaml"
RESERVED = (CONFIG_FILE, EXCEPTIONS_FILE)

_AR_LOCATION = re.compile(r"^[a-z]+(?:-[a-z]+[0-9]+)?$")
_AR_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_AR_REPOSITORY = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidAllowlistError(InputError):
    """The allowlist has problems; all of them are in ``problems``."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        count = len(problems)
        super().__init__(
            f"the allowlist has {count} problem{'s' if count != 1 else ''}",
            hint="fix each one at the file and line shown, then run 'pipgate validate' again",
        )
        self.problems = tuple(problems)


def load(
    directory: Path, *, today: datetime.date | None = None, expired_is_error: bool = True
) -> Allowlist:
    """Load every file of the allowlist in ``directory``.

    An expired vulnerability exception is a problem for ``validate``; the audit
    loads it with ``expired_is_error=False`` so that it can report the finding
    the exception no longer covers, and that it expired.

    Raises ``InputError`` when the folder is missing and ``InvalidAllowlistError``
    with every problem found when any file is wrong.
    """
    if not directory.is_dir():
        raise InputError(
            f"allowlist folder not found: {directory}",
            hint="run pipgate from the repository root or pass --allowlist DIR",
        )
    today = today or datetime.date.today()
    problems = Problems()
    root = directory.resolve().parent

    config_path = directory / CONFIG_FILE
    config: Config | None = None
    if not config_path.is_file():
        problems.add(
            Location(config_path),
            "missing",
            "create it with registry, targets and policy (see the README)",
        )
    else:
        config = _load_config(config_path, root, problems)

    package_files = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix == ".yml":
            problems.add(
                Location(path),
                "package files must end in .yaml",
                f"rename it to {path.with_suffix('.yaml').name}",
            )
        elif path.suffix == ".yaml" and path.name not in RESERVED:
            package_files.append(path)

    packages: list[PackageEntry] = []
    named: list[_Named] = []
    for path in package_files:
        packages.extend(_load_packages(path, problems, named))
    if not package_files:
        problems.add(
            Location(directory),
            "no package files: the allowlist allows nothing",
            "add a file such as data.yaml with a 'packages:' list; an empty "
            "allowlist is an error, never 'allow everything'",
        )
    _check_duplicates(named, problems)
    if config is not None:
        _check_entry_targets(named, config, problems)

    exceptions: list[VulnerabilityException] = []
    exceptions_path = directory / EXCEPTIONS_FILE
    if exceptions_path.is_file():
        max_days = config.policy.max_exception_days if config is not None else 365
        exceptions = _load_exceptions(exceptions_path, today, problems, expired_is_error, max_days)

    if problems:
        raise InvalidAllowlistError(problems.sorted())
    assert config is not None
    return Allowlist(
        root=root,
        config=config,
        packages=tuple(packages),
        exceptions=tuple(exceptions),
        package_files=tuple(package_files),
    )


def _document(path: Path, file_spec: spec.MapSpec, problems: Problems) -> Record | None:
    document = read(path)
    problems.extend(document.problems)
    if document.root is None or document.problems:
        return None
    return read_map(file_spec, document.root, problems, where=path.name)


def _records(record: Record, key: str) -> list[Record]:
    found = record.values.get(key)
    if found is None or not isinstance(found.value, list):
        return []
    # Incomplete records are returned too: their valid keys are still checked.
    return [item for item in found.value if isinstance(item, Record)]


def _texts(record: Record, key: str) -> list[Value]:
    found = record.values.get(key)
    if found is None or not isinstance(found.value, list):
        return []
    return [v for v in found.value if isinstance(v, Value)]


# -- config.yaml -------------------------------------------------------------------------------


def _load_config(path: Path, root: Path, problems: Problems) -> Config | None:
    before = len(problems)
    record = _document(path, spec.CONFIG, problems)
    if record is None:
        return None
    registry = _registry(record, root, problems)
    upstream = _upstream(record, problems)
    targets = _targets(record, problems)
    policy = _policy(record, root, problems)
    bootstrap = _bootstrap(record, path.parent, targets, problems)
    file_hosts = _file_hosts(record, problems)
    limits = _limits(record)
    engine = "pip-tools"
    found = record.values.get("lock")
    if found is not None and isinstance(found.value, Record):
        engine = found.value.text("engine") or engine
    if len(problems) > before or registry is None or not record.complete:
        return None
    return Config(
        path=path,
        registry=registry,
        upstream=upstream,
        targets=tuple(targets),
        policy=policy,
        bootstrap=bootstrap,
        upstream_file_hosts=file_hosts,
        limits=limits,
        lock_engine=engine,
    )


def _file_hosts(record: Record, problems: Problems) -> tuple[str, ...]:
    hosts = []
    for value in _texts(record, "upstream_file_hosts"):
        text = str(value.value)
        found = origin(text)
        parts = split(text)
        if not found or parts is None or parts.path not in ("", "/") or has_credentials(text):
            problems.add(
                value.location,
                f"'{redact_url(text)}' is not an origin",
                "write the scheme and host only, such as https://files.example.internal",
            )
            continue
        hosts.append(found)
    return tuple(hosts)


def _limits(record: Record) -> Limits:
    found = record.values.get("limits")
    if found is None or not isinstance(found.value, Record):
        return Limits()
    item = found.value
    defaults = Limits()

    def number(key: str) -> int | None:
        value = item.values.get(key)
        return value.value if value is not None and isinstance(value.value, int) else None

    page_mib, file_mib = number("page_mib"), number("file_mib")
    page_seconds, file_seconds = number("page_seconds"), number("file_seconds")
    return Limits(
        page_bytes=page_mib * MIB if page_mib else defaults.page_bytes,
        file_bytes=file_mib * MIB if file_mib else defaults.file_bytes,
        page_seconds=float(page_seconds) if page_seconds else defaults.page_seconds,
        file_seconds=float(file_seconds) if file_seconds else defaults.file_seconds,
    )


def _bootstrap(
    record: Record, folder: Path, targets: Sequence[Target], problems: Problems
) -> Bootstrap | None:
    found = record.values.get("bootstrap")
    if found is None or not isinstance(found.value, Record):
        return None
    item = found.value
    name = item.text("file")
    if name is None:
        return None
    ok = True
    if "/" in name or "\\" in name or name in RESERVED or not name.endswith(".yaml"):
        problems.add(
            item.where("file"),
            f"'{name}' is not a package file name",
            "name a file of allowlist/ such as bootstrap.yaml",
        )
        ok = False
    elif not (folder / name).is_file():
        problems.add(
            item.where("file"),
            f"the bootstrap file {name} does not exist in {folder.name}/",
            "create it with the keyring packages, or name an existing package file",
        )
        ok = False
    known = [t.name for t in targets]
    chosen = []
    for value in _texts(item, "targets"):
        if value.value not in known:
            problems.add(
                value.location,
                f"bootstrap names target '{value.value}', which config.yaml does not define",
                f"use one of {', '.join(known)}",
            )
            ok = False
        chosen.append(str(value.value))
    if not ok:
        return None
    return Bootstrap(file=name, targets=tuple(chosen), location=item.location)


def _registry(record: Record, root: Path, problems: Problems) -> RegistrySpec | None:
    found = record.values.get("registry")
    if found is not None and isinstance(found.value, Record):
        return _registry_long(found.value, problems)
    url = record.text("registry")
    if url is None:
        return None
    where = record.where("registry")
    shown = redact_url(url)
    if has_credentials(url):
        problems.add(
            where,
            f"the registry URL '{shown}' holds credentials",
            "remove them: pipgate reads credentials from the environment or "
            "keyring, never from files in the repository",
        )
        return None
    scheme, sep, rest = url.partition("://")
    if not sep:
        problems.add(
            where,
            f"'{shown}' is not a registry URL",
            "use file://DIR, https://HOST/PATH/ or artifact-registry://LOCATION/PROJECT/REPOSITORY",
        )
        return None
    if scheme == "file":
        if not rest or "\\" in rest:
            problems.add(
                where,
                f"'{shown}' names no folder",
                "write file://.registry (relative to the repository) or file:///abs/path",
            )
            return None
        folder = Path(urllib.parse.unquote(rest))
        folder = folder if folder.is_absolute() else root / folder
        return RegistrySpec(kind=RegistryKind.FILE, url=url, path=folder)
    if scheme in ("http", "https"):
        parts = split(url)
        if parts is None or not parts.hostname or parts.query or parts.fragment:
            problems.add(
                where,
                f"'{shown}' is not a usable index URL",
                "give the index root such as https://pypi.example.internal/ with no "
                "query or fragment",
            )
            return None
        return RegistrySpec(kind=RegistryKind.HTTP, url=url.rstrip("/") + "/")
    if scheme == "artifact-registry":
        found_names = _artifact_registry(rest, shown, where, problems)
        if found_names is None:
            return None
        location, project, repository = found_names
        return RegistrySpec(
            kind=RegistryKind.ARTIFACT_REGISTRY,
            url=url,
            location=location,
            project=project,
            repository=repository,
        )
    problems.add(
        where,
        f"unsupported registry scheme '{scheme}://'",
        "use file://, https:// or artifact-registry://",
    )
    return None


def _artifact_registry(
    rest: str, shown: str, where: Location, problems: Problems
) -> tuple[str, str, str] | None:
    """LOCATION, PROJECT and REPOSITORY of ``artifact-registry://REST``, each checked."""
    pieces = rest.strip("/").split("/")
    if len(pieces) != 3:
        problems.add(
            where,
            f"'{shown}' must name LOCATION/PROJECT/REPOSITORY",
            "write artifact-registry://europe-west1/my-project/python-approved",
        )
        return None
    location, project, repository = pieces
    wrong = [
        what
        for what, value, pattern in (
            ("location", location, _AR_LOCATION),
            ("project", project, _AR_PROJECT),
            ("repository", repository, _AR_REPOSITORY),
        )
        if not pattern.fullmatch(value)
    ]
    if wrong:
        problems.add(
            where,
            f"'{shown}' has an invalid {' and '.join(wrong)}",
            "use lower-case Google Cloud names, such as "
            "artifact-registry://europe-west1/my-project/python-approved",
        )
        return None
    return location, project, repository


def _registry_long(item: Record, problems: Problems) -> RegistrySpec | None:
    """``registry: {upload: URL, simple: URL}``: an http(s) registry whose two differ."""
    urls: dict[str, str] = {}
    for key in ("upload", "simple"):
        url = item.text(key)
        if url is None and key == "simple" and "upload" in urls:
            urls[key] = urls["upload"] + "simple/"
            continue
        if url is None:
            return None
        parts = split(url)
        if has_credentials(url):
            problems.add(
                item.where(key),
                f"the registry URL '{redact_url(url)}' holds credentials",
                "remove them: pipgate reads credentials from the environment or "
                "keyring, never from files in the repository",
            )
            return None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            problems.add(
                item.where(key),
                f"'{redact_url(url)}' is not a usable {key} URL",
                "give an http(s) URL with no query or fragment, such as "
                "https://devpi.example.internal/team/approved/"
                + ("+simple/" if key == "simple" else ""),
            )
            return None
        urls[key] = url.rstrip("/") + "/"
    if origin(urls["upload"]) != origin(urls["simple"]):
        problems.add(
            item.where("simple"),
            "the simple index and the upload URL are on different origins",
            "a registry serves its index and takes uploads on one host; name both on it",
        )
        return None
    return RegistrySpec(
        kind=RegistryKind.HTTP,
        url=urls["upload"],
        simple=urls["simple"],
        server=item.text("server"),
    )


def _upstream(record: Record, problems: Problems) -> str | None:
    url = record.text("upstream")
    if url is None:
        return None
    where = record.where("upstream")
    if has_credentials(url):
        problems.add(
            where,
            f"the upstream URL '{redact_url(url)}' holds credentials",
            "remove them: set PIP_INDEX_URL credentials in the environment or use "
            "keyring, never files in the repository",
        )
        return None
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "artifact-registry":
        # A remote repository of Artifact Registry: the pull-through cache a private pool
        # with no internet reaches the public index through, with the same credentials.
        if _artifact_registry(rest, url, where, problems) is None:
            return None
        return url.rstrip("/")
    parts = split(url)
    if (
        parts is None
        or parts.scheme not in ("http", "https", "file")
        or (parts.scheme != "file" and not parts.hostname)
    ):
        problems.add(
            where,
            f"'{url}' is not an index URL",
            "give the simple index URL (https://HOST/simple/), an Artifact Registry "
            "remote repository (artifact-registry://LOCATION/PROJECT/REPOSITORY), or null "
            "to use pip's own configured index",
        )
        return None
    return url


def _targets(record: Record, problems: Problems) -> list[Target]:
    targets: list[Target] = []
    seen: dict[str, Location] = {}
    for item in _records(record, "targets"):
        name = item.text("name")
        python = item.text("python")
        if name is None or python is None:
            continue
        ok = True
        if not re.fullmatch(spec.TARGET_NAME_PATTERN, name):
            problems.add(
                item.where("name"),
                f"target name '{name}' is not usable as a folder name",
                "use lower-case letters, digits, '-' and '_', such as py311",
            )
            ok = False
        elif name in seen:
            problems.add(
                item.where("name"),
                f"target '{name}' is defined twice (first at line {seen[name].line})",
                "give each target its own name",
            )
            ok = False
        else:
            seen[name] = item.where("name")
        reason = check_python_version(python)
        if reason is not None:
            problems.add(item.where("python"), reason)
            ok = False
        platforms: list[str] = []
        for platform in _texts(item, "platforms"):
            assert isinstance(platform.value, str)
            reason = check_platform_tag(platform.value)
            if reason is not None:
                problems.add(platform.location, reason)
                ok = False
            elif platform.value in platforms:
                problems.add(
                    platform.location,
                    f"platform '{platform.value}' is listed twice",
                    "remove the duplicate",
                )
                ok = False
            else:
                platforms.append(platform.value)
        if ok:
            targets.append(
                Target(
                    name=name,
                    python=PythonVersion(python),
                    platforms=tuple(platforms),
                    implementation=item.text("implementation") or "cp",
                    location=item.location,
                )
            )
    return targets


def _policy(record: Record, root: Path, problems: Problems) -> Policy:
    found = record.values.get("policy")
    if found is None or not isinstance(found.value, Record):
        return Policy()
    policy = found.value
    defaults = Policy()
    age = policy.values.get("min_release_age_days")
    return Policy(
        sdists=SdistPolicy(policy.text("sdists") or defaults.sdists.value),
        transitive=TransitivePolicy(policy.text("transitive") or defaults.transitive.value),
        min_release_age_days=(
            age.value
            if age is not None and isinstance(age.value, int)
            else defaults.min_release_age_days
        ),
        audit=_audit(policy, root, problems),
        licenses_deny=_licenses(policy),
        signals=_signals(policy),
        max_exception_days=(
            days.value
            if (days := policy.values.get("max_exception_days")) is not None
            and isinstance(days.value, int)
            else defaults.max_exception_days
        ),
    )


def _signals(policy: Record) -> Signals:
    found = policy.values.get("signals")
    if found is None or not isinstance(found.value, Record):
        return Signals()
    values = found.value.values
    defaults = Signals()

    def number(key: str, default: int) -> int:
        value = values[key].value if key in values else None
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def flag(key: str, default: bool) -> bool:
        value = values[key].value if key in values else None
        return value if isinstance(value, bool) else default

    return Signals(
        dormant_years=number("dormant_years", defaults.dormant_years),
        new_project_days=number("new_project_days", defaults.new_project_days),
        late_file_days=number("late_file_days", defaults.late_file_days),
        missing_files=flag("missing_files", defaults.missing_files),
        provenance=flag("provenance", defaults.provenance),
    )


def _licenses(policy: Record) -> tuple[str, ...]:
    found = policy.values.get("licenses")
    if found is None or not isinstance(found.value, Record):
        return ()
    return tuple(str(v.value) for v in _texts(found.value, "deny"))


def _audit(policy: Record, root: Path, problems: Problems) -> AuditPolicy:
    found = policy.values.get("audit")
    if found is None or not isinstance(found.value, Record):
        return AuditPolicy()
    audit = found.value
    service = AuditService(audit.text("service") or AuditService.PYPI.value)
    url = audit.text("url")
    if url is not None:
        where = audit.where("url")
        parts = split(url)
        if has_credentials(url):
            problems.add(
                where,
                f"the audit URL '{redact_url(url)}' holds credentials",
                "remove them; pipgate never reads credentials from the repository",
            )
        elif parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.add(
                where,
                f"'{url}' is not an OSV API URL",
                "give the query URL of the OSV API, such as https://osv.example/v1/query",
            )
        elif service is not AuditService.OSV:
            problems.add(
                where, "'url' needs service: osv", "set service: osv to use a self-hosted OSV API"
            )
    database = audit.text("database")
    folder = None
    if database is not None:
        folder = Path(database)
        folder = folder if folder.is_absolute() else root / folder
    age = audit.values.get("max_data_age_days")
    days = age.value if age is not None and isinstance(age.value, int) else 2
    return AuditPolicy(service=service, url=url, database=folder, max_data_age_days=days)


# -- package files -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Named:
    """A package name as written, kept for the checks across entries and files."""

    name: NormalizedName
    spelled: str
    location: Location
    targets: tuple[Value, ...]


def _load_packages(path: Path, problems: Problems, named: list[_Named]) -> list[PackageEntry]:
    record = _document(path, spec.PACKAGES_FILE, problems)
    if record is None:
        return []
    entries = []
    for item in _records(record, "packages"):
        entry = _package(item, problems, named)
        if entry is not None:
            entries.append(entry)
    return entries


def _checked_name(value: str, location: Location, problems: Problems, what: str) -> bool:
    reason = check_name(value)
    if reason is None:
        return True
    problems.add(
        location,
        f"invalid {what}: {reason}",
        f"write only the {what} as published, such as 'requests'",
    )
    return False


def _package(item: Record, problems: Problems, named: list[_Named]) -> PackageEntry | None:
    name = item.text("name")
    version = item.text("version")
    reason = item.text("reason")
    requested_by = item.text("requested_by")
    ok = item.complete
    targets = tuple(_texts(item, "targets"))
    if name is not None:
        if _checked_name(name, item.where("name"), problems, "package name"):
            named.append(_Named(normalize(name), name, item.where("name"), targets))
        else:
            ok = False
    if version is not None:
        why = check_exact_version(version)
        if why is not None:
            problems.add(
                item.where("version"),
                f"invalid version: {why}",
                'quote one exact release, such as version: "2.32.3"',
            )
            ok = False
    extras: list[NormalizedName] = []
    for extra in _texts(item, "extras"):
        assert isinstance(extra.value, str)
        if not _checked_name(extra.value, extra.location, problems, "extra name"):
            ok = False
            continue
        normal = normalize(extra.value)
        if normal in extras:
            problems.add(
                extra.location, f"extra '{extra.value}' is listed twice", "remove the duplicate"
            )
            ok = False
        extras.append(normal)
    flags = {
        key: bool(item.values[key].value) for key in ("sdist", "internal") if key in item.values
    }
    if not _free_text(item, ("reason", "requested_by", "cooldown_exempt"), problems):
        ok = False
    acknowledged = item.text("not_a_typosquat_of")
    if acknowledged is not None and not _checked_name(
        acknowledged, item.where("not_a_typosquat_of"), problems, "package name"
    ):
        ok = False
    if not ok or name is None or version is None or reason is None or requested_by is None:
        return None
    return PackageEntry(
        name=normalize(name),
        spelled=name,
        version=ExactVersion(version),
        reason=reason,
        requested_by=requested_by,
        extras=tuple(sorted(set(extras))),
        targets=tuple(str(t.value) for t in targets),
        sdist=flags.get("sdist", False),
        internal=flags.get("internal", False),
        cooldown_exempt=item.text("cooldown_exempt"),
        not_a_typosquat_of=normalize(acknowledged) if acknowledged is not None else None,
        location=item.where("name"),
    )


def _free_text(item: Record, keys: Sequence[str], problems: Problems) -> bool:
    """Free text a reviewer reads must be what it looks like: no hidden characters."""
    ok = True
    for key in keys:
        text = item.text(key)
        if text is None:
            continue
        found = HIDDEN.search(text)
        if found is not None:
            problems.add(
                item.where(key),
                f"'{key}' holds the invisible or control character "
                f"U+{ord(found.group()):04X} at position {found.start() + 1}",
                "write plain text on one line: line breaks, control, zero-width and bidi "
                "characters can make a reviewer read something other than what is there",
            )
            ok = False
    return ok


def _check_duplicates(named: list[_Named], problems: Problems) -> None:
    first: dict[NormalizedName, _Named] = {}
    for entry in named:
        earlier = first.get(entry.name)
        if earlier is None:
            first[entry.name] = entry
            continue
        problems.add(
            entry.location,
            f"'{entry.spelled}' is already approved as '{earlier.spelled}' at "
            f"{earlier.location} (the same project once normalised)",
            "keep one entry per project; one version per project is approved",
        )


def _check_entry_targets(named: list[_Named], config: Config, problems: Problems) -> None:
    known = [t.name for t in config.targets]
    for entry in named:
        for target in entry.targets:
            if target.value not in known:
                problems.add(
                    target.location,
                    f"'{entry.spelled}' names target '{target.value}', which "
                    "config.yaml does not define",
                    f"use one of {', '.join(known)} or define the target",
                )


# -- exceptions.yaml -----------------------------------------------------------------------------


def _load_exceptions(
    path: Path,
    today: datetime.date,
    problems: Problems,
    expired_is_error: bool,
    max_days: int,
) -> list[VulnerabilityException]:
    record = _document(path, spec.EXCEPTIONS_FILE, problems)
    if record is None:
        return []
    result: list[VulnerabilityException] = []
    seen: dict[tuple[str, str], Location] = {}
    for item in _records(record, "vulnerabilities"):
        vid, package = item.text("id"), item.text("package")
        reason, approved_by = item.text("reason"), item.text("approved_by")
        found = item.values.get("expires")
        expires = found.value if found is not None else None
        ok = item.complete
        if vid is not None and spec.is_malicious_id(vid):
            problems.add(
                item.where("id"),
                f"{vid} reports a malicious release: no exception can accept one",
                f"remove {package or 'the package'} (or the entry that pulls it in) instead, "
                "and treat any machine that installed it as compromised",
            )
            ok = False
        elif vid is not None and not re.fullmatch(spec.VULN_ID_PATTERN, vid):
            problems.add(
                item.where("id"),
                f"'{vid}' is not an advisory id",
                "use the id as published, such as GHSA-xxxx-xxxx-xxxx, "
                "PYSEC-2024-1 or CVE-2024-12345",
            )
            ok = False
        if package is not None and not _checked_name(
            package, item.where("package"), problems, "package name"
        ):
            ok = False
        latest = today + datetime.timedelta(days=max_days)
        if isinstance(expires, datetime.date) and expires > latest:
            problems.add(
                item.where("expires"),
                f"the exception for {vid} in {package} runs until {expires.isoformat()}, "
                f"more than {max_days} days ahead",
                f"accept a risk for a bounded time: set an expiry on or before "
                f"{latest.isoformat()} and renew it when it ends "
                "(policy.max_exception_days sets the bound)",
            )
            ok = False
        if not _free_text(item, ("reason", "approved_by"), problems):
            ok = False
        if isinstance(expires, datetime.date) and expires < today and expired_is_error:
            problems.add(
                item.where("expires"),
                f"the exception for {vid} in {package} expired on {expires.isoformat()}",
                "the vulnerability is no longer accepted: upgrade the package, or "
                "have security renew the exception with a new date",
            )
            ok = False
        if (
            vid is None
            or package is None
            or reason is None
            or approved_by is None
            or not (isinstance(expires, datetime.date))
        ):
            continue
        key = (vid, str(normalize(package)) if check_name(package) is None else package)
        if key in seen:
            problems.add(
                item.location,
                f"{vid} for {package} is accepted twice (first at line {seen[key].line})",
                "remove the duplicate",
            )
            ok = False
        seen.setdefault(key, item.location)
        if ok:
            result.append(
                VulnerabilityException(
                    id=vid,
                    package=normalize(package),
                    reason=reason,
                    approved_by=approved_by,
                    expires=expires,
                    expired=expires < today,
                    location=item.location,
                )
            )
    return result
