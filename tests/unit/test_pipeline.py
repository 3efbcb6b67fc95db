"""The pipeline's decisions, through fakes of the ports: skip, resume, stop, verify, render.

Each test runs ``pipeline.sync_all`` (or one step) in-process on small real
wheels in a local folder; the locker, auditor, downloader and registry are
fakes (``tests.unit.fakes``). These take milliseconds; the end-to-end tests
keep what only the real tools show.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipgate import pipeline
from pipgate.allowlist import InvalidAllowlistError
from pipgate.errors import ExitCode
from pipgate.history import HistoryError
from pipgate.lock import LockPolicyError, read_lock
from pipgate.options import Options
from pipgate.pipeline import SyncReport
from pipgate.registry import RegistryError, Removal, RemovalUnsupportedError
from tests.unit.fakes import World, make_world
from tests.universe import Dist

TOP = Dist("zq-top", "1.0", requires=("zq-dep>=1",))
DEP = Dist("zq-dep", "2.0")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, [TOP, DEP], ["zq-top==1.0"], extra=[("zq-dep", "2.0", "zq-top")])


def options(world: World, **changes: object) -> Options:
    return dataclasses.replace(Options(allowlist=world.allowlist_dir), **changes)  # type: ignore[arg-type]


def sync(world: World, **changes: object) -> SyncReport:
    return pipeline.sync_all(options(world, **changes), world.allowlist(), world.adapters())


def statuses(report: SyncReport) -> dict[str, str]:
    return {s.step: s.status.value for s in report.steps}


def test_first_sync_runs_every_step_and_verifies_before_render(world: World) -> None:
    report = sync(world)
    assert report.exit_code is ExitCode.OK
    assert statuses(report) == dict.fromkeys(
        ("validate", "lock", "check", "audit", "publish", "render"), "ran"
    )
    held = sorted(world.registry.files)
    assert held == ["zq_dep-2.0-py3-none-any.whl", "zq_top-1.0-py3-none-any.whl"]
    published = next(s for s in report.steps if s.step == "publish").produced
    assert isinstance(published, pipeline.UploadReport)
    assert published.publish.verified == 2
    order = (world.generated / "py311" / "install-order.txt").read_text(encoding="utf-8")
    assert order.index("zq_dep-2.0") < order.index("zq_top-1.0")  # dependency first
    assert (world.consumers / "pip.conf").is_file()


def test_a_second_sync_skips_every_step_and_touches_nothing(world: World) -> None:
    sync(world)
    before = {p: p.read_bytes() for p in world.generated.rglob("*") if p.is_file()}
    uploads, audited, resolved = (
        world.registry.uploads,
        world.auditor.audited,
        world.locker.resolved,
    )
    report = sync(world)
    assert statuses(report) == {
        "validate": "ran",
        "lock": "ran",
        "check": "skipped",
        "audit": "skipped",
        "publish": "skipped",
        "render": "skipped",
    }
    lock = next(s for s in report.steps if s.step == "lock").produced
    assert isinstance(lock, pipeline.LockReport) and lock.results[0].status == "unchanged"
    assert world.locker.resolved == resolved  # the lock's inputs digest said: nothing to do
    assert (world.registry.uploads, world.auditor.audited) == (uploads, audited)
    assert {p: p.read_bytes() for p in world.generated.rglob("*") if p.is_file()} == before


def test_the_first_failure_stops_the_run_with_its_exit_code(world: World) -> None:
    world.auditor.known[("zq-dep", "2.0")] = ("PIPGATE-TEST-9",)
    report = sync(world)
    assert report.exit_code is ExitCode.POLICY
    assert statuses(report) == {
        "validate": "ran",
        "lock": "ran",
        "check": "ran",
        "audit": "failed",
    }
    failed = report.failed
    assert failed is not None and failed.error is not None
    audit = failed.error.report
    assert isinstance(audit, pipeline.AuditReport)  # what was found travels with the verdict
    assert [f.vulnerability.id for r in audit.failing for f in r.unaccepted] == ["PIPGATE-TEST-9"]
    assert world.registry.uploads == 0  # nothing published
    assert not (world.consumers / "pip.conf").exists()
    assert not (world.generated / "py311" / "install-order.txt").exists()


def test_a_service_that_cannot_answer_is_exit_3_and_the_next_run_resumes(world: World) -> None:
    world.auditor.down = True
    failed = sync(world)
    assert failed.exit_code is ExitCode.EXTERNAL
    assert statuses(failed)["audit"] == "failed" and "publish" not in statuses(failed)
    world.auditor.down = False
    resumed = sync(world)
    assert resumed.exit_code is ExitCode.OK
    assert statuses(resumed) == {
        "validate": "ran",
        "lock": "ran",
        "check": "skipped",  # it succeeded before the failure, on the same inputs
        "audit": "ran",
        "publish": "ran",
        "render": "ran",
    }


def test_registry_faults_are_reconciled_by_hash_and_end_verified(world: World) -> None:
    world.registry.fail_uploads = 3
    report = sync(world, retry_backoff=0.0)
    assert report.exit_code is ExitCode.OK
    assert len(world.registry.files) == 2
    assert world.registry.uploads == 5  # three failed attempts, then both files


def test_a_registry_that_keeps_nothing_fails_verification_and_nothing_renders(
    world: World,
) -> None:
    world.registry.lose_uploads = True
    report = sync(world)
    assert report.exit_code is ExitCode.EXTERNAL
    assert statuses(report)["publish"] == "failed" and "render" not in statuses(report)
    assert report.failed is not None and report.failed.error is not None
    assert "does not hold every locked file" in report.failed.error.message
    assert not (world.consumers / "pip.conf").exists()
    assert not (world.generated / "py311" / "install-order.txt").exists()
    # The registry recovers: the next run publishes and renders (publish was never recorded).
    world.registry.lose_uploads = False
    again = sync(world)
    assert statuses(again)["publish"] == "ran" and statuses(again)["render"] == "ran"


def test_force_runs_steps_whose_inputs_are_unchanged(world: World) -> None:
    sync(world)
    report = sync(world, force=True)
    assert statuses(report)["audit"] == "ran" and statuses(report)["publish"] == "ran"
    assert world.registry.uploads == 2  # forced, yet only what the registry lacked moves


def test_explicit_transitive_policy_refuses_an_unlisted_dependency(world: World) -> None:
    config = world.allowlist_dir / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("transitive: auto", "transitive: explicit"),
        encoding="utf-8",
    )
    allowlist = world.allowlist()
    with pytest.raises(LockPolicyError) as raised:
        pipeline.lock(options(world), allowlist, world.adapters(), allowlist.config.targets)
    assert raised.value.exit_code is ExitCode.POLICY
    [problem] = raised.value.problems
    assert "zq-dep==2.0 is needed by zq-top" in problem.message
    assert problem.location.path.name == "team.yaml" and problem.location.line == 2
    assert read_lock(world.generated / "py311" / "requirements.txt", "py311") is None


def remote(world: World) -> None:
    """The world's registry as a remote one (the in-memory fake stands in for it)."""
    config = world.allowlist_dir / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "registry: file://.registry", "registry: https://registry.example.internal/"
        ),
        encoding="utf-8",
    )


