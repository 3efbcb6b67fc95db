"""`pipgate audit` end to end: the real pip-audit against osv-serve fed with real records."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AllowlistDir, config_text, entries, osv_serve, run_pipgate
from tests.universe import InterceptingProxy, Server, free_port

OSV_DATA = Path(__file__).resolve().parent.parent / "data" / "osv"


def audit_config(upstream: Server, audit: str) -> str:
    return (
        config_text(upstream.url)
        + "  audit:\n"
        + "".join(f"    {line}\n" for line in audit.splitlines())
    )


def offline(upstream: Server) -> str:
    # The snapshot in tests/data is frozen on purpose (2024-10): no age limit for it.
    return audit_config(upstream, f"database: {OSV_DATA}\nmax_data_age_days: 0")


def lock_and_audit(allowlist: AllowlistDir, *args: str) -> subprocess.CompletedProcess[str]:
    locked = run_pipgate("lock", "--allowlist", str(allowlist.path), "--target", "py311")
    assert locked.returncode == 0, locked.stdout + locked.stderr
    return run_pipgate("audit", "--allowlist", str(allowlist.path), "--target", "py311", *args)


def exception(vid: str, package: str, expires: datetime.date) -> str:
    return (
        "vulnerabilities:\n"
        f"  - id: {vid}\n    package: {package}\n    reason: the proxy path is not used\n"
        f"    approved_by: security\n    expires: {expires.isoformat()}\n"
    )


def generated(allowlist: AllowlistDir, name: str) -> Path:
    return allowlist.path.parent / "generated" / "py311" / name


@pytest.fixture
def vulnerable(allowlist: AllowlistDir, upstream: Server) -> AllowlistDir:
    allowlist.write("config.yaml", offline(upstream))
    allowlist.write("team.yaml", entries("requests==2.30.0", "redis==4.5.4"))
    return allowlist


def test_vulnerable_pin_fails_and_names_the_advisory(vulnerable: AllowlistDir) -> None:
    result = lock_and_audit(vulnerable)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    row = next(line for line in result.stdout.splitlines() if "PYSEC-2023-74" in line)
    assert row.split()[:3] == ["requests", "2.30.0", "PYSEC-2023-74"]
    assert "CVE-2023-32681" in row and "GHSA-j8r2-6x86-q33q" in row
    assert "2.31.0" in row and "team.yaml:2 requests (direct)" in row
    # redis is hit only by a withdrawn advisory; certifi 2023.7.22 by none.
    assert "redis" not in result.stdout.replace("redis==", "")
    assert "PYSEC-2023-73" not in result.stdout
    assert "1 known vulnerability not accepted" in result.stderr
    assert "offline OSV export" in result.stderr and "9 records" in result.stderr
    report = json.loads(generated(vulnerable, "audit.json").read_text())
    assert report["verdict"] == "fail"
    assert [(f["package"], f["id"], f["status"]) for f in report["findings"]] == [
        ("requests", "PYSEC-2023-74", "not accepted")
    ]
    sbom = json.loads(generated(vulnerable, "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert {c["name"] for c in sbom["components"]} == {"requests", "certifi", "redis"}
    assert [v["id"] for v in sbom["vulnerabilities"]] == ["PYSEC-2023-74"]


def test_transitive_finding_names_the_parent(allowlist: AllowlistDir, upstream: Server) -> None:
    allowlist.write("config.yaml", offline(upstream))
    allowlist.write("team.yaml", entries("uses-old-certifi==1.0"))
    result = lock_and_audit(allowlist, "--format", "json")
    assert result.returncode == 1
    (target,) = json.loads(result.stdout)["targets"]
    (finding,) = target["findings"]
    assert (finding["package"], finding["version"], finding["id"]) == (
        "certifi",
        "2022.12.7",
        "PYSEC-2023-135",
    )
    assert finding["fix_versions"] == ["2023.7.22"]
    assert finding["brought_in_by"]["chain"] == ["uses-old-certifi", "certifi"]
    assert finding["brought_in_by"]["line"] == 2


def test_valid_exception_accepts_it_by_alias(vulnerable: AllowlistDir) -> None:
    later = datetime.date.today() + datetime.timedelta(days=30)
    vulnerable.write("exceptions.yaml", exception("GHSA-j8r2-6x86-q33q", "Requests", later))
    result = lock_and_audit(vulnerable)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 known vulnerabilities not accepted, 1 accepted" in result.stdout
    assert "accepted PYSEC-2023-74 in requests until" in result.stdout
    report = json.loads(generated(vulnerable, "audit.json").read_text())
    assert report["verdict"] == "pass"
    assert report["findings"][0]["exception"]["approved_by"] == "security"


def test_expired_exception_no_longer_applies(vulnerable: AllowlistDir) -> None:
    earlier = datetime.date.today() - datetime.timedelta(days=1)
    vulnerable.write("exceptions.yaml", exception("PYSEC-2023-74", "requests", earlier))
    result = lock_and_audit(vulnerable)
    assert result.returncode == 1
    assert f"the exception for PYSEC-2023-74 in requests expired on {earlier}" in result.stdout
    assert "exceptions.yaml:2" in result.stdout
    # validate still refuses the expired exception outright.
    assert run_pipgate("validate", "--allowlist", str(vulnerable.path)).returncode == 2


def test_stale_exception_is_reported(allowlist: AllowlistDir, upstream: Server) -> None:
    allowlist.write("config.yaml", offline(upstream))
    allowlist.write("team.yaml", entries("requests==2.31.0"))
    later = datetime.date.today() + datetime.timedelta(days=30)
    allowlist.write("exceptions.yaml", exception("PYSEC-2023-74", "requests", later))
    result = lock_and_audit(allowlist)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exceptions.yaml:2: stale exception: PYSEC-2023-74 matches no finding" in result.stdout


def test_service_down_is_exit_3(allowlist: AllowlistDir, upstream: Server) -> None:
    allowlist.write(
        "config.yaml",
        audit_config(upstream, f"service: osv\nurl: http://127.0.0.1:{free_port()}/v1/query"),
    )
    allowlist.write("team.yaml", entries("requests==2.31.0"))
    result = lock_and_audit(allowlist)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "could not reach the vulnerability service (OSV API at http://127.0.0.1:" in (
        result.stderr
    )
    assert "policy.audit.database" in result.stderr
    assert "No known vulnerabilities" not in result.stdout + result.stderr
    assert not generated(allowlist, "audit.json").exists()


def test_package_the_service_skips_is_exit_3(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip-audit's default service answers "not found" for every package, as it does for
    # packages it does not know; the proxy makes it so without leaving the machine.
    proxy = InterceptingProxy(status=404)
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(proxy.ca_bundle(tmp_path)))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        allowlist.write("config.yaml", audit_config(upstream, "service: pypi"))
        allowlist.write("team.yaml", entries("chain-a==1.0"))
        result = lock_and_audit(allowlist)
    finally:
        proxy.close()
    assert proxy.hosts, "pip-audit never asked its service"
    assert result.returncode == 3, result.stdout + result.stderr
    assert "could not be audited" in result.stderr
    assert "chain-a" in result.stderr and "chain-c" in result.stderr
    # pip-audit's one answer, said once for all three, not once per package.
    assert result.stderr.count("Dependency not found on PyPI") == 1, result.stderr
    assert "for every one of them (chain-a, chain-b, chain-c)" in result.stderr
    assert "No known vulnerabilities" not in result.stdout + result.stderr


def test_missing_lock_is_bad_input(vulnerable: AllowlistDir) -> None:
    result = run_pipgate("audit", "--allowlist", str(vulnerable.path))
    assert result.returncode == 2
    assert "run 'pipgate lock' first" in result.stderr


def test_database_option_overrides_the_policy(allowlist: AllowlistDir, upstream: Server) -> None:
    allowlist.write(
        "config.yaml",
        audit_config(upstream, f"service: osv\nurl: http://127.0.0.1:{free_port()}/v1/query"),
    )
    allowlist.write("team.yaml", entries("requests==2.30.0"))
    result = lock_and_audit(allowlist, "--database", str(OSV_DATA), "--max-data-age-days", "0")
    assert result.returncode == 1
    assert "PYSEC-2023-74" in result.stdout


def test_osv_serve_command() -> None:
    import urllib.request

    with osv_serve(OSV_DATA) as line:
        assert line.startswith("serving 9 OSV records"), line
        url = line.rsplit(" ", 1)[-1].strip()
        request = urllib.request.Request(
            url,
            method="POST",
            data=json.dumps(
                {"package": {"name": "certifi", "ecosystem": "PyPI"}, "version": "2022.12.07"}
            ).encode(),
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            found = json.loads(response.read())
        assert [v["id"] for v in found["vulns"]] == ["PYSEC-2023-135"]


# -- known malicious releases (OSV MAL-) --------------------------------------------------------


def test_a_known_malicious_release_fails_with_its_own_message_and_cannot_be_excepted(
    allowlist: AllowlistDir, upstream: Server
) -> None:
    allowlist.write("config.yaml", offline(upstream))
    allowlist.write("team.yaml", entries("evil-pkg==1.0", "requests==2.30.0"))
    result = lock_and_audit(allowlist)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "known malicious release in the lock: evil-pkg==1.0; remove it" in result.stderr
    assert "evil-pkg==1.0: known malicious release (MAL-2000-1); remove it" in result.stdout
    first = json.loads(generated(allowlist, "audit.json").read_text())["findings"][0]
    # Listed first, before the ordinary advisory of requests.
    assert (first["package"], first["id"], first["malicious"]) == ("evil-pkg", "MAL-2000-1", True)
    # An exception for it is refused when the allowlist is read.
    allowlist.write("exceptions.yaml", exception("MAL-2000-1", "evil-pkg", datetime.date.today()))
    refused = run_pipgate("validate", "--allowlist", str(allowlist.path))
    assert refused.returncode == 2
    assert "MAL-2000-1 reports a malicious release: no exception can accept one" in (
        refused.stdout + refused.stderr
    )


# -- how old the data is -------------------------------------------------------------------------


def test_a_stale_export_fails_closed_naming_its_age_and_a_fresh_one_answers(
    allowlist: AllowlistDir, upstream: Server, tmp_path: Path
) -> None:
    export = tmp_path / "osv"
    shutil.copytree(OSV_DATA, export)
    # No age limit set: the default, 2 days, against a snapshot of 2024-10.
    allowlist.write("config.yaml", audit_config(upstream, f"database: {export}"))
    allowlist.write("team.yaml", entries("requests==2.30.0"))
    stale = lock_and_audit(allowlist)
    assert stale.returncode == 3, stale.stdout + stale.stderr
    assert "days old (newest record 2024-" in stale.stderr
    assert "over policy.audit.max_data_age_days (2)" in stale.stderr
    assert "Traceback" not in stale.stderr
    assert not generated(allowlist, "audit.json").exists()
    # The same records, fetched now (as whatever refreshes the export records it): the
    # audit answers, and says where its data came from.
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (export / "pipgate-osv.json").write_text(json.dumps({"fetched": now}))
    fresh = lock_and_audit(allowlist, "--format", "json")
    assert fresh.returncode == 1, fresh.stdout + fresh.stderr  # requests 2.30.0's advisory
    written = json.loads(generated(allowlist, "audit.json").read_text())
    assert written["source"]["fetched"] == now and written["source"]["records"] > 5
    assert written["source"]["newest"].startswith("2024-")
    sbom = json.loads(generated(allowlist, "sbom.cdx.json").read_text())
    (said,) = sbom["metadata"]["properties"]
    assert said["name"] == "pipgate:vulnerability-data" and f"fetched {now}" in said["value"]
    # A fetch time that is no time is an error, not a pass.
    (export / "pipgate-osv.json").write_text('{"fetched": "yesterday"}')
    broken = lock_and_audit(allowlist)
    assert broken.returncode == 2 and "gives no fetch time" in broken.stderr
