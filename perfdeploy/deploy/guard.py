"""The stateful-resource guard: no change set that removes or replaces data runs without a named consent."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Iterable

from perfdeploy.errors import UsageError
from perfdeploy.safety import STATEFUL_TYPES

RISKY_REPLACEMENT = ("True", "Conditional")


def _risk(change: dict) -> str | None:
    """What the change would do to a stateful resource that needs consent ('deleted', 'replaced'), or None."""
    if change["type"] not in STATEFUL_TYPES:
        return None
    if change["action"] == "Remove":
        return "deleted"
    if change["action"] == "Modify" and change["replacement"] in RISKY_REPLACEMENT:
        return "replaced"
    return None


def refusals(stack_key: str, changes: list[dict], allow_replace: frozenset[str]) -> list[str]:
    """Why each stateful resource in `changes` may not go ahead; empty when the change set is safe.

    `allow_replace` holds `STACK/LOGICAL_ID` entries (from --allow-replace): exactly those pass.
    """
    reasons = []
    for change in refused_changes(stack_key, changes, allow_replace):
        reason = f"{change['logical_id']} ({change['type']}) would be {_risk(change)}"
        if change["action"] == "Modify":
            reason += f" (Replacement: {change['replacement']})"
        reasons.append(reason)
    return reasons


def refused_changes(stack_key: str, changes: list[dict], allow_replace: frozenset[str]) -> list[dict]:
    """The changes the guard stops: a stateful resource deleted or replaced without its consent."""
    return [c for c in changes if _risk(c) and f"{stack_key}/{c['logical_id']}" not in allow_replace]


def consent_flags(stack_key: str, changes: list[dict]) -> str:
    """The options that would let these changes through, concrete: `--allow-replace msk/KafkaCluster`."""
    return " ".join(f"--allow-replace {stack_key}/{c['logical_id']}" for c in changes)


def allowed_in(stack_key: str, changes: list[dict], allow_replace: frozenset[str]) -> list[str]:
    """Logical ids of stateful resources this change set touches that --allow-replace lets through."""
    return [c["logical_id"] for c in changes if _risk(c) and f"{stack_key}/{c['logical_id']}" in allow_replace]


def check_consents(consents: Iterable[str], stacks: dict[str, list[str]],
                   deployed: Callable[[str], list[str]]) -> None:
    """Every --allow-replace STACK/LOGICAL_ID must name a stack and one of its stateful resources (the
    only ones the guard stops), so that a typo is an error rather than a consent that matches nothing.

    `stacks` maps each stack key to its template's stateful resources; `deployed(key)` gives the deployed
    stack's, for a consent to remove a resource the new template no longer has."""
    for item in sorted(consents):
        key, _, logical_id = item.partition("/")
        if key not in stacks:
            raise UsageError(f"'{item}': no stack '{key}'{_near(key, stacks)}; the stacks are "
                             f"{', '.join(sorted(stacks))}", field="--allow-replace")
        if logical_id in stacks[key] or logical_id in deployed(key):
            continue
        known = sorted({*stacks[key], *deployed(key)})
        raise UsageError(f"'{item}': the {key} stack has no stateful resource '{logical_id}'"
                         f"{_near(logical_id, known)} (the guard only stops stateful ones; {key} has "
                         f"{', '.join(known) or 'none'})", field="--allow-replace")


def _near(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


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