def verify(world: World) -> pipeline.VerifyReport:
    allowlist = world.allowlist()
    return pipeline.verify(options(world), allowlist, world.adapters(), allowlist.config.targets)


def test_verify_names_missing_conflicting_and_extra_files(world: World) -> None:
    sync(world)
    assert verify(world).in_step
    digest, data = world.registry.files.pop("zq_dep-2.0-py3-none-any.whl")
    world.registry.files["zq_top-1.0-py3-none-any.whl"] = ("f" * 64, b"replaced")
    world.registry.files["zq_old-0.1-py3-none-any.whl"] = ("e" * 64, b"nobody needs it")
    with pytest.raises(pipeline.DriftError) as raised:
        verify(world)
    assert raised.value.exit_code is ExitCode.POLICY
    report = raised.value.report
    assert isinstance(report, pipeline.VerifyReport)
    assert [(d.filename, d.sha256, d.targets) for d in report.of("missing")] == [
        ("zq_dep-2.0-py3-none-any.whl", digest, ("py311",)),
        ("zq_top-1.0-py3-none-any.whl", sha_of(world, "zq_top-1.0-py3-none-any.whl"), ("py311",)),
    ]
    assert [d.filename for d in report.of("conflict")] == ["zq_top-1.0-py3-none-any.whl"]
    assert [d.filename for d in report.of("extra")] == ["zq_old-0.1-py3-none-any.whl"]
    assert data  # what was removed was real


def sha_of(world: World, name: str) -> str:
    import hashlib

    return hashlib.sha256((world.index / name).read_bytes()).hexdigest()


def test_sync_verify_restores_a_file_the_registry_lost(world: World) -> None:
    remote(world)
    sync(world)
    lost = "zq_dep-2.0-py3-none-any.whl"
    world.registry.files.pop(lost)
    quiet = sync(world)  # the digest is unchanged: publish is skipped, nothing notices
    assert statuses(quiet)["publish"] == "skipped" and lost not in world.registry.files
    checked = sync(world, verify=True)
    assert statuses(checked)["verify"] == "ran" and statuses(checked)["publish"] == "ran"
    assert lost in world.registry.files
    again = sync(world, verify=True)
    assert statuses(again)["verify"] == "ran" and statuses(again)["publish"] == "skipped"


