"""The signals of real incidents (policy.signals), each against the test universe: a revival
after years of silence, a new project, a file added late, a file the upstream no longer
lists, and PEP 740 provenance (the universe's front publishes it; this machine's index
publishes none)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, run_pipgate
from tests.e2e.test_check import check, line_of, locked
from tests.universe import ATTESTED, YANKED, Server, UpstreamFront


def rules(findings: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(f["rule"]) + ":" + str(f["package"]): f for f in findings}


def test_a_release_after_years_of_silence_is_a_warning_with_both_dates(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, upstream.url, "dormant-pkg==2.0")
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 0  # a warning: the reviewer decides
    found = rules(findings)["dormant-revival:dormant-pkg"]
    assert found["severity"] == "warning"
    assert "after the release before it (1.0, 2019-01-01)" in str(found["message"])
    assert "hijacked account" in str(found["hint"])
    assert found["entry"]["line"] == line_of(allowlist, "dormant-pkg")  # type: ignore[index]
    # dormant-pkg 1.0 itself, the first release, is no revival; nor is anything with
    # the signal off.
    allowlist.write(
        "config.yaml",
        (allowlist.path / "config.yaml").read_text() + "  signals:\n    dormant_years: 0\n",
    )
    relock = run_pipgate("lock", "--allowlist", str(allowlist.path), "--target", "py311")
    assert relock.returncode == 0, relock.stderr
    assert "dormant-revival:dormant-pkg" not in rules(check(allowlist, tmp_path)[1])


def test_a_project_first_published_a_month_ago_is_a_new_project(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, upstream.url, "young-project==1.0", "chain-a==1.0")
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 0
    found = rules(findings)
    message = str(found["new-project:young-project"]["message"])
    assert "first release came out 30 days ago" in message and "under 90 days" in message
    # chain-a's first release is years old.
    assert not any(key.startswith("new-project:chain") for key in found)


def test_a_file_added_to_a_release_two_months_late_is_named(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, upstream.url, "late-files==1.0")
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 0
    found = rules(findings)["late-file:late-files"]
    assert "late_files-1.0.tar.gz was added to late-files==1.0 60 days after its first file" in (
        str(found["message"])
    )


@pytest.fixture
def vanishing(universe_index: Server) -> Iterator[tuple[Server, set[str]]]:
    """An upstream of the test's own, whose pages leave out the files in the set."""
    hidden: set[str] = set()
    front = UpstreamFront(universe_index, YANKED, hidden=hidden)
    try:
        yield front.server(), hidden
    finally:
        front.stop()


def test_a_locked_file_the_upstream_no_longer_lists_is_refused(
    allowlist: AllowlistDir, vanishing: tuple[Server, set[str]], tmp_path: Path
) -> None:
    server, hidden = vanishing
    locked(allowlist, server.url, "redis==4.5.4")
    assert check(allowlist, tmp_path)[0] == 0
    hidden.add("redis-4.5.4-py3-none-any.whl")  # the index removed the release's file
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 1
    found = rules(findings)["missing-files:redis"]
    assert found["severity"] == "error"
    assert "1 file(s) of redis==4.5.4 that the upstream no longer lists" in str(found["message"])


@pytest.mark.parametrize(
    ("version", "said"),
    [
        (
            "1.2",
            "attested==1.2 was published by GitHub repository=someone-else/attested "
            "workflow=publish.yml, but attested==1.1 by GitHub "
            "repository=attested-org/attested workflow=release.yml",
        ),
        (
            "1.3",
            "attested==1.3 has no provenance, but attested==1.2 was published with provenance "
            "by GitHub repository=someone-else/attested workflow=publish.yml",
        ),
    ],
)
def test_a_release_by_another_publisher_or_without_provenance_is_refused(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path, version: str, said: str
) -> None:
    locked(allowlist, upstream.url, f"attested=={version}")
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 1
    found = rules(findings)["provenance:attested"]
    assert found["message"] == said
    assert "Ultralytics" in str(found["hint"])


