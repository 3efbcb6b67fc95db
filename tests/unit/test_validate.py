"""Loading an allowlist: every class of bad input is reported with its file and line."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from pipgate.allowlist import InvalidAllowlistError, RegistryKind, load
from pipgate.errors import ExitCode, InputError
from pipgate.problems import display_path
from tests.conftest import CONFIG_TEXT, EXAMPLE_ALLOWLIST, AllowlistDir

TODAY = datetime.date(2026, 11, 21)


def problems(allowlist: AllowlistDir) -> list[tuple[str, int, str]]:
    with pytest.raises(InvalidAllowlistError) as caught:
        load(allowlist.path, today=TODAY)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    return [
        (
            p.location.path.name,
            p.location.line,
            p.render()
            .replace(str(allowlist.path) + "/", "")
            .replace(display_path(allowlist.path) + "/", ""),
        )
        for p in caught.value.problems
    ]


def one_problem(allowlist: AllowlistDir) -> tuple[str, int, str]:
    found = problems(allowlist)
    assert len(found) == 1, found
    return found[0]


def package(body: str) -> str:
    return "packages:\n" + body


# -- a valid allowlist --------------------------------------------------------------------------


def test_example_allowlist_is_valid() -> None:
    loaded = load(EXAMPLE_ALLOWLIST, today=TODAY)
    assert [t.name for t in loaded.config.targets] == ["py311", "py312"]
    assert {t.python for t in loaded.config.targets} == {"3.11", "3.12"}
    assert loaded.config.registry.kind is RegistryKind.FILE
    names = {p.name for p in loaded.packages}
    assert {"keyring", "keyrings-google-artifactregistry-auth", "requests"} <= names
    assert all(p.reason.strip() for p in loaded.packages)


def test_entry_becomes_a_plain_requirement(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        """\
        packages:
          - name: Google_Cloud.BigQuery
            version: "3.25.0"
            extras: [Pandas, bqstorage]
            targets: [py312]
            reason: queries
            requested_by: analytics
            sdist: true
        """,
    )
    loaded = load(allowlist.path, today=TODAY)
    (entry,) = loaded.packages
    assert entry.requirement == "google-cloud-bigquery[bqstorage,pandas]==3.25.0"
    assert entry.location.line == 2 and entry.sdist and not entry.internal
    py311, py312 = loaded.config.targets
    assert loaded.packages_for(py311) == () and loaded.packages_for(py312) == (entry,)


def test_missing_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load(tmp_path / "nope")
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "--allowlist" in (caught.value.hint or "")


# -- YAML that is not what it seems -------------------------------------------------------------


def test_not_utf8(allowlist: AllowlistDir) -> None:
    allowlist.write_bytes("team.yaml", b"packages:\n  - name: caf\xe9\n")
    assert one_problem(allowlist)[:2] == ("team.yaml", 2)


def test_duplicate_keys(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package("""\
          - name: requests
            version: "2.32.3"
            version: "2.0.0"
            reason: x
            requested_by: y
        """),
    )
    name, line, message = one_problem(allowlist)
    assert (name, line) == ("team.yaml", 4)
    assert "duplicate key 'version' (first at line 3)" in message


def test_tabs(allowlist: AllowlistDir) -> None:
    allowlist.write("team.yaml", 'packages:\n  - name: requests\n\tversion: "1"\n')
    assert one_problem(allowlist)[1:] == (
        3,
        "team.yaml:3: tab character; YAML indentation and "
        "values must use spaces; replace the tab with spaces",
    )


def test_several_documents(allowlist: AllowlistDir) -> None:
    allowlist.write("team.yaml", PACKAGES_TEXT + "---\n" + PACKAGES_TEXT)
    assert "second YAML document" in one_problem(allowlist)[2]


def test_tags(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package("""\
          - name: !!python/name:os.system requests
            version: "1.0"
            reason: x
            requested_by: y
        """),
    )
    _name, line, message = one_problem(allowlist)
    assert line == 2 and "tag '!!python/name:os.system' is not allowed" in message


def test_anchors_and_aliases(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package("""\
          - &base
            name: requests
            version: "1.0"
            reason: x
            requested_by: y
          - *base
        """),
    )
    found = problems(allowlist)
    assert [(line, "anchor" in m or "alias" in m) for _, line, m in found] == [(2, True), (7, True)]


def test_alias_bomb(allowlist: AllowlistDir) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    lines += [
        f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcde", "bcdef", strict=True)
    ]
    allowlist.write("team.yaml", "\n".join(lines) + "\n")
    assert len((allowlist.path / "team.yaml").read_bytes()) < 300
    found = problems(allowlist)
    assert any("alias '*a' is not allowed" in m for _, _, m in found)


def test_too_large(allowlist: AllowlistDir) -> None:
    allowlist.write("team.yaml", PACKAGES_TEXT + "# padding\n" * 120_000)
    assert "larger than 1024 KiB" in one_problem(allowlist)[2]


def test_empty_file(allowlist: AllowlistDir) -> None:
    allowlist.write("team.yaml", "# nothing yet\n")
    assert one_problem(allowlist)[1:] == (
        1,
        "team.yaml:1: the file is empty; add the content or delete the file",
    )


# -- keys and types -----------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package("""\
          - name: requests
            version: "2.32.3"
            reason: x
            requested_by: y
            extra: [socks]
        """),
    )
    assert one_problem(allowlist)[1:] == (
        6,
        "team.yaml:6: unknown key 'extra' in package entry in 'packages'; did you mean 'extras'?",
    )


def test_unknown_key_in_config(allowlist: AllowlistDir) -> None:
    allowlist.write("config.yaml", CONFIG_TEXT.replace("policy:", "polcy:"))
    name, line, message = one_problem(allowlist)
    assert (name, line) == ("config.yaml", 10) and "did you mean 'policy'?" in message


def test_missing_required_keys(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package("""\
          - name: requests
            version: "2.32.3"
        """),
    )
    found = problems(allowlist)
    assert [(line, m.split("'")[-2]) for _, line, m in found] == [
        (2, "reason"),
        (2, "requested_by"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("sdist", '"yes"', "'sdist' must be true or false"),
        ("internal", "1", "'internal' must be true or false"),
        ("extras", "socks", "'extras' must be a list"),
        ("targets", "[]", "'targets' is an empty list"),
        ("reason", "", "'reason' is empty"),
        ("reason", "[a, b]", "'reason' must be text, not a list"),
        ("requested_by", "no", "YAML read 'no' as the boolean false"),
    ],
)
def test_wrong_types(allowlist: AllowlistDir, field: str, value: str, fragment: str) -> None:
    entry = {"name": "requests", "version": '"2.32.3"', "reason": "x", "requested_by": "y"}
    entry[field] = value
    body = "".join(f"    {k}: {v}\n" for k, v in entry.items()).replace("    ", "  - ", 1)
    allowlist.write("team.yaml", "packages:\n" + body)
    name, line, message = one_problem(allowlist)
    assert name == "team.yaml" and line == 2 + list(entry).index(field)
    assert fragment in message


def test_packages_must_be_a_list(allowlist: AllowlistDir) -> None:
    allowlist.write("team.yaml", "packages:\n  name: requests\n")
    assert "'packages' must be a list" in one_problem(allowlist)[2]


# -- versions -----------------------------------------------------------------------------------


def test_version_read_as_a_number_says_quote_it(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package("""\
          - name: requests
            version: 1.10
            reason: x
            requested_by: y
        """),
    )
    assert one_problem(allowlist)[2] == (
        "team.yaml:3: 'version' was read as the number 1.1, not the text '1.10'; "
        'quote it: version: "1.10"'
    )


@pytest.mark.parametrize("version", ["2", "2.0"])
def test_any_unquoted_version_says_quote_it(allowlist: AllowlistDir, version: str) -> None:
    allowlist.write(
        "team.yaml",
        package(f"""\
          - name: requests
            version: {version}
            reason: x
            requested_by: y
        """),
    )
    assert f'quote it: version: "{version}"' in one_problem(allowlist)[2]


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ("v1.0", "starts with 'v'"),
        (">=1.0", "range or specifier"),
        ("1.0,<2", "range or specifier"),
        ("===1.0", "range or specifier"),
        ("1.*", "wildcard"),
        ("latest", "not a PEP 440 version"),
    ],
)
def test_version_not_one_exact_release(
    allowlist: AllowlistDir, version: str, fragment: str
) -> None:
    allowlist.write(
        "team.yaml",
        package(f"""\
          - name: requests
            version: "{version}"
            reason: x
            requested_by: y
        """),
    )
    _name, line, message = one_problem(allowlist)
    assert line == 3 and fragment in message


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ('"re quests"', "whitespace"),
        ('"requests\\n"', "line break"),
        ('"_private"', "not a valid package name"),
        ('"pkg[socks]"', "extras go in the 'extras'"),
    ],
)
def test_invalid_names(allowlist: AllowlistDir, name: str, fragment: str) -> None:
    allowlist.write(
        "team.yaml",
        package(f"""\
          - name: {name}
            version: "1.0"
            reason: x
            requested_by: y
        """),
    )
    _, line, message = one_problem(allowlist)
    assert line == 2 and fragment in message


def test_same_project_twice_across_files(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "a.yaml",
        package("""\
          - name: Foo_Bar
            version: "1.0"
            reason: x
            requested_by: y
        """),
    )
    allowlist.write(
        "b.yaml",
        package("""\
          - name: other
            version: "1.0"
            reason: x
            requested_by: y
          - name: foo-bar
            version: "2.0"
            reason: x
            requested_by: y
        """),
    )
    name, line, message = one_problem(allowlist)
    assert (name, line) == ("b.yaml", 6)
    assert "'foo-bar' is already approved as 'Foo_Bar' at" in message and "a.yaml:2" in message


# -- what must never reach pip ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("name", "-i https://evil.example/simple", "pip option ('-i')"),
        ("name", "--extra-index-url=https://evil.example/simple", "pip option"),
        ("name", "-e git+https://example.invalid/repo", "pip option ('-e')"),
        ("name", "-r other.txt", "pip option ('-r')"),
        ("name", "-c constraints.txt", "pip option ('-c')"),
        ("name", "--trusted-host evil.example", "pip option"),
        ("name", "https://evil.example/pkg-1.0-py3-none-any.whl", "URL"),
        ("name", "git+https://example.invalid/repo.git", "URL or VCS"),
        ("name", "pkg @ file:///tmp/pkg.whl", "URL"),
        ("name", "../local/pkg", "file path"),
        ("name", "pkg; sys_platform == 'linux'", "environment marker"),
        ("name", "${PIP_INDEX_URL}", "environment variable"),
        ("name", "pkg\\\\x", "backslash"),
        ("name", "pkg # comment", "comment"),
        ("version", "1.0 --index-url https://evil.example", "URL"),
        ("version", "1.0 --pre", "whitespace"),
        ("version", "1.0; python_version<'3.12'", "environment marker"),
        ("version", "1.0#sha256=abc", "comment"),
        ("version", "--pre", "pip option"),
        ("extras", "[socks, '-i https://evil.example']", "pip option"),
    ],
)
def test_injection_is_impossible(
    allowlist: AllowlistDir, field: str, value: str, fragment: str
) -> None:
    entry = {"name": '"requests"', "version": '"2.32.3"', "reason": "x", "requested_by": "y"}
    entry[field] = value if field == "extras" else '"' + value + '"'
    body = "".join(f"    {k}: {v}\n" for k, v in entry.items()).replace("    ", "  - ", 1)
    allowlist.write("team.yaml", "packages:\n" + body)
    name, line, message = one_problem(allowlist)
    assert name == "team.yaml" and line == 2 + list(entry).index(field)
    assert fragment in message


# -- targets, config, and an allowlist that allows nothing ---------------------------------------


def test_undefined_target(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package("""\
          - name: requests
            version: "2.32.3"
            reason: x
            requested_by: y
            targets: [py311, py39]
        """),
    )
    _name, line, message = one_problem(allowlist)
    assert line == 6 and "names target 'py39', which config.yaml does not define" in message
    assert "use one of py311, py312" in message


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ('python: "3.11"', "python: 3.10", 5, "read as the number 3.1, not the text '3.10'"),
        ('python: "3.11"', 'python: "3.11.7"', 5, "write MAJOR.MINOR"),
        ('python: "3.11"', 'python: "2.7"', 5, "not supported"),
        (
            "[manylinux_2_17_x86_64]\n  - name: py312",
            "[linux_x86_64]\n  - name: py312",
            6,
            "not portable",
        ),
        (
            "[manylinux_2_17_x86_64]\n  - name: py312",
            "[x86_64]\n  - name: py312",
            6,
            "not a platform tag",
        ),
        ("name: py312", "name: py311", 7, "target 'py311' is defined twice"),
        ("name: py312", "name: Py 3.12", 7, "not usable as a folder name"),
        ("sdists: deny", "sdists: never", 11, "must be one of deny, allow"),
        ("min_release_age_days: 7", "min_release_age_days: seven", 13, "whole number"),
        (
            "registry: file://.registry",
            "registry: https://user:s3cret@example.invalid/",
            1,
            "holds credentials",
        ),
        (
            "registry: file://.registry",
            "registry: ftp://example.invalid/",
            1,
            "unsupported registry scheme",
        ),
        (
            "registry: file://.registry",
            "registry: artifact-registry://europe-west1/p",
            1,
            "LOCATION/PROJECT/REPOSITORY",
        ),
        (
            "registry: file://.registry",
            "registry: artifact-registry://EU/Proj/Repo",
            1,
            "invalid location and project and repository",
        ),
        (
            "upstream: null",
            "upstream: https://token:abc@example.invalid/simple/",
            2,
            "holds credentials",
        ),
        (
            "targets:\n  - name: py311",
            "targets: []\nxtargets:\n  - name: py311",
            3,
            "'targets' is an empty list",
        ),
    ],
)
def test_bad_config(allowlist: AllowlistDir, old: str, new: str, line: int, fragment: str) -> None:
    assert old in CONFIG_TEXT
    allowlist.write("config.yaml", CONFIG_TEXT.replace(old, new, 1))
    found = problems(allowlist)
    assert any(n == "config.yaml" and ln == line and fragment in m for n, ln, m in found), found
    assert all("s3cret" not in m and "abc@" not in m for _, _, m in found)


def test_artifact_registry_urls() -> None:
    from pipgate.allowlist.model import RegistrySpec

    spec = RegistrySpec(
        kind=RegistryKind.ARTIFACT_REGISTRY,
        url="artifact-registry://europe-west1/my-project/python-approved",
        location="europe-west1",
        project="my-project",
        repository="python-approved",
    )
    assert spec.upload_url == "https://europe-west1-python.pkg.dev/my-project/python-approved/"
    assert spec.simple_url == (
        "https://europe-west1-python.pkg.dev/my-project/python-approved/simple/"
    )


def test_file_registry_is_relative_to_the_repository(allowlist: AllowlistDir) -> None:
    loaded = load(allowlist.path, today=TODAY)
    registry = loaded.config.registry
    assert registry.path == allowlist.path.resolve().parent / ".registry"
    assert registry.simple_url.startswith("file://") and registry.simple_url.endswith("/simple/")


def test_missing_config(allowlist: AllowlistDir) -> None:
    (allowlist.path / "config.yaml").unlink()
    name, _line, message = one_problem(allowlist)
    assert name == "config.yaml" and "missing" in message


def test_no_package_files_allows_nothing(allowlist: AllowlistDir) -> None:
    (allowlist.path / "team.yaml").unlink()
    assert "the allowlist allows nothing" in one_problem(allowlist)[2]


def test_empty_packages_list(allowlist: AllowlistDir) -> None:
    allowlist.write("team.yaml", "packages: []\n")
    assert "'packages' is an empty list" in one_problem(allowlist)[2]


def test_yml_suffix_is_not_silently_ignored(allowlist: AllowlistDir) -> None:
    allowlist.write("more.yml", PACKAGES_TEXT)
    assert "rename it to more.yaml" in one_problem(allowlist)[2]


# -- exceptions ---------------------------------------------------------------------------------


def exception(**fields: str) -> str:
    entry = {
        "id": "GHSA-9wx4-h78v-vm56",
        "package": "requests",
        "reason": "not reachable",
        "approved_by": "security",
        "expires": "2027-01-31",
        **fields,
    }
    entry = {k: v for k, v in entry.items() if v != "-"}
    body = "".join(f"    {k}: {v}\n" for k, v in entry.items()).replace("    ", "  - ", 1)
    return "vulnerabilities:\n" + body


def test_valid_exception(allowlist: AllowlistDir) -> None:
    allowlist.write("exceptions.yaml", exception())
    (accepted,) = load(allowlist.path, today=TODAY).exceptions
    assert accepted.id == "GHSA-9wx4-h78v-vm56" and accepted.expires == datetime.date(2027, 1, 31)


def test_expired_exception(allowlist: AllowlistDir) -> None:
    allowlist.write("exceptions.yaml", exception(expires="2026-11-20"))
    name, line, message = one_problem(allowlist)
    assert (name, line) == ("exceptions.yaml", 6)
    assert "expired on 2026-11-20" in message


def test_exception_expiring_today_still_applies(allowlist: AllowlistDir) -> None:
    allowlist.write("exceptions.yaml", exception(expires="2026-11-21"))
    assert len(load(allowlist.path, today=TODAY).exceptions) == 1


def test_registry_long_form_names_upload_and_simple_apart(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "config.yaml",
        CONFIG_TEXT.replace(
            "registry: file://.registry",
            "registry:\n  upload: https://devpi.example.internal/team/approved\n"
            "  simple: https://devpi.example.internal/team/approved/+simple/",
        ),
    )
    spec = load(allowlist.path, today=TODAY).config.registry
    assert spec.kind is RegistryKind.HTTP
    assert spec.upload_url == "https://devpi.example.internal/team/approved/"
    assert spec.simple_url == "https://devpi.example.internal/team/approved/+simple/"


@pytest.mark.parametrize(
    ("upload", "simple", "fragment"),
    [
        ("https://a.example/x/", "https://b.example/x/+simple/", "different origins"),
        ("https://u:p@a.example/x/", "https://a.example/x/+simple/", "holds credentials"),
        ("ftp://a.example/x/", "https://a.example/x/+simple/", "not a usable upload URL"),
        ("https://a.example/x/", "https://[::1/+simple/", "not a usable simple URL"),
    ],
)
def test_registry_long_form_refuses_what_cannot_work(
    allowlist: AllowlistDir, upload: str, simple: str, fragment: str
) -> None:
    allowlist.write(
        "config.yaml",
        CONFIG_TEXT.replace(
            "registry: file://.registry", f"registry:\n  upload: {upload}\n  simple: {simple}"
        ),
    )
    name, _, message = one_problem(allowlist)
    assert name == "config.yaml" and fragment in message


def test_an_exception_may_not_run_for_ever(allowlist: AllowlistDir) -> None:
    allowlist.write("exceptions.yaml", exception(expires="9999-12-31"))
    name, line, message = one_problem(allowlist)
    assert (name, line) == ("exceptions.yaml", 6)
    assert "more than 365 days ahead" in message and "on or before 2027-11-21" in message


def test_the_expiry_bound_is_the_policy_s(allowlist: AllowlistDir) -> None:
    allowlist.write("config.yaml", CONFIG_TEXT + "  max_exception_days: 30\n")
    allowlist.write("exceptions.yaml", exception(expires="2027-01-31"))
    assert "more than 30 days ahead" in one_problem(allowlist)[2]


@pytest.mark.parametrize(
    ("field", "text", "code"),
    [
        ("reason", '"approve\\r\\n## PASS"', "U+000D"),
        ("reason", '"ok \\u202e gnp.exe"', "U+202E"),
        ("requested_by", '"team\\u200b"', "U+200B"),
        ("reason", '"nul\\0here"', "U+0000"),
    ],
)
def test_free_text_with_hidden_characters_is_refused(
    allowlist: AllowlistDir, field: str, text: str, code: str
) -> None:
    body = (
        '  - name: requests\n    version: "2.32.3"\n    reason: fine\n    requested_by: data\n'
    ).replace(f"    {field}: " + ("fine" if field == "reason" else "data"), f"    {field}: {text}")
    allowlist.write("team.yaml", package(body))
    name, line, message = one_problem(allowlist)
    assert (name, line) == ("team.yaml", 4 if field == "reason" else 5)
    assert code in message and f"'{field}'" in message


def test_an_exception_s_free_text_is_checked_too(allowlist: AllowlistDir) -> None:
    allowlist.write("exceptions.yaml", exception(approved_by='"sec\\u2066urity"'))
    assert "U+2066" in one_problem(allowlist)[2]


@pytest.mark.parametrize("missing", ["reason", "expires", "approved_by"])
def test_exception_lacks_a_field(allowlist: AllowlistDir, missing: str) -> None:
    allowlist.write("exceptions.yaml", exception(**{missing: "-"}))
    name, line, message = one_problem(allowlist)
    assert (name, line) == ("exceptions.yaml", 2)
    assert f"missing the required key '{missing}'" in message


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"expires": "soon"}, "must be a date"),
        ({"id": "not an id"}, "not an advisory id"),
        ({"package": "'-i x'"}, "pip option"),
    ],
)
def test_bad_exception_values(
    allowlist: AllowlistDir, fields: dict[str, str], fragment: str
) -> None:
    allowlist.write("exceptions.yaml", exception(**fields))
    assert fragment in one_problem(allowlist)[2]


# -- every problem in one run -------------------------------------------------------------------


def test_every_problem_in_one_run(allowlist: AllowlistDir) -> None:
    allowlist.write("config.yaml", CONFIG_TEXT.replace("transitive: auto", "transitive: some"))
    allowlist.write(
        "a.yaml",
        package("""\
          - name: requests
            version: 2.0
            reason: x
            requested_by: y
        """),
    )
    allowlist.write("b.yaml", "packages:\n  - name: x\n\tversion: 1\n")
    allowlist.write("exceptions.yaml", exception(expires="2020-01-01"))
    found = [(name, line) for name, line, _ in problems(allowlist)]
    # Sorted by file and line; team.yaml's requests repeats a.yaml's, read first.
    assert found == [
        ("a.yaml", 3),
        ("b.yaml", 3),
        ("config.yaml", 12),
        ("exceptions.yaml", 6),
        ("team.yaml", 2),
    ]


PACKAGES_TEXT = """\
packages:
  - name: requests
    version: "2.32.3"
    reason: HTTP client
    requested_by: data-platform