def test_the_policy_hashes_each_unhashed_locked_file_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fakes' index is a find-links folder: it lists no hashes, so the checks must hash
    # the locked files, and once each, however many checks look at them.
    from pipgate import index

    hashed: list[str] = []
    real = index.hash_file

    def counting(item: index.IndexFile) -> str:
        hashed.append(item.filename)
        return real(item)

    monkeypatch.setattr(index, "hash_file", counting)
    sync(world)
    checked = [n for n in hashed if n.startswith("zq_")]
    # once in the lock's hash selection, once in the policy context: never per check
    assert sorted(checked) == sorted(
        2 * ["zq_dep-2.0-py3-none-any.whl", "zq_top-1.0-py3-none-any.whl"]
    )


def prune(world: World, **changes: object) -> pipeline.PruneReport:
    allowlist = world.allowlist()
    chosen = options(world, keep_commits=0, **changes)
    return pipeline.prune(chosen, allowlist, world.adapters(), allowlist.config.targets)


def with_extras(world: World) -> dict[str, str]:
    """A synced world whose registry also holds a file of a locked release that no lock
    needs (another platform's wheel) and a release nobody needs."""
    sync(world)
    world.registry.files["zq_dep-2.0-py3-none-win_amd64.whl"] = ("d" * 64, b"windows")
    world.registry.files["zq_old-0.1-py3-none-any.whl"] = ("e" * 64, b"nobody needs it")
    return {name: digest for name, (digest, _) in world.registry.files.items()}


def test_prune_is_a_dry_run_unless_applied(world: World) -> None:
    held = with_extras(world)
    report = prune(world)
    assert not report.applied
    assert [i.filename for i in report.of("remove")] == [
        "zq_dep-2.0-py3-none-win_amd64.whl",
        "zq_old-0.1-py3-none-any.whl",
    ]
    assert world.registry.removed == [] and set(world.registry.files) == set(held)


def test_prune_removes_single_files_where_the_registry_can(world: World) -> None:
    held = with_extras(world)
    report = prune(world, apply=True)
    assert report.applied and len(report.of("remove")) == 2
    left = set(held) - {"zq_dep-2.0-py3-none-win_amd64.whl", "zq_old-0.1-py3-none-any.whl"}
    assert set(world.registry.files) == left
    assert verify(world).in_step  # every locked file is still there, nothing extra


def test_prune_never_takes_a_needed_file_with_a_whole_release(world: World) -> None:
    held = with_extras(world)
    world.registry.unit = Removal.RELEASE
    report = prune(world, apply=True)
    # Deleting zq-dep 2.0's unneeded wheel would take its needed one along: it is kept.
    assert [(i.filename, i.action) for i in report.items] == [
        ("zq_dep-2.0-py3-none-win_amd64.whl", "keep"),
        ("zq_old-0.1-py3-none-any.whl", "remove"),
    ]
    assert world.registry.removed == [["zq_old-0.1-py3-none-any.whl"]]
    assert set(world.registry.files) == set(held) - {"zq_old-0.1-py3-none-any.whl"}


def test_prune_on_a_registry_that_cannot_delete_says_so_and_deletes_nothing(
    world: World,
) -> None:
    held = with_extras(world)
    world.registry.unit = Removal.NONE
    assert len(prune(world).of("remove")) == 2  # the dry run still says what would go
    with pytest.raises(RemovalUnsupportedError) as raised:
        prune(world, apply=True)
    assert raised.value.exit_code is ExitCode.BAD_INPUT
    assert set(world.registry.files) == set(held)


def test_prune_does_not_trust_a_registry_that_says_it_deleted(world: World) -> None:
    with_extras(world)
    world.registry.ignore_removals = True
    with pytest.raises(RegistryError, match=r"still holds zq_dep-2\.0-py3-none-win_amd64\.whl"):
        prune(world, apply=True)


def test_prune_with_retention_needs_a_history(world: World) -> None:
    with_extras(world)
    allowlist = world.allowlist()
    with pytest.raises(HistoryError) as raised:
        pipeline.prune(
            options(world, apply=True), allowlist, world.adapters(), allowlist.config.targets
        )
    assert raised.value.exit_code is ExitCode.BAD_INPUT
    assert "--keep-commits 0" in (raised.value.hint or "")
    assert world.registry.removed == []


def test_a_bump_the_validation_refuses_puts_every_file_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = world.allowlist_dir / "team.yaml"
    before = team.read_bytes()

    def refuse(*args: object, **kwargs: object) -> None:
        raise InvalidAllowlistError([])

    monkeypatch.setattr(pipeline, "load", refuse)
    with pytest.raises(InvalidAllowlistError):
        pipeline.bump_entries(
            options(world, names=("zq-top",), version="2.0"),
            world.allowlist(),
            world.adapters(),
            (),
        )
    assert team.read_bytes() == before
    monkeypatch.undo()
    report = pipeline.bump_entries(
        options(world, names=("zq-top",), version="2.0"), world.allowlist(), world.adapters(), ()
    )
    assert [(e.old, e.new) for e in report.edits] == [("1.0", "2.0")]
    assert team.read_bytes() != before
    assert world.allowlist().packages[0].version == "2.0"