def test_the_same_publisher_passes_and_the_review_names_it(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    locked(allowlist, upstream.url, "attested==1.1")
    code, findings, _ = check(allowlist, tmp_path)
    assert code == 0 and "provenance:attested" not in rules(findings)
    repo = allowlist.path.parent
    from tests.e2e.test_review import commit_all, git

    git(repo, "init", "-q", "-b", "main")
    (allowlist.path / "team.yaml").rename(tmp_path / "team.yaml")
    commit_all(repo, "base without attested")
    (tmp_path / "team.yaml").rename(allowlist.path / "team.yaml")
    result = run_pipgate(
        "review", "--allowlist", str(allowlist.path), "--base", "main", "--format", "json",
        "--cache", str(tmp_path / "cache"), "--database",
        str(Path(__file__).resolve().parent.parent / "data" / "osv"), "--max-data-age-days", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    change = next(c for c in json.loads(result.stdout)["changes"] if c["package"] == "attested")
    identity = " ".join(
        [ATTESTED["kind"], *(f"{k}={v}" for k, v in sorted(ATTESTED.items()) if k != "kind")]
    )
    assert change["publisher"] == [identity]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"not json", "is not a PEP 740 provenance object: not JSON"),
        (b'{"version": 1}', "no list of attestation_bundles"),
        (b'{"attestation_bundles": [{"publisher": {}}]}', "has no publisher with a kind"),
        (b'{"attestation_bundles": []}', "no attestation bundle"),
    ],
)
def test_provenance_that_is_not_pep_740_is_an_error_naming_its_url(
    allowlist: AllowlistDir, universe_index: Server, tmp_path: Path, body: bytes, said: str
) -> None:
    front = UpstreamFront(
        universe_index, YANKED, raw_provenance={"attested-1.2-py3-none-any.whl": body}
    )
    try:
        locked(allowlist, front.url, "attested==1.2")
        result = run_pipgate("check", "--allowlist", str(allowlist.path), "--target", "py311")
    finally:
        front.stop()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "/provenance/attested-1.2-py3-none-any.whl" in result.stderr
    assert said in result.stderr


def test_provenance_on_another_origin_is_refused_with_the_page(
    allowlist: AllowlistDir, universe_index: Server, tmp_path: Path
) -> None:
    front = UpstreamFront(universe_index, YANKED, provenance_at="http://127.0.0.1:9/provenance/")
    try:
        allowlist.write("team.yaml", "packages: []\n")
        locked_result = None
        try:
            locked(allowlist, front.url, "attested==1.0")
        except AssertionError as failed:
            locked_result = str(failed)
    finally:
        front.stop()
    # The page that links provenance elsewhere is refused as a whole, as a file link would be.
    assert locked_result is not None and "127.0.0.1:9" in locked_result


# -- metadata files (PEP 658/714) --------------------------------------------------------------


def test_licences_are_read_from_the_index_metadata_files_not_the_wheels(
    allowlist: AllowlistDir, universe_index: Server, tmp_path: Path
) -> None:
    front = UpstreamFront(universe_index, YANKED, core_metadata=True)
    try:
        locked(allowlist, front.url, "needs-gpl==1.0")
        front.metadata_requests.clear()  # pip-compile reads them too, to resolve
        code, findings, _ = check(allowlist, tmp_path)
        asked = list(front.metadata_requests)
        again = check(allowlist, tmp_path)
    finally:
        front.stop()
    assert code == 1
    assert "license:gpl-pkg" in rules(findings)  # the licence, read from the metadata file
    assert sorted(p.rsplit("/", 1)[-1] for p in asked) == [
        "gpl_pkg-1.0-py3-none-any.whl.metadata",
        "needs_gpl-1.0-py3-none-any.whl.metadata",
    ]
    # No wheel was fetched to read them, and a second check reads them from the cache.
    assert not (tmp_path / "cache" / "sha256").exists()
    assert again[0] == 1 and front.metadata_requests == asked


def test_a_metadata_file_other_than_the_page_lists_is_refused(
    allowlist: AllowlistDir, universe_index: Server, tmp_path: Path
) -> None:
    served: dict[str, bytes] = {}
    front = UpstreamFront(universe_index, YANKED, core_metadata=True, metadata_served=served)
    try:
        locked(allowlist, front.url, "gpl-pkg==1.0")
        # Then the index serves another licence than the wheel's, under the listed hash.
        lying = b"Metadata-Version: 2.4\nName: gpl-pkg\nLicense: MIT\n"
        served["gpl_pkg-1.0-py3-none-any.whl"] = lying
        result = run_pipgate("check", "--allowlist", str(allowlist.path), "--target", "py311",
                             "--cache", str(tmp_path / "cache"))  # fmt: skip
    finally:
        front.stop()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "gpl_pkg-1.0-py3-none-any.whl.metadata" in result.stderr
    assert "is not the metadata file its page lists" in result.stderr
