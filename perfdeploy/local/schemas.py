"""What the CloudFormation resource provider schemas (as cfn-lint ships them) say about updating a type.

One place decides whether a change replaces a resource, for the change set and for its execution alike:

- a change to a ``createOnlyProperties`` property replaces the resource (``Replacement: True``);
- a change to a ``conditionalCreateOnlyProperties`` property may (``Replacement: Conditional``; the
  emulator executes it as a replacement, since it cannot tell when AWS's handler would update in place —
  for a DynamoDB table's ``KeySchema``, for one, AWS always replaces);
- any other change is an update in place (``Replacement: False``), the physical id kept.

``replacementStrategy: delete_then_create`` says the old resource goes before the new one is made.
Source: the CloudFormation CLI's resource type schema
(https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html) and
"Update behaviors of stack resources"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

REPLACE, CONDITIONAL, IN_PLACE = "True", "Conditional", "False"


@dataclass(frozen=True)
class TypeRules:
    create_only: tuple[tuple[str, ...], ...]       # property paths, ("CidrBlock",), ("A", "B")
    conditional: tuple[tuple[str, ...], ...]
    delete_first: bool
    taggable: bool
    known: bool                                    # False: a type the schemas do not have


def _paths(pointers: list[str]) -> tuple[tuple[str, ...], ...]:
    # "/properties/A/B" -> ("A", "B"); pointers into array items ("*") are left out: their parent list is
    # compared whole where it is itself create-only
    return tuple(tuple(p.split("/")[2:]) for p in pointers if "*" not in p and p.startswith("/properties/"))


@cache
def rules(resource_type: str, region: str = "us-east-1") -> TypeRules:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except Exception:  # noqa: BLE001 - a type cfn-lint does not know (Custom::, a third-party type)
        return TypeRules((), (), False, False, False)
    return TypeRules(_paths(schema.get("createOnlyProperties", [])),
                     _paths(schema.get("conditionalCreateOnlyProperties", [])),
                     schema.get("replacementStrategy") == "delete_then_create",
                     bool((schema.get("tagging") or {}).get("taggable", "Tags" in schema.get("properties", {}))),
                     True)


def at(node: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def changed_properties(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level property names whose values differ."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def replacement(resource_type: str, before: dict[str, Any], after: dict[str, Any], region: str,
                differs=None) -> tuple[str, list[str]]:
    """(Replacement, the properties that decide it) for properties ``before`` -> ``after``.

    ``differs(path, old, new)`` says whether the value at a path changes (default: ``old != new``); the
    change set passes one that also counts a value taking a changed parameter or a replaced resource."""
    differs = differs or (lambda path, old, new: old != new)
    type_rules = rules(resource_type, region)
    forced = [".".join(p) for p in type_rules.create_only if differs(p, at(before, p), at(after, p))]
    if forced:
        return REPLACE, forced
    maybe = [".".join(p) for p in type_rules.conditional if differs(p, at(before, p), at(after, p))]
    if maybe:
        return CONDITIONAL, maybe
    return IN_PLACE, []
