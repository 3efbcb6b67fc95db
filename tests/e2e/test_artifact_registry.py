"""The artifact-registry:// backend against a local stand-in of Artifact Registry and OAuth.

google-auth reads a real service-account key whose token_uri points at the
stand-in's token endpoint, which checks the signed assertion and issues
short-lived tokens; the stand-in repository accepts only a current token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipgate.allowlist import RegistryKind, RegistrySpec
from pipgate.registry import ArtifactRegistry, Credentials, Held, RegistryError
from tests.artifact_registry import StandIn
from tests.conftest import AllowlistDir, config_text, entries, run_pipgate
from tests.universe import Server

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"

REGISTRY = "artifact-registry://europe-west1/test-project/approved"
PACKAGES = ("diamond-top==1.0", "cycle-x==1.0", "chain-a==1.0")  # 9 files


def sync(allowlist: AllowlistDir) -> subprocess.CompletedProcess[str]:
    cache = allowlist.path.parent / "file-cache"
    return run_pipgate(
        "upload",
        "--allowlist",
        str(allowlist.path),
        "--format",
        "json",
        "--jobs",
        "1",
        "--target",
        "py311",
        "--cache",
        str(cache),
    )


def stand_in_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: float) -> StandIn:
    stand_in = StandIn(tmp_path / "artifact-registry", **options)  # type: ignore[arg-type]
    key = stand_in.service_account_file(tmp_path / "sa-key.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("PIPGATE_ARTIFACT_REGISTRY_ENDPOINT", stand_in.endpoint)
    return stand_in


@pytest.fixture
def locked(allowlist: AllowlistDir, upstream: Server) -> AllowlistDir:
    allowlist.write("config.yaml", config_text(upstream.url, registry=REGISTRY))
    allowlist.write("team.yaml", entries(*PACKAGES))
    result = run_pipgate("lock", "--allowlist", str(allowlist.path), "--target", "py311")
    assert result.returncode == 0, result.stdout + result.stderr
    return allowlist


@pytest.mark.slow
def test_sync_with_refresh_before_expiry(
    locked: AllowlistDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tokens said to live 301 s: inside pipgate's 5-minute margin after a second, so
    # they are renewed before they expire, and the repository never refuses one.
    stand_in = stand_in_for(
        tmp_path, monkeypatch, claimed_lifetime=301, real_lifetime=301, upload_delay=0.6
    )
    try:
        result = sync(locked)
    finally:
        stand_in.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert (document["uploaded"], document["verified"]) == (9, 9)
    assert stand_in.uploads == 9
    assert stand_in.refused == 0
    assert stand_in.token_requests >= 2


@pytest.mark.slow
def test_sync_that_outlives_a_token_refreshes_on_401(
    locked: AllowlistDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tokens said to live an hour, but the repository takes each for 2 s only: the
    # sync outlives them, is refused, gets a new token and finishes.
    stand_in = stand_in_for(
        tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=2, upload_delay=0.6
    )
    try:
        result = sync(locked)
        assert result.returncode == 0, result.stdout + result.stderr
        again = sync(locked)
    finally:
        stand_in.stop()
    document = json.loads(result.stdout)
    assert (document["uploaded"], document["verified"]) == (9, 9)
    assert stand_in.refused >= 1
    assert stand_in.token_requests >= 2
    assert json.loads(again.stdout)["uploaded"] == 0
    assert "ya29." not in result.stdout + result.stderr


def test_forged_key_gets_no_token(
    locked: AllowlistDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    try:
        other = StandIn(tmp_path / "other", claimed_lifetime=3600, real_lifetime=3600)
        forged = json.loads(other.service_account_file(tmp_path / "other.json").read_text())
        other.stop()
        real = json.loads(Path(str(tmp_path / "sa-key.json")).read_text())
        real["private_key"] = forged["private_key"]
        (tmp_path / "sa-key.json").write_text(json.dumps(real))
        result = sync(locked)
    finally:
        stand_in.stop()
    assert result.returncode == 3
    assert stand_in.uploads == 0
    assert "cannot get an access token" in result.stderr
    assert "BEGIN PRIVATE KEY" not in result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["REMOTE_REPOSITORY", "VIRTUAL_REPOSITORY"])
def test_a_remote_or_virtual_repository_is_refused_as_the_registry(
    locked: AllowlistDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    stand_in.mode = mode
    try:
        result = sync(locked)
        rendered = run_pipgate("render", "--allowlist", str(locked.path), "--target", "py311")
    finally:
        stand_in.stop()
    assert result.returncode == 2, result.stdout + result.stderr
    kind = "a remote repository" if mode == "REMOTE_REPOSITORY" else "a virtual repository"
    assert f"is {kind}" in result.stderr and "standard repository" in result.stderr
    assert stand_in.uploads == 0 and not any(stand_in.files.iterdir())
    assert rendered.returncode == 2 and f"is {kind}" in rendered.stderr
    assert not (locked.path.parent / "generated" / "pip.conf").exists()


@pytest.mark.parametrize(
    "case",
    [
        ("MODE_FROM_THE_FUTURE", None, 2, "not a standard repository"),
        ({"nested": "<script>"}, None, 2, "not a standard repository"),
        ("STANDARD_REPOSITORY", b"<html>a captive portal</html>", 3, "did not answer a JSON"),
        ("STANDARD_REPOSITORY", b"[1, 2]", 3, "did not answer a JSON"),
    ],
    ids=["unknown-mode", "mode-not-text", "not-json", "not-a-mapping"],
)
def test_a_hostile_answer_about_the_repository_is_refused(
    locked: AllowlistDir,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[object, bytes | None, int, str],
) -> None:
    mode, resource, code, said = case
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    stand_in.mode, stand_in.resource = mode, resource
    try:
        result = sync(locked)
    finally:
        stand_in.stop()
    assert result.returncode == code, result.stdout + result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert stand_in.uploads == 0


# -- verify and prune through the REST API, a remote repository as upstream ---------------------


def pipgate_json(*args: str) -> tuple[int, dict[str, Any], str]:
    result = run_pipgate(*args, "--format", "json")
    try:
        document = json.loads(result.stdout)
    except ValueError:
        document = {}
    return result.returncode, document, result.stdout + result.stderr


@pytest.fixture
def published(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AllowlistDir, StandIn]]:
    """Both targets locked and uploaded to the stand-in's standard repository."""
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    allowlist.write("config.yaml", config_text(upstream.url, registry=REGISTRY))
    allowlist.write("team.yaml", entries("diamond-top==1.0", "chain-a==1.0"))
    for command in ("lock", "upload"):
        result = run_pipgate(command, "--allowlist", str(allowlist.path))
        assert result.returncode == 0, result.stdout + result.stderr
    yield allowlist, stand_in
    stand_in.stop()


