"""The stateful-resource guard: no change set that removes or replaces data runs without a named consent."""

from __future__ import annotations

import copy

from perfdeploy.safety import STATEFUL_TYPES

RISKY_REPLACEMENT = ("True", "Conditional")


def refusals(stack_key: str, changes: list[dict], allow_replace: frozenset[str]) -> list[str]:
    """Why each stateful resource in `changes` may not go ahead; empty when the change set is safe.

    `allow_replace` holds `STACK/LOGICAL_ID` entries (from --allow-replace): exactly those pass.
    """
    reasons = []
    for change in changes:
        if change["type"] not in STATEFUL_TYPES or f"{stack_key}/{change['logical_id']}" in allow_replace:
            continue
        if change["action"] == "Remove":
            reasons.append(f"{change['logical_id']} ({change['type']}) would be deleted")
        elif change["action"] == "Modify" and change["replacement"] in RISKY_REPLACEMENT:
            reasons.append(f"{change['logical_id']} ({change['type']}) would be replaced "
                           f"(Replacement: {change['replacement']})")
    return reasons


def allowed_in(stack_key: str, changes: list[dict], allow_replace: frozenset[str]) -> list[str]:
    """Logical ids of stateful resources this change set touches that --allow-replace lets through."""
    return [c["logical_id"] for c in changes
            if c["type"] in STATEFUL_TYPES and f"{stack_key}/{c['logical_id']}" in allow_replace
            and (c["action"] == "Remove" or c["replacement"] in RISKY_REPLACEMENT)]


def relaxed_policy(policy: dict, logical_ids: list[str]) -> dict:
    """The stack policy with the named resources taken out of its Deny statements (for one execution)."""
    relaxed = copy.deepcopy(policy)
    names = {f"LogicalResourceId/{lid}" for lid in logical_ids}
    for statement in relaxed.get("Statement", []):
        if statement.get("Effect") == "Deny":
            resources = statement.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else resources
            statement["Resource"] = [r for r in resources if r not in names]
    relaxed["Statement"] = [s for s in relaxed["Statement"] if s.get("Effect") != "Deny" or s["Resource"]]
    return relaxed
