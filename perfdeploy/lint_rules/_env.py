"""What the house rules need to know about a template: its environment, from the blueprint's Metadata."""

from __future__ import annotations


def is_stateful_env(template: dict) -> bool:
    """True for staging/prod templates (the blueprint base writes Metadata.perfdeploy.stateful)."""
    return bool(template.get("Metadata", {}).get("perfdeploy", {}).get("stateful", False))


def resources(template: dict):
    """(logical id, type, properties, resource) for every resource."""
    for lid, res in template.get("Resources", {}).items():
        if isinstance(res, dict):
            yield lid, res.get("Type", ""), res.get("Properties", {}) or {}, res