def test_verify_lists_the_repository_through_the_files_api(
    published: tuple[AllowlistDir, StandIn],
) -> None:
    allowlist, stand_in = published
    held = sorted(p.name for p in stand_in.files.iterdir())
    stand_in.page_size = 2  # the listing comes a page at a time, with page tokens
    code, report, said = pipgate_json("verify", "--allowlist", str(allowlist.path))
    assert code == 0, said
    assert report["held_files"] == len(held) and report["missing"] == []
    assert stand_in.list_calls == (len(held) + 1) // 2
    gone = next(n for n in held if n.startswith("chain_c"))
    (stand_in.files / gone).unlink()
    code, report, said = pipgate_json("verify", "--allowlist", str(allowlist.path))
    assert code == 1, said
    assert [m["file"] for m in report["missing"]] == [gone]


def test_prune_deletes_unneeded_versions_through_the_api(
    published: tuple[AllowlistDir, StandIn],
) -> None:
    allowlist, stand_in = published
    before = sorted(p.name for p in stand_in.files.iterdir())
    allowlist.write("team.yaml", entries("diamond-top==1.0"))  # chain-a and its chain go
    result = run_pipgate("lock", "--allowlist", str(allowlist.path))
    assert result.returncode == 0, result.stdout + result.stderr
    args = ("prune", "--allowlist", str(allowlist.path), "--keep-commits", "0")
    code, dry, said = pipgate_json(*args)
    assert code == 0, said
    going = sorted(i["file"] for i in dry["would_remove"])
    assert going and all(n.startswith("chain_") for n in going)
    assert sorted(p.name for p in stand_in.files.iterdir()) == before  # a dry run deletes nothing
    stand_in.can_delete = False
    code, _, said = pipgate_json(*args, "--apply")
    assert code == 3 and "roles/artifactregistry.repoAdmin" in said and "Traceback" not in said
    assert sorted(p.name for p in stand_in.files.iterdir()) == before
    stand_in.can_delete = True
    code, applied, said = pipgate_json(*args, "--apply")
    assert code == 0, said
    assert sorted(i["file"] for i in applied["removed"]) == going
    assert sorted(p.name for p in stand_in.files.iterdir()) == sorted(set(before) - set(going))
    code, report, said = pipgate_json("verify", "--allowlist", str(allowlist.path))
    assert code == 0 and report["extra"] == [], said


