"""Install order: each package after everything it depends on, for one target.

Pure functions over typed values. The graph comes from each locked file's own
``Requires-Dist``, with environment markers and extras evaluated for the
target (its Python version and each of its platforms), never for the machine
running pipgate. Packages in a dependency cycle form one group, installed in
one pip call. The order is deterministic: among groups that are ready at the
same time, the one whose first name sorts first goes first.
"""

from __future__ import annotations

import dataclasses
import heapq
import re
from collections.abc import Iterable, Mapping, Sequence

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import Requirement

from pipgate.names import NormalizedName, normalize

_ARCH = re.compile(
    r"^(?:manylinux|musllinux)(?:_[0-9]+_[0-9]+|1|2010|2014)_(?P<arch>.+)$|^linux_(?P<plain>.+)$"
)
_MACOS = re.compile(r"^macosx_[0-9]+_[0-9]+_(?P<arch>.+)$")
_WINDOWS = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}
_MACOS_ARCHES = {"universal2": ("x86_64", "arm64"), "universal": ("x86_64",), "intel": ("x86_64",)}


def marker_environments(
    python: str, platforms: Sequence[str], implementation: str = "cp"
) -> list[dict[str, str]]:
    """The PEP 508 marker environments of a target: one per platform (and macOS arch)."""
    full = f"{python}.0"
    common = {
        "python_version": python,
        "python_full_version": full,
        "implementation_name": "cpython" if implementation == "cp" else implementation,
        "platform_python_implementation": "CPython" if implementation == "cp" else implementation,
        "implementation_version": full,
        "platform_release": "",
        "platform_version": "",
    }
    environments = []
    for platform in platforms:
        found = _ARCH.match(platform)
        system: tuple[str, str, str, tuple[str, ...]]
        if found:
            arch = found["arch"] or found["plain"]
            system = ("linux", "Linux", "posix", (arch,))
        elif (mac := _MACOS.match(platform)) is not None:
            system = ("darwin", "Darwin", "posix", _MACOS_ARCHES.get(mac["arch"], (mac["arch"],)))
        elif platform in _WINDOWS:
            system = ("win32", "Windows", "nt", (_WINDOWS[platform],))
        else:
            raise ValueError(f"unknown platform tag {platform}")
        sys_platform, platform_system, os_name, machines = system
        for machine in machines:
            environments.append(
                {
                    **common,
                    "sys_platform": sys_platform,
                    "platform_system": platform_system,
                    "os_name": os_name,
                    "platform_machine": machine,
                }
            )
    return environments


@dataclasses.dataclass(frozen=True)
class Unlocked:
    """A dependency the target needs that the lock does not hold."""

    parent: NormalizedName
    requirement: str


@dataclasses.dataclass(frozen=True)
class Graph:
    edges: Mapping[NormalizedName, frozenset[NormalizedName]]
    """Each package's dependencies, all of them locked packages."""
    extras: Mapping[NormalizedName, frozenset[str]]
    """The extras each package is installed with."""
    unlocked: tuple[Unlocked, ...]


def _applies(
    requirement: Requirement, environments: Sequence[dict[str, str]], extras: Iterable[str]
) -> bool:
    if requirement.marker is None:
        return True
    for environment in environments:
        for extra in ("", *extras):
            try:
                if requirement.marker.evaluate({**environment, "extra": extra}):
                    return True
            except (UndefinedComparison, UndefinedEnvironmentName):
                continue
    return False


def dependency_graph(
    requires: Mapping[NormalizedName, Sequence[Requirement]],
    requested_extras: Mapping[NormalizedName, Iterable[str]],
    environments: Sequence[dict[str, str]],
) -> Graph:
    """The dependencies among locked packages (the keys of ``requires``) on a target.

    ``requested_extras``: the extras the allowlist asks for. Extras that one
    package asks of another are followed too, until nothing changes.
    """
    extras: dict[NormalizedName, set[str]] = {name: set() for name in requires}
    for name, wanted in requested_extras.items():
        if name in extras:
            extras[name].update(str(normalize(e)) for e in wanted)
    edges: dict[NormalizedName, set[NormalizedName]] = {name: set() for name in requires}
    unlocked: set[Unlocked] = set()
    pending = sorted(requires)
    while pending:
        name = pending.pop()
        for requirement in requires[name]:
            if not _applies(requirement, environments, sorted(extras[name])):
                continue
            dependency = normalize(requirement.name)
            if dependency not in requires:
                unlocked.add(Unlocked(name, str(requirement)))
                continue
            if dependency != name:
                edges[name].add(dependency)
            added = {str(normalize(e)) for e in requirement.extras} - extras[dependency]
            if added:
                extras[dependency].update(added)
                pending.append(dependency)
    return Graph(
        edges={n: frozenset(d) for n, d in edges.items()},
        extras={n: frozenset(e) for n, e in extras.items()},
        unlocked=tuple(sorted(unlocked, key=lambda u: (u.parent, u.requirement))),
    )


def _components(
    edges: Mapping[NormalizedName, frozenset[NormalizedName]],
) -> list[list[NormalizedName]]:
    """Strongly connected components (Tarjan, iterative), each sorted by name."""
    index: dict[NormalizedName, int] = {}
    low: dict[NormalizedName, int] = {}
    on_stack: set[NormalizedName] = set()
    stack: list[NormalizedName] = []
    result: list[list[NormalizedName]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[NormalizedName, list[NormalizedName]]] = [(root, sorted(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            if children:
                child = children.pop(0)
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
    return result


def install_order(
    edges: Mapping[NormalizedName, frozenset[NormalizedName]],
) -> list[tuple[NormalizedName, ...]]:
    """Groups of packages in an order where each comes after all it depends on.

    A group holds one package, or every package of a dependency cycle.
    """
    components = _components(edges)
    owner = {name: position for position, group in enumerate(components) for name in group}
    needs: dict[int, set[int]] = {i: set() for i in range(len(components))}
    needed_by: dict[int, set[int]] = {i: set() for i in range(len(components))}
    for name, dependencies in edges.items():
        for dependency in dependencies:
            a, b = owner[name], owner[dependency]
            if a != b:
                needs[a].add(b)
                needed_by[b].add(a)
    ready = [(components[i][0], i) for i, deps in needs.items() if not deps]
    heapq.heapify(ready)
    order: list[tuple[NormalizedName, ...]] = []
    while ready:
        _, current = heapq.heappop(ready)
        order.append(tuple(components[current]))
        for dependent in sorted(needed_by[current]):
            needs[dependent].discard(current)
            if not needs[dependent]:
                heapq.heappush(ready, (components[dependent][0], dependent))
    assert len(order) == len(components), "the component graph has no cycle"
    return order
