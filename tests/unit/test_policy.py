"""Pure parts of the policy step: merging upstream pages, and licences."""

from __future__ import annotations

import pytest

from pipgate.distmeta import CoreMetadata
from pipgate.index import IndexFile, ProjectPage
from pipgate.policy import _merge, declared_license, denied

AGPL = "License :: OSI Approved :: GNU Affero General Public License v3"


def test_pages_merge_times_and_yanks_from_every_source() -> None:
    mirror = ProjectPage((IndexFile("a-1.0-py3-none-any.whl", "u", "h", yanked="bad build"),))
    index = ProjectPage(
        (IndexFile("a-1.0-py3-none-any.whl", "v", "h", upload_time="2026-01-01T00:00:00Z"),),
        status="archived",
    )
    merged = _merge([mirror, index])
    [item] = merged.files
    assert (item.yanked, item.upload_time) == ("bad build", "2026-01-01T00:00:00Z")
    assert merged.status == "archived"


@pytest.mark.parametrize(
    ("declared", "deny", "hit"),
    [
        (("GPL-3.0-only",), ("GPL-3.0-only",), "GPL-3.0-only"),
        (("gpl-3.0-only",), ("GPL-3.0-only",), "GPL-3.0-only"),
        (("MIT OR GPL-3.0-only",), ("GPL-3.0-only",), None),  # a choice: MIT will do
        (("GPL-3.0-only OR AGPL-3.0-only",), ("GPL-3.0-only", "AGPL-3.0-only"), "GPL-3.0-only"),
        (("Apache-2.0 AND GPL-3.0-only",), ("GPL-3.0-only",), "GPL-3.0-only"),
        (("GPL-3.0-or-later",), ("GPL-3.0-only",), None),
        (("MIT", AGPL), (AGPL,), AGPL),
        (("MIT",), (AGPL,), None),
    ],
)
def test_denied(declared: tuple[str, ...], deny: tuple[str, ...], hit: str | None) -> None:
    assert denied(declared, deny) == hit


def meta(
    license: str | None = None,
    license_expression: str | None = None,
    classifiers: tuple[str, ...] = (),
) -> CoreMetadata:
    return CoreMetadata("x", "1", None, (), license, license_expression, classifiers)


def test_declared_license_prefers_the_expression_and_keeps_classifiers() -> None:
    both = meta(license_expression="MIT", license="whatever", classifiers=(AGPL, "Topic :: X"))
    assert declared_license(both) == ("MIT", AGPL)
    text = meta(license="BSD 3-Clause License\n\nCopyright (c) ...")
    assert declared_license(text) == ("BSD 3-Clause License",)
    assert declared_license(meta(license="UNKNOWN")) == ()
    assert declared_license(meta()) == ()