def test_a_remote_repository_is_the_upstream_with_a_token(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The merge pipeline in a private pool: its only way to the packages is an Artifact
    # Registry remote repository, which answers a current token only.
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    remote = stand_in.add_remote("pypi-remote", upstream.url.removesuffix("simple/"))
    allowlist.write("config.yaml", config_text(remote))
    allowlist.write("team.yaml", entries("diamond-top==1.0"))
    try:
        page = f"{stand_in.endpoint}/test-project/pypi-remote/simple/diamond-top/"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(page, timeout=10)
        refused.value.close()
        result = run_pipgate(
            "sync",
            "--allowlist",
            str(allowlist.path),
            "--database",
            str(OSV_DATA),
            "--max-data-age-days",
            "0",
        )
    finally:
        stand_in.stop()
    assert refused.value.code == 401
    assert result.returncode == 0, result.stdout + result.stderr
    lock = (allowlist.path.parent / "generated" / "py311" / "requirements.txt").read_text()
    assert "diamond-top==1.0" in lock and "--hash=sha256:" in lock
    assert stand_in.remote_requests > 0
    assert stand_in.refused == 1  # the probe above: every request of the sync had a token
    registry = allowlist.path.parent / ".registry" / "files"
    assert any(p.name.startswith("diamond_top-1.0") for p in registry.iterdir())
    written = [p for p in (allowlist.path.parent).rglob("*") if p.is_file()]
    assert not any("ya29." in p.read_text(errors="replace") for p in written)
    assert "ya29." not in result.stdout + result.stderr


PARENT = "projects/test-project/locations/europe-west1/repositories/approved"
SPEC = RegistrySpec(
    kind=RegistryKind.ARTIFACT_REGISTRY,
    url=REGISTRY,
    location="europe-west1",
    project="test-project",
    repository="approved",
)
GOOD_HASH = {"type": "SHA256", "value": base64.b64encode(b"\x01" * 32).decode()}


def listing(*files: dict[str, object], token: str | None = None) -> bytes:
    document: dict[str, object] = {"files": list(files)}
    if token is not None:
        document["nextPageToken"] = token
    return json.dumps(document).encode()


def entry(file_id: str, *hashes: dict[str, str]) -> dict[str, object]:
    return {"name": f"{PARENT}/files/{file_id}", "hashes": list(hashes or (GOOD_HASH,))}


class FixedToken(Credentials):
    def __init__(self, token: str) -> None:
        self.token = token

    def get(self) -> tuple[str, str]:
        return "oauth2accesstoken", self.token

    def refresh(self) -> None:
        return


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        ([b"<html>a captive portal</html>"], "did not answer a JSON object"),
        ([b'{"files": {"a": 1}}'], "'files' is not a list"),
        ([listing(entry("..%2F..%2Fetc%2Fpasswd"))], "names no wheel or sdist"),
        ([listing(entry("a-1.0-py3-none-any.whl%00.sh"))], "names no wheel or sdist"),
        (
            [listing({"name": "projects/other/locations/x/repositories/y/files/a-1.0.tar.gz"})],
            "another repository",
        ),
        (
            [listing(entry("a-1.0.tar.gz", {"type": "SHA256", "value": "not base64!"}))],
            "no single sha256",
        ),
        (
            [listing(entry("a-1.0.tar.gz", {"type": "SHA256", "value": "AAAA"}))],
            "no single sha256",
        ),
        ([listing(entry("a-1.0.tar.gz", GOOD_HASH, GOOD_HASH))], "no single sha256"),
        ([listing(entry("a-1.0.tar.gz", {"type": "MD5", "value": "AAAA"}))], "no single sha256"),
        ([listing(token="t1"), listing(token="t1")], "repeats a page token"),
        ([json.dumps({"files": [], "nextPageToken": 7}).encode()], "not text"),
    ],
    ids=[
        "not-json",
        "files-not-a-list",
        "path-traversal",
        "nul-in-name",
        "another-repository",
        "hash-not-base64",
        "hash-too-short",
        "two-sha256",
        "md5-only",
        "endless-pages",
        "token-not-text",
    ],
)
def test_a_hostile_files_listing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers: list[bytes], said: str
) -> None:
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    token = str(stand_in._issue()["access_token"])
    stand_in.files_answers = list(answers)
    try:
        with pytest.raises(RegistryError) as raised:
            ArtifactRegistry(SPEC, FixedToken(token)).inventory()
    finally:
        stand_in.stop()
    assert said in raised.value.message
    assert token not in raised.value.message


