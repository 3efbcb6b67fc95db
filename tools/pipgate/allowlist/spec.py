"""The shape of the allowlist files, declared once.

The same declarations drive the reader's key and type checks (with the
"did you mean" suggestions) and the JSON Schemas published for editors
(``pipgate schema``), so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import enum


class Kind(enum.Enum):
    TEXT = "text"
    OPTIONAL_TEXT = "text or null"
    BOOL = "true or false"
    INT = "a whole number"
    DATE = "a date (YYYY-MM-DD)"
    TEXT_LIST = "a list of text"
    MAP = "a mapping"
    TEXT_OR_MAP = "text or a mapping"
    MAP_LIST = "a list of mappings"


@dataclasses.dataclass(frozen=True)
class Field:
    key: str
    kind: Kind
    description: str
    required: bool = False
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    minimum: int | None = None
    min_items: int | None = None
    default: object = None
    children: MapSpec | None = None


@dataclasses.dataclass(frozen=True)
class MapSpec:
    title: str
    description: str
    fields: tuple[Field, ...]

    def field(self, key: str) -> Field | None:
        for candidate in self.fields:
            if candidate.key == key:
                return candidate
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)


NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
VERSION_PATTERN = r"^[0-9][0-9A-Za-z.!+_-]*$"
TARGET_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
PYTHON_PATTERN = r"^3\.[0-9]{1,2}$"
VULN_ID_PATTERN = r"^[A-Z][A-Z0-9]*-[A-Za-z0-9][A-Za-z0-9._:-]*$"


def is_malicious_id(identifier: str) -> bool:
    """OSV's MAL- series: reports of malicious releases (the OpenSSF malicious-packages
    project), which no exception may accept."""
    return identifier.upper().startswith("MAL-")


TARGET = MapSpec(
    title="target",
    description="A Python version and the platforms that locks and downloads are made for.",
    fields=(
        Field(
            "name",
            Kind.TEXT,
            "Short name, used as the folder under generated/.",
            required=True,
            pattern=TARGET_NAME_PATTERN,
        ),
        Field(
            "python",
            Kind.TEXT,
            'Python version as MAJOR.MINOR, quoted: "3.11".',
            required=True,
            pattern=PYTHON_PATTERN,
        ),
        Field(
            "platforms",
            Kind.TEXT_LIST,
            "Platform tags of the machines that install, e.g. manylinux_2_17_x86_64.",
            required=True,
            min_items=1,
        ),
        Field(
            "implementation", Kind.TEXT, "Python implementation tag.", enum=("cp",), default="cp"
        ),
    ),
)

AUDIT = MapSpec(
    title="audit",
    description="Where pip-audit gets vulnerability data.",
    fields=(
        Field(
            "service",
            Kind.TEXT,
            "pypi: pip-audit's default online service; osv: the OSV API (the public one, "
            "or the one at url).",
            enum=("pypi", "osv"),
            default="pypi",
        ),
        Field(
            "url",
            Kind.TEXT,
            "With service osv: the query URL of a self-hosted OSV API (https://HOST/v1/query).",
        ),
        Field(
            "database",
            Kind.TEXT,
            "An offline OSV export (a folder of OSV records or an all.zip), relative to the "
            "repository; pipgate serves it on 127.0.0.1 for the audit. Wins over service.",
        ),
        Field(
            "max_data_age_days",
            Kind.INT,
            "An offline export older than this many days (its newest record, or the fetch "
            "time it records) fails the audit: advisories published since are unknown. 0: no "
            "limit, for data frozen on purpose.",
            minimum=0,
            default=2,
        ),
    ),
)

LICENSES = MapSpec(
    title="licenses",
    description="Licences checked against what each locked package declares.",
    fields=(
        Field(
            "deny",
            Kind.TEXT_LIST,
            "SPDX identifiers (GPL-3.0-only) or trove classifiers (License :: ...) refused.",
            min_items=1,
        ),
    ),
)

SIGNALS = MapSpec(
    title="signals",
    description="The patterns of real incidents the check and the review look for; a number "
    "of 0, or false, turns one off.",
    fields=(
        Field(
            "dormant_years",
            Kind.INT,
            "Warn of a release that comes after a silence of more than this many years (the "
            "pattern of a hijacked maintainer account).",
            minimum=0,
            default=2,
        ),
        Field(
            "new_project_days",
            Kind.INT,
            "Warn of a project whose first release is younger than this many days (the "
            "pattern of typosquats and of names invented by code assistants).",
            minimum=0,
            default=90,
        ),
        Field(
            "late_file_days",
            Kind.INT,
            "Warn of a file added to a release more than this many days after its first.",
            minimum=0,
            default=14,
        ),
        Field(
            "missing_files",
            Kind.BOOL,
            "Refuse a lock holding a file the upstream no longer lists.",
            default=True,
        ),
        Field(
            "provenance",
            Kind.BOOL,
            "Read PEP 740 provenance where the upstream publishes it: refuse a release without "
            "provenance, or by another publisher, where the release before it had one.",
            default=True,
        ),
    ),
)

POLICY = MapSpec(
    title="policy",
    description="What the pipeline accepts.",
    fields=(
        Field(
            "sdists",
            Kind.TEXT,
            "deny: every package needs a wheel for every target unless its entry says "
            "sdist: true; allow: sdists may be built.",
            enum=("deny", "allow"),
            default="deny",
        ),
        Field(
            "transitive",
            Kind.TEXT,
            "auto: dependencies of approved packages enter and are reported; explicit: "
            "every locked package needs its own entry.",
            enum=("auto", "explicit"),
            default="auto",
        ),
        Field(
            "min_release_age_days",
            Kind.INT,
            "Refuse releases younger than this many days (a cooldown).",
            minimum=0,
            default=7,
        ),
        Field(
            "max_exception_days",
            Kind.INT,
            "The furthest an exception's expiry may lie ahead, in days.",
            minimum=1,
            default=365,
        ),
        Field("audit", Kind.MAP, "The vulnerability source of the audit.", children=AUDIT),
        Field("licenses", Kind.MAP, "Licences the policy refuses.", children=LICENSES),
        Field("signals", Kind.MAP, "The signals of real incidents.", children=SIGNALS),
    ),
)

LIMITS = MapSpec(
    title="limits",
    description="How much an index or registry may send, and for how long, before pipgate "
    "cuts it off.",
    fields=(
        Field("page_mib", Kind.INT, "One index page or listing, in MiB.", minimum=1, default=32),
        Field(
            "file_mib",
            Kind.INT,
            "One file whose index published no size, in MiB.",
            minimum=1,
            default=4096,
        ),
        Field(
            "page_seconds",
            Kind.INT,
            "One page in all (connection, redirects, retries, body), in seconds.",
            minimum=1,
            default=120,
        ),
        Field("file_seconds", Kind.INT, "One file in all, in seconds.", minimum=1, default=1800),
    ),
)

LOCK = MapSpec(
    title="lock",
    description="How locks are resolved.",
    fields=(
        Field(
            "engine",
            Kind.TEXT,
            "pip-tools (pip-compile under each target's own Python) or uv (uv pip compile "
            "for the target's Python and platform from any machine: macOS and Windows "
            "targets lock on Linux).",
            enum=("pip-tools", "uv"),
            default="pip-tools",
        ),
    ),
)

REGISTRY = MapSpec(
    title="registry",
    description="A registry whose upload URL and simple index differ (devpi, Nexus, "
    "Artifactory, GitLab, Gitea), or whose kind pipgate must know to delete from it.",
    fields=(
        Field(
            "upload",
            Kind.TEXT,
            "The legacy upload URL twine posts to (devpi: https://HOST/USER/INDEX/).",
            required=True,
        ),
        Field(
            "simple",
            Kind.TEXT,
            "The simple index consumers install from (devpi: https://HOST/USER/INDEX/+simple/); "
            "default: the upload URL followed by simple/.",
        ),
        Field(
            "server",
            Kind.TEXT,
            "The server's kind, for 'pipgate prune --apply': pypiserver (its remove_pkg "
            "action, a release at a time) or devpi (DELETE of a file). Others cannot delete "
            "through pipgate.",
            enum=("pypiserver", "devpi"),
        ),
    ),
)

BOOTSTRAP = MapSpec(
    title="bootstrap",
    description="The set a machine with no internet installs first, from a bundle, so that pip "
    "can authenticate to the registry (keyring and its Artifact Registry backend).",
    fields=(
        Field(
            "file",
            Kind.TEXT,
            "The package file under allowlist/ whose entries (and what they need) make the bundle.",
            required=True,
        ),
        Field(
            "targets",
            Kind.TEXT_LIST,
            "The targets a bundle is made for (default: every target).",
            min_items=1,
        ),
    ),
)

CONFIG = MapSpec(
    title="pipgate config.yaml",
    description="Where approved packages go, where they come from, and for which targets.",
    fields=(
        Field(
            "registry",
            Kind.TEXT_OR_MAP,
            "file://DIR, https://HOST/PATH/ or artifact-registry://LOCATION/PROJECT/REPOSITORY; "
            "or {upload: URL, simple: URL, server: KIND} where the two differ or where "
            "'pipgate prune' deletes.",
            required=True,
            children=REGISTRY,
        ),
        Field(
            "upstream",
            Kind.OPTIONAL_TEXT,
            "Index the approved files are fetched from; null: pip's own configured index.",
        ),
        Field(
            "upstream_file_hosts",
            Kind.TEXT_LIST,
            "Origins (https://HOST) besides the upstream's own that its pages may link files "
            "on, such as its CDN.",
            min_items=1,
        ),
        Field(
            "targets",
            Kind.MAP_LIST,
            "The targets locks are made for.",
            required=True,
            min_items=1,
            children=TARGET,
        ),
        Field("policy", Kind.MAP, "Policy settings.", children=POLICY),
        Field("bootstrap", Kind.MAP, "The offline bootstrap bundle.", children=BOOTSTRAP),
        Field("limits", Kind.MAP, "Bounds on what servers may send.", children=LIMITS),
        Field("lock", Kind.MAP, "How locks are resolved.", children=LOCK),
    ),
)

PACKAGE = MapSpec(
    title="package entry",
    description="One approved project at one exact version.",
    fields=(
        Field("name", Kind.TEXT, "Project name as published.", required=True, pattern=NAME_PATTERN),
        Field(
            "version",
            Kind.TEXT,
            'One exact version, quoted: "2.32.3".',
            required=True,
            pattern=VERSION_PATTERN,
        ),
        Field("reason", Kind.TEXT, "Why the organisation needs it.", required=True),
        Field("requested_by", Kind.TEXT, "Team or person who asked for it.", required=True),
        Field("extras", Kind.TEXT_LIST, "Extras to install with it.", min_items=1),
        Field("targets", Kind.TEXT_LIST, "Only these targets (default: all).", min_items=1),
        Field("sdist", Kind.BOOL, "Allow building this package from its sdist.", default=False),
        Field(
            "internal",
            Kind.BOOL,
            "The organisation's own package: never fetched from upstream.",
            default=False,
        ),
        Field(
            "cooldown_exempt",
            Kind.TEXT,
            "Why this release may be younger than policy.min_release_age_days (an urgent fix).",
        ),
        Field(
            "not_a_typosquat_of",
            Kind.TEXT,
            "The popular or approved name this one resembles, acknowledged as a different project.",
            pattern=NAME_PATTERN,
        ),
    ),
)

PACKAGES_FILE = MapSpec(
    title="pipgate package file",
    description="Approved packages requested by one team or for one domain.",
    fields=(
        Field(
            "packages",
            Kind.MAP_LIST,
            "The approved packages.",
            required=True,
            min_items=1,
            children=PACKAGE,
        ),
    ),
)

EXCEPTION = MapSpec(
    title="vulnerability exception",
    description="A known vulnerability accepted for one package until a date.",
    fields=(
        Field(
            "id",
            Kind.TEXT,
            "Advisory id or alias (GHSA-…, PYSEC-…, CVE-…).",
            required=True,
            pattern=VULN_ID_PATTERN,
        ),
        Field("package", Kind.TEXT, "The affected package.", required=True, pattern=NAME_PATTERN),
        Field("reason", Kind.TEXT, "Why the risk is accepted.", required=True),
        Field("approved_by", Kind.TEXT, "Who accepted it.", required=True),
        Field(
            "expires", Kind.DATE, "Date after which the exception no longer applies.", required=True
        ),
    ),
)

EXCEPTIONS_FILE = MapSpec(
    title="pipgate exceptions.yaml",
    description="Accepted vulnerabilities, each with a reason and an expiry.",
    fields=(
        Field(
            "vulnerabilities",
            Kind.MAP_LIST,
            "Accepted vulnerabilities.",
            required=True,
            children=EXCEPTION,
        ),
    ),
)

FILES: dict[str, MapSpec] = {
    "config": CONFIG,
    "packages": PACKAGES_FILE,
    "exceptions": EXCEPTIONS_FILE,
}
"""The published schemas, by the stem of their file name under pipgate/schemas/."""
