"""The dependency graph of an environment's stacks, derived from blueprint inputs alone (graphlib)."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from perfdeploy.errors import GraphError

if TYPE_CHECKING:  # a deploy orders stacks without importing the blueprints (troposphere): they are rendered
    from perfdeploy.blueprints.base import Blueprint
    from perfdeploy.config import EnvConfig


def dependencies(blueprints: dict[str, Blueprint], cfg: EnvConfig) -> dict[str, set[str]]:
    """key -> the keys of the stacks it takes inputs from; an unknown upstream is a GraphError."""
    deps: dict[str, set[str]] = {}
    for key, blueprint in blueprints.items():
        deps[key] = set()
        for name, item in blueprint.inputs(cfg).items():
            if item.stack not in blueprints:
                raise GraphError(f"input {name} names the unknown stack '{item.stack}' "
                                 f"(known: {', '.join(blueprints)})", file=f"blueprints/{key}", field=name)
            if item.stack == key:
                raise GraphError("a stack cannot take an input from itself", file=f"blueprints/{key}", field=name)
            deps[key].add(item.stack)
    return deps


def deploy_order(deps: dict[str, set[str]]) -> list[str]:
    """A deterministic topological order (ties broken by key); a cycle is a GraphError naming it."""
    sorter = TopologicalSorter(deps)
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise GraphError(f"the stacks' inputs form a cycle: {cycle}; scope one policy by the resource's "
                         "deterministic name instead of an input") from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def dependents(deps: dict[str, set[str]]) -> dict[str, set[str]]:
    """key -> the keys of the stacks that take inputs from it (the reverse edges)."""
    out: dict[str, set[str]] = {key: set() for key in deps}
    for key, upstream in deps.items():
        for up in upstream:
            out[up].add(key)
    return out


def to_text(order: list[str], deps: dict[str, set[str]]) -> str:
    lines = []
    for i, key in enumerate(order, 1):
        after = ", ".join(sorted(deps[key])) or "-"
        lines.append(f"{i:2}. {key:<12} after: {after}")
    return "\n".join(lines)


def to_mermaid(order: list[str], deps: dict[str, set[str]]) -> str:
    lines = ["graph LR"]
    for key in order:
        if not deps[key]:
            lines.append(f"  {key}")
        lines += [f"  {up} --> {key}" for up in sorted(deps[key])]
    return "\n".join(lines)
