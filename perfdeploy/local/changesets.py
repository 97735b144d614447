"""Change sets as CloudFormation runs them, where moto differs.

- CREATE on an existing stack is AlreadyExists; UPDATE on a stack under review or rolled back is refused.
- A change set with nothing to change is FAILED with AWS's reason (moto raised an error instead when the
  template body was byte-identical and parameters were given).
- Changes name the physical resource, say whether a modification replaces it (from the resource schema's
  create-only properties, as cfn-lint ships them) and what happens to data (PolicyAction).
- Executing recomputes the stack's outputs and exports, applies its tags, parameters and capabilities,
  and drops every change set of the stack, as AWS does. A failure rolls the stack back instead of
  answering HTTP 500 (see stacks.py).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from moto.cloudformation.exceptions import AlreadyExistsException, CloudFormationError, ValidationError
from moto.cloudformation.models import Change, ChangeSet, CloudFormationBackend, Stack
from moto.cloudformation.utils import generate_changeset_id, generate_stack_id, validate_create_change_set

from perfdeploy.local import checks, schemas, stacks, updates

NO_CHANGES = ("The submitted information didn't contain changes. Submit different information to create a "
              "change set.")
RETAINING = ("Retain", "RetainExceptOnCreate")


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"


class InvalidChangeSetStatus(CloudFormationError):
    code = "InvalidChangeSetStatus"


def find_change_set(backend: CloudFormationBackend, name_or_arn: str, stack_name: str | None = None) -> ChangeSet:
    if name_or_arn in backend.change_sets:
        return backend.change_sets[name_or_arn]
    for change_set in backend.change_sets.values():
        if change_set.change_set_name == name_or_arn and stack_name in (None, change_set.stack_name,
                                                                          change_set.stack_id):
            return change_set
    raise ChangeSetNotFound(f"ChangeSet [{name_or_arn}] does not exist")


def drop_change_sets(backend: CloudFormationBackend, stack_id: str) -> None:
    for arn in [a for a, cs in backend.change_sets.items() if cs.stack_id == stack_id]:
        del backend.change_sets[arn]


def create_change_set(backend: CloudFormationBackend, stack_name: str, change_set_name: str, template: str,
                      parameters: dict[str, str], change_set_type: str, description: str | None = None,
                      tags: dict[str, str] | None = None, capabilities: list[str] | None = None,
                      notification_arns: list[str] | None = None, role_arn: str | None = None,
                      rollback_configuration: dict | None = None) -> ChangeSet:
    validate_create_change_set(change_set_name)
    live = stacks.live_stack(backend, stack_name)
    if change_set_type == "UPDATE":
        if live is None:
            raise ValidationError(stack_name)
        if live.status in ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
            raise ValidationError(message=f"Stack:{live.stack_id} is in {live.status} state and can not be updated.")
        stack = live
    elif change_set_type == "CREATE":
        if live is not None and live.status != "REVIEW_IN_PROGRESS":
            raise AlreadyExistsException(f"Stack [{stack_name}] already exists")
        stack = live or _review_stack(backend, stack_name, parameters, tags, notification_arns, role_arn)
    else:
        raise ValidationError(message=f"The local emulator does not support ChangeSetType {change_set_type}")

    change_set = ChangeSet(change_set_type=change_set_type,
                           change_set_id=generate_changeset_id(change_set_name, backend.region_name,
                                                               backend.account_id),
                           change_set_name=change_set_name, stack=stack, template=template, parameters=parameters,
                           description=description, notification_arns=notification_arns, tags=tags,
                           role_arn=role_arn)
    change_set.capabilities = list(capabilities or [])
    change_set.rollback_configuration = rollback_configuration
    if change_set_type == "UPDATE" and not _differs(stack, change_set):
        change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
        change_set.status_reason = NO_CHANGES
    else:
        change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"
    backend.change_sets[change_set.change_set_id] = change_set
    return change_set


def _review_stack(backend: CloudFormationBackend, name: str, parameters: dict[str, str],
                  tags: dict[str, str] | None, notification_arns: list[str] | None, role_arn: str | None) -> Stack:
    stack = Stack(stack_id=generate_stack_id(name, backend.region_name, backend.account_id), name=name, template={},
                  parameters=parameters, account_id=backend.account_id, region_name=backend.region_name,
                  notification_arns=notification_arns, tags=tags, role_arn=role_arn)
    backend.stacks[stack.stack_id] = stack
    stack.status = "REVIEW_IN_PROGRESS"
    stack._add_stack_event("REVIEW_IN_PROGRESS", resource_status_reason="User Initiated")
    return stack


def _differs(stack: Stack, change_set: ChangeSet) -> bool:
    return stacks.differs(stack, change_set.template_dict, change_set.parameters, change_set.tags)


def execute_change_set(backend: CloudFormationBackend, change_set_name: str, stack_name: str | None = None,
                       disable_rollback: bool = False) -> None:
    change_set = find_change_set(backend, change_set_name, stack_name)
    if change_set.execution_status != "AVAILABLE":
        raise InvalidChangeSetStatus(f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current "
                                     f"status of [{change_set.status}]")
    stack = backend.stacks[change_set.stack_id]

    def apply() -> None:
        denied = stack_policy_denial(stack, change_set.changes)
        if denied is not None:
            raise stacks.ResourceFailed(denied.logical_resource_id, denied.resource_type,
                                        f"Action denied by stack policy: {_policy_action(denied)} on "
                                        f"LogicalResourceId/{denied.logical_resource_id}")
        forced = frozenset(c.logical_resource_id for c in change_set.changes
                           if c.action == "Modify" and c.replacement == schemas.REPLACE)
        updates.update(stack.resource_map, change_set.template_dict, change_set.parameters, forced=forced,
                       events=stacks.resource_event)

    ok = stacks.run_operation(backend, stack, change_set.change_set_type, change_set.template,
                              change_set.parameters, change_set.tags, change_set.capabilities,
                              apply=apply, disable_rollback=disable_rollback)
    if ok and change_set.rollback_configuration is not None:
        stack.rollback_configuration = change_set.rollback_configuration
    change_set.execution_status = "EXECUTE_COMPLETE" if ok else "EXECUTE_FAILED"
    drop_change_sets(backend, stack.stack_id)


# Stack policies -----------------------------------------------------------------------------------------

def _policy_action(change: Change) -> str:
    if change.action == "Remove":
        return "Update:Delete"
    return "Update:Replace" if change.replacement == "True" else "Update:Modify"


def stack_policy_denial(stack: Stack, changes: list[Change]) -> Change | None:
    """The first change the stack's policy does not allow (moto stored policies without enforcing them).

    As on AWS: an update action on a resource must be allowed by some statement and denied by none; a
    statement matches on Action/NotAction, Resource/NotResource ("LogicalResourceId/<id>", wildcards) and
    a ResourceType condition."""
    if not stack.policy:
        return None
    statements = json.loads(stack.policy).get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    for change in changes:
        if change.action == "Add":
            continue
        action, resource = _policy_action(change), f"LogicalResourceId/{change.logical_resource_id}"
        effects = {st.get("Effect") for st in statements if _applies(st, action, resource, change.resource_type)}
        if "Deny" in effects or "Allow" not in effects:
            return change
    return None


def _applies(statement: dict[str, Any], action: str, resource: str, resource_type: str) -> bool:
    def matches(key: str, value: str) -> bool | None:
        for name, negated in ((key, False), (f"Not{key}", True)):
            if name in statement:
                patterns = statement[name] if isinstance(statement[name], list) else [statement[name]]
                return any(fnmatch.fnmatchcase(value, p) for p in patterns) != negated
        return None

    types: list[str] = []
    for operator, values in (statement.get("Condition") or {}).items():
        wanted = values.get("ResourceType", []) if operator.startswith("String") else []
        types += wanted if isinstance(wanted, list) else [wanted]
    return bool(matches("Action", action)) and bool(matches("Resource", resource)) and (
        not types or any(fnmatch.fnmatchcase(resource_type, t) for t in types))


# Changes ------------------------------------------------------------------------------------------------

def diff(change_set: ChangeSet) -> list[Change]:
    """Add / Modify / Remove per resource, as AWS plans them (updates.py then does exactly that).

    A Modify's Replacement comes from schemas.py: True when a create-only property changes in the template
    or takes a changed parameter (Static), Conditional when it refers to a resource that is itself replaced
    or may be (Dynamic: "RequiresRecreation Always with Evaluation Dynamic is Conditional", the
    ResourceChange API reference), or when a conditionally create-only property changes; a stack tag change
    modifies the taggable resources (Scope Tags)."""
    resource_map = change_set.stack.resource_map
    region = resource_map._region_name
    old = resource_map._resource_json_map
    new = (change_set.template_dict or {}).get("Resources") or {}
    old_params = stacks.effective_parameters(resource_map._template or {}, resource_map.input_parameters or {})
    new_params = stacks.effective_parameters(change_set.template_dict or {}, change_set.parameters or {})
    changed_params = {n for n in set(old_params) | set(new_params) if old_params.get(n) != new_params.get(n)}
    tags_changed = bool(old) and bool(change_set.tags) and change_set.tags != change_set.stack.tags

    changes, replaced = [], set()  # replaced: True or Conditional, so their dependents' values are Dynamic
    for logical_id in updates.dependency_order(new):
        resource = new[logical_id]
        if logical_id not in old:
            changes.append(_change("Add", logical_id, resource))
            replaced.add(logical_id)  # a new resource's values are not known yet either
            continue
        before = old[logical_id]
        uses_changed = (changed_params | replaced) & updates.references(resource)
        if before != resource or uses_changed:
            replacement = _replacement(before, resource, changed_params, replaced, region)
            if replacement != schemas.IN_PLACE:
                replaced.add(logical_id)
            changes.append(_change("Modify", logical_id, resource, resource_map, replacement,
                                   scope=["Properties"]))
        elif tags_changed and schemas.rules(resource.get("Type", ""), region).taggable:
            changes.append(_change("Modify", logical_id, resource, resource_map, schemas.IN_PLACE,
                                   scope=["Tags"]))
    for logical_id, resource in old.items():
        if logical_id not in new:
            changes.append(_change("Remove", logical_id, resource, resource_map))
    return changes


def _replacement(before: dict[str, Any], after: dict[str, Any], changed_params: set[str], replaced: set[str],
                 region: str) -> str:
    if before.get("Type") != after.get("Type"):
        return schemas.REPLACE

    static: list[bool] = []

    def differs(path: tuple[str, ...], old_value: Any, new_value: Any) -> bool:
        names = updates.references(new_value)
        if old_value != new_value or changed_params & names:
            return True
        if replaced & names:
            static.append(False)
            return True
        return False

    decision, _ = schemas.replacement(after.get("Type", ""), before.get("Properties") or {},
                                      after.get("Properties") or {}, region, differs)
    if decision == schemas.REPLACE and static and _only_dynamic(before, after, changed_params, region):
        return schemas.CONDITIONAL
    return decision


def _only_dynamic(before: dict[str, Any], after: dict[str, Any], changed_params: set[str], region: str) -> bool:
    """True when no create-only property changes statically (only through a replaced resource)."""
    decision, _ = schemas.replacement(
        after.get("Type", ""), before.get("Properties") or {}, after.get("Properties") or {}, region,
        lambda path, o, n: o != n or bool(changed_params & updates.references(n)))
    return decision != schemas.REPLACE


def _change(action: str, logical_id: str, resource: dict[str, Any], resource_map: Any = None,
            replacement: str | None = None, scope: list[str] | None = None) -> Change:
    change = Change(action=action, logical_resource_id=logical_id, resource_type=resource.get("Type", ""))
    live = resource_map._parsed_resources.get(logical_id) if resource_map is not None else None
    change.physical_resource_id = getattr(live, "physical_resource_id", None)
    change.scope = scope or []
    change.details = []
    change.replacement = replacement
    if action == "Remove":
        change.policy_action = "Retain" if resource.get("DeletionPolicy") in RETAINING else "Delete"
    elif replacement in (schemas.REPLACE, schemas.CONDITIONAL):
        change.policy_action = {"Retain": "ReplaceAndRetain", "Snapshot": "ReplaceAndSnapshot"}.get(
            resource.get("UpdateReplacePolicy", "Delete"), "ReplaceAndDelete")
    else:
        change.policy_action = None
    return change


def apply() -> None:
    CloudFormationBackend.create_change_set = create_change_set
    CloudFormationBackend.execute_change_set = execute_change_set
    CloudFormationBackend.describe_change_set = lambda self, change_set_name: find_change_set(self, change_set_name)
    CloudFormationBackend.delete_change_set = lambda self, change_set_name: (
        self.change_sets.pop(find_change_set(self, change_set_name).change_set_id))
    ChangeSet.diff = diff
    ChangeSet._parse_template = lambda self: setattr(self, "template_dict", checks.parse_template(self.template))