"""


# -- the bootstrap set -----------------------------------------------------------------------------


def test_bootstrap_names_a_package_file_and_targets(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "config.yaml", CONFIG_TEXT + "bootstrap:\n  file: team.yaml\n  targets: [py312]\n"
    )
    loaded = load(allowlist.path, today=TODAY)
    assert loaded.config.bootstrap is not None
    assert [e.name for e in loaded.bootstrap_packages()] == ["requests"]
    py311, py312 = loaded.config.targets
    assert not loaded.config.bootstrap.enabled_for(py311)
    assert loaded.config.bootstrap.enabled_for(py312)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("  file: missing.yaml\n", "the bootstrap file missing.yaml does not exist in allowlist/"),
        ("  file: config.yaml\n", "'config.yaml' is not a package file name"),
        ("  file: ../team.yaml\n", "'../team.yaml' is not a package file name"),
        ("  file: team.yaml\n  targets: [py310]\n", "bootstrap names target 'py310'"),
    ],
)
def test_bad_bootstrap(allowlist: AllowlistDir, body: str, fragment: str) -> None:
    lines = CONFIG_TEXT.count("\n")
    allowlist.write("config.yaml", CONFIG_TEXT + "bootstrap:\n" + body)
    name, line, text = one_problem(allowlist)
    assert name == "config.yaml" and line in (lines + 2, lines + 3)
    assert fragment in text


def test_policy_keys_of_the_supply_chain_checks(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "config.yaml", CONFIG_TEXT + "  licenses:\n    deny: [GPL-3.0-only, AGPL-3.0-or-later]\n"
    )
    allowlist.write(
        "team.yaml",
        package(
            '  - name: requets\n    version: "1.0"\n    reason: r\n    requested_by: t\n'
            "    not_a_typosquat_of: Requests\n"
            '    cooldown_exempt: "fixes CVE-2026-1234"\n'
        ),
    )
    loaded = load(allowlist.path, today=TODAY)
    assert loaded.config.policy.licenses_deny == ("GPL-3.0-only", "AGPL-3.0-or-later")
    [entry] = loaded.packages
    assert entry.not_a_typosquat_of == "requests"
    assert entry.cooldown_exempt == "fixes CVE-2026-1234"


def test_acknowledged_name_must_be_a_name(allowlist: AllowlistDir) -> None:
    allowlist.write(
        "team.yaml",
        package(
            '  - name: requets\n    version: "1.0"\n    reason: r\n    requested_by: t\n'
            "    not_a_typosquat_of: --index-url\n"
        ),
    )
    name, line, text = one_problem(allowlist)
    assert (name, line) == ("team.yaml", 6)
    assert "not_a_typosquat_of" in text or "looks like a pip option" in text
