"""What CloudFormation needs to manage a stack's resources, from AWS's own data shipped in cfn-lint.

- The resource provider schemas list, per resource type, the IAM actions each handler (create, read,
  update, delete) calls: CloudFormation needs exactly those to manage the type.
- Policies.json (cfn-lint's copy of the Service Authorization Reference) says, per action, which resource
  types it can be scoped to; an action with none can only be granted on ``Resource: "*"``.

The execution roles in the iam stack are built from these, so they grant what the templates need and
nothing else, and follow AWS's data when cfn-lint is upgraded.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import cfnlint.data.AdditionalSpecs
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

HANDLERS = ("create", "read", "update", "delete")
SCHEMA_REGION = "us-east-1"


@cache
def _policies() -> dict:
    path = Path(cfnlint.data.AdditionalSpecs.__file__).parent / "Policies.json"
    return {service.lower(): data for service, data in json.loads(path.read_text()).items()}


def _action(action: str) -> dict | None:
    service, _, name = action.partition(":")
    return _policies().get(service.lower(), {}).get("Actions", {}).get(name.lower())


def is_known(action: str) -> bool:
    """True for an action IAM knows (schemas list a few that are no IAM action, e.g. s3:REST.PUT.OBJECT)."""
    return _action(action) is not None


def takes_no_resource(action: str) -> bool:
    """True when AWS grants the action only on every resource (no resource type to scope it to)."""
    found = _action(action)
    return found is not None and not found.get("Resources")


@cache
def handler_actions(resource_type: str) -> frozenset[str]:
    """The IAM actions CloudFormation's handlers call to create, read, update and delete the type."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, resource_type).schema
    handlers = schema.get("handlers", {})
    found = {a for h in HANDLERS for a in handlers.get(h, {}).get("permissions", [])}
    return frozenset(_canonical(a) for a in found if is_known(a))


def actions_for(resource_types: set[str]) -> list[str]:
    """Every action the types' handlers need, sorted."""
    return sorted(set().union(*(handler_actions(t) for t in resource_types)))


def arn_scope(service: str) -> str:
    """An ARN pattern for the service's resources in this account and region (account only, or neither,
    where the service's ARNs carry none: IAM, S3)."""
    formats = [f for r in _policies().get(service.lower(), {}).get("Resources", {}).values()
               for f in r.get("ARNFormats", [])]
    regional = any("${Region}" in f for f in formats) or not formats
    in_account = any("${Account}" in f for f in formats) or not formats
    region = "${AWS::Region}" if regional else ""
    account = "${AWS::AccountId}" if in_account else ""
    return f"arn:${{AWS::Partition}}:{service}:{region}:{account}:*"


def _canonical(action: str) -> str:
    """service:Action with the service in lower case (schemas sometimes write Kafka:...)."""
    service, _, name = action.partition(":")
    return f"{service.lower()}:{re.sub(r'^[a-z]', lambda m: m.group().upper(), name)}"