def test_a_clean_listing_gives_each_file_its_hash_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    token = str(stand_in._issue()["access_token"])
    digest = hashlib.sha256(b"wheel bytes").hexdigest()
    (stand_in.files / "Cycle_X-1.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    try:
        held = ArtifactRegistry(SPEC, FixedToken(token)).inventory()
    finally:
        stand_in.stop()
    [(name, item)] = held.items()
    assert name == "Cycle_X-1.0-py3-none-any.whl" and item.sha256 == digest
    assert item.owner == f"{PARENT}/packages/cycle-x/versions/1.0"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"done": True, "error": {"code": 9, "message": "version is tagged"}}, "could not delete"),
        (
            {"name": "projects/other/locations/x/operations/op-1", "done": False},
            "no operation of this project",
        ),
        ({"done": "yes"}, "no operation of this project"),
    ],
    ids=["operation-failed", "another-project", "no-operation"],
)
def test_a_hostile_deletion_answer_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: dict[str, object], said: str
) -> None:
    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    token = str(stand_in._issue()["access_token"])
    stand_in.delete_answer = answer
    held = Held(
        "cycle_x-1.0-py3-none-any.whl",
        "0" * 64,
        owner=f"{PARENT}/packages/cycle-x/versions/1.0",
    )
    try:
        with pytest.raises(RegistryError) as raised:
            ArtifactRegistry(SPEC, FixedToken(token)).remove([held])
    finally:
        stand_in.stop()
    assert said in raised.value.message


@pytest.mark.slow
def test_pylock_names_each_file_on_the_repository_with_its_create_time(
    locked: AllowlistDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    from packaging.pylock import Pylock

    stand_in = stand_in_for(tmp_path, monkeypatch, claimed_lifetime=3600, real_lifetime=3600)
    try:
        assert sync(locked).returncode == 0
        cache = str(locked.path.parent / "file-cache")
        rendered = run_pipgate(
            "render", "--allowlist", str(locked.path), "--target", "py311", "--cache", cache
        )
    finally:
        stand_in.stop()
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    text = (locked.path.parent / "generated" / "py311" / "pylock.toml").read_text()
    document = tomllib.loads(text)
    Pylock.from_dict(document)
    files = [w for p in document["packages"] for w in p["wheels"]]
    assert len(files) == 9
    simple = document["packages"][0]["index"]
    assert simple.endswith("/test-project/approved/simple/")
    for item in files:
        # its URL on the repository, from the repository's own page; its time from files.list
        assert item["url"].startswith(simple.removesuffix("simple/"))
        assert item["url"].endswith("/" + item["name"])
        assert item["upload-time"].isoformat() == "2026-01-01T00:00:00+00:00"
    assert "ya29." not in text and "oauth2accesstoken" not in text
