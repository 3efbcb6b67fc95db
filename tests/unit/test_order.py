"""Install order: the graph from Requires-Dist, markers and extras per target, and the order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from pipgate.names import NormalizedName
from pipgate.names import normalize as canonicalize_name
from pipgate.order import Graph, dependency_graph, install_order, marker_environments

LINUX_311 = marker_environments("3.11", ["manylinux_2_17_x86_64"])
LINUX_312 = marker_environments("3.12", ["manylinux_2_17_x86_64"])


def graph(
    spec: dict[str, list[str]],
    extras: dict[str, list[str]] | None = None,
    env: list[dict[str, str]] = LINUX_311,
) -> Graph:
    requires = {canonicalize_name(k): [Requirement(r) for r in v] for k, v in spec.items()}
    wanted = {canonicalize_name(k): v for k, v in (extras or {}).items()}
    return dependency_graph(requires, wanted, env)


def order(
    spec: dict[str, list[str]], extras: dict[str, list[str]] | None = None
) -> list[tuple[str, ...]]:
    return [tuple(group) for group in install_order(graph(spec, extras).edges)]


def test_diamond_base_first_top_last_ties_by_name() -> None:
    result = order(
        {
            "top": ["left", "right"],
            "left": ["base>=1"],
            "right": ["base<3"],
            "base": [],
        }
    )
    assert result == [("base",), ("left",), ("right",), ("top",)]


def test_cycle_is_one_group_after_its_dependencies() -> None:
    result = order({"x": ["y", "shared"], "y": ["x"], "shared": [], "app": ["x"]})
    assert result == [("shared",), ("x", "y"), ("app",)]


def test_self_dependency_is_not_a_cycle() -> None:
    assert order({"a": ["a[extra]"]}) == [("a",)]


def test_markers_are_evaluated_for_the_target_not_this_machine() -> None:
    spec = {
        "pkg": [
            "old; python_version < '3.12'",
            "new; python_version >= '3.12'",
            "win; sys_platform == 'win32'",
            "arm; platform_machine == 'aarch64'",
        ],
        "old": [],
        "new": [],
        "win": [],
        "arm": [],
    }
    assert graph(spec, env=LINUX_311).edges[canonicalize_name("pkg")] == {"old"}
    assert graph(spec, env=LINUX_312).edges[canonicalize_name("pkg")] == {"new"}
    windows = marker_environments("3.11", ["win_amd64"])
    assert graph(spec, env=windows).edges[canonicalize_name("pkg")] == {"old", "win"}
    arm = marker_environments("3.12", ["manylinux_2_28_aarch64"])
    assert graph(spec, env=arm).edges[canonicalize_name("pkg")] == {"new", "arm"}


def test_a_target_with_two_platforms_needs_the_union() -> None:
    both = marker_environments("3.11", ["manylinux_2_17_x86_64", "win_amd64"])
    assert graph({"pkg": ["win; sys_platform == 'win32'"], "win": []}, env=both).edges[
        canonicalize_name("pkg")
    ] == {"win"}


def test_extras_from_the_allowlist_and_from_other_packages() -> None:
    spec = {
        "host": ["dep; extra == 'fancy'", "other; extra == 'unused'"],
        "dep": ["deeper; extra == 'more'"],
        "deeper": [],
        "other": [],
        "asker": ["dep[more]"],
    }
    plain = graph(spec)
    assert plain.edges[canonicalize_name("host")] == set()
    assert plain.edges[canonicalize_name("dep")] == {"deeper"}  # asker asks for dep[more]
    with_extra = graph(spec, extras={"host": ["Fancy"]})
    assert with_extra.edges[canonicalize_name("host")] == {"dep"}
    assert with_extra.extras[NormalizedName("host")] == {"fancy"}
    assert order(spec, extras={"host": ["fancy"]}) == [
        ("deeper",),
        ("dep",),
        ("asker",),
        ("host",),
        ("other",),
    ]


def test_a_needed_package_missing_from_the_lock_is_reported() -> None:
    found = graph({"pkg": ["present", "absent>=1; python_version >= '3.8'"], "present": []})
    assert [(u.parent, u.requirement) for u in found.unlocked] == [
        ("pkg", 'absent>=1; python_version >= "3.8"')
    ]


def test_macos_universal2_counts_both_architectures() -> None:
    envs = marker_environments("3.12", ["macosx_11_0_universal2"])
    assert {e["platform_machine"] for e in envs} == {"x86_64", "arm64"}
    assert {e["sys_platform"] for e in envs} == {"darwin"}


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown platform"):
        marker_environments("3.11", ["solaris_sparc"])


names = st.sampled_from([f"p{i}" for i in range(8)])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(names, st.lists(names, max_size=4), min_size=1))
def test_order_is_valid_and_deterministic_for_any_graph(raw: dict[str, list[str]]) -> None:
    spec = {name: [d for d in deps if d in raw] for name, deps in raw.items()}
    edges = graph(spec).edges
    groups = install_order(edges)
    assert sorted(itertools.chain.from_iterable(groups)) == sorted(edges)
    position = {name: i for i, group in enumerate(groups) for name in group}
    for name, dependencies in edges.items():
        for dependency in dependencies:
            # A dependency comes earlier, or shares the group (a cycle).
            assert position[dependency] <= position[name]
            if position[dependency] == position[name]:
                assert len(groups[position[name]]) > 1
    # The same graph given in another key order gives the same order.
    reordered = dict(reversed(list(edges.items())))
    assert install_order(reordered) == groups
