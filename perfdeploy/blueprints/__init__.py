"""The stacks of the Performance Management Service, one module each, discovered by their BLUEPRINT."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from perfdeploy.blueprints.base import Blueprint


@cache
def all_blueprints() -> dict[str, Blueprint]:
    """Every blueprint by key, in key order (the deploy order comes from the graph, not from here)."""
    found: dict[str, Blueprint] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        blueprint = getattr(module, "BLUEPRINT", None)
        if isinstance(blueprint, Blueprint):
            if blueprint.key in found:
                raise RuntimeError(f"two blueprints share the key {blueprint.key!r}")
            found[blueprint.key] = blueprint
    return dict(sorted(found.items()))
