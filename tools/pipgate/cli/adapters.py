"""The edge: the only place that builds the ports' backends from the configuration.

A new backend is chosen here and nowhere else; the pipeline and the core
receive what this module makes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from pipgate import http
from pipgate.allowlist import Allowlist, RegistryKind, RegistrySpec
from pipgate.allowlist.model import AuditPolicy, AuditService
from pipgate.audit import Auditor, PipAuditor, Source
from pipgate.audit.osv import Database, Server, check_fresh, load_database
from pipgate.download import FileCache, IndexDownloader
from pipgate.lock import PipToolsLocker, UvLocker
from pipgate.options import Options
from pipgate.pipeline import Adapters, memoized
from pipgate.problems import display_path
from pipgate.registry import (
    ArtifactRegistry,
    Credentials,
    EnvironmentCredentials,
    FileRegistry,
    GoogleCredentials,
    HttpRegistry,
    Registry,
)
from pipgate.registry.artifact_registry import repository_url
from pipgate.toolenv import cache_dir


def registry_for(spec: RegistrySpec) -> Registry:
    """The backend of ``registry:``, by its URL scheme."""
    if spec.kind is RegistryKind.FILE:
        return FileRegistry(spec)
    if spec.kind is RegistryKind.HTTP:
        return HttpRegistry(spec, EnvironmentCredentials(spec.url))
    return ArtifactRegistry(spec)


def upstream_for(url: str | None) -> tuple[str | None, Credentials | None]:
    """The upstream's simple index and what reading it takes: an Artifact Registry remote
    repository is read with Google's application default credentials."""
    if url is None or not url.startswith("artifact-registry://"):
        return url, None
    location, project, repository = url.split("://", 1)[1].strip("/").split("/")
    return repository_url(location, project, repository) + "simple/", GoogleCredentials()


@contextlib.contextmanager
def auditor_for(policy: AuditPolicy) -> Iterator[Auditor]:
    """The auditor the policy asks for; an offline export is served for the duration."""
    if policy.database is not None:
        database: Database = load_database(policy.database, cache_dir() / "osv-index")
        source = Source(
            f"offline OSV export {display_path(policy.database)}",
            database.count,
            database.newest,
            database.fetched,
        )
        check_fresh(database, policy.database, policy.max_data_age_days)
        with Server(database) as server:
            yield PipAuditor(AuditService.OSV, server.url, source)
        return
    yield PipAuditor(policy.service, policy.url, Source(policy.describe()))


def audit_policy(options: Options, allowlist: Allowlist) -> AuditPolicy:
    """``policy.audit``, with ``--database`` for this run where given."""
    policy = allowlist.config.policy.audit
    if options.database is not None:
        policy = dataclasses.replace(policy, database=Path(options.database))
    if options.max_data_age_days is not None:
        policy = dataclasses.replace(policy, max_data_age_days=options.max_data_age_days)
    return policy


def build(options: Options, allowlist: Allowlist) -> Adapters:
    """Every adapter a command may use; each is made only when first used."""
    config = allowlist.config
    http.configure(config.limits)
    registry = memoized(lambda: registry_for(config.registry))
    cache = FileCache(options.cache)
    policy = audit_policy(options, allowlist)
    upstream, credentials = upstream_for(config.upstream)
    engine = UvLocker if config.lock_engine == "uv" else PipToolsLocker
    locker = engine(
        upstream,
        registry=registry,
        file_hosts=config.upstream_file_hosts,
        credentials=credentials,
    )
    return Adapters(
        locker=locker,
        downloader=IndexDownloader(allowlist, cache, locker.sources, registry),
        cache=cache,
        registry=registry,
        auditor=lambda: auditor_for(policy),
    )
