"""Stack operations as CloudFormation runs them, where moto differs.

- One code path for every create and update (direct or through a change set): outputs and exports are
  recomputed after it, a failing resource fails the stack (CREATE_FAILED, rolled back) with a reason in the
  events instead of an HTTP 500 and a stack stuck in progress.
- Per-resource events, and the aws:cloudformation:* tags on EC2 resources.
- Deletion honours DeletionPolicy Retain and RetainExceptOnCreate (moto deleted the latter), refuses a
  stack with termination protection, and a stack whose resources cannot go is DELETE_FAILED.
- List parameters: Ref gives a list (defaults too, members trimmed), DescribeStacks gives back the string
  the caller passed; NoEcho values are masked (moto compared the value, not the key, with the NoEcho keys).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import AlreadyExistsException, ValidationError
from moto.cloudformation.models import CloudFormationBackend, Event, Stack, cloudformation_backends
from moto.cloudformation.parsing import OutputMap, ResourceMap
from moto.cloudformation.utils import generate_stack_id
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource

from perfdeploy.local import checks, in_place, native, updates
from perfdeploy.local.failures import ResourceFailed, describe_error

NO_UPDATES = "No updates are to be performed."  # UpdateStack's answer when nothing would change


def live_stack(backend: CloudFormationBackend, name_or_id: str) -> Stack | None:
    """The stack of that name or id that is not deleted, if any."""
    if name_or_id in backend.stacks:
        return backend.stacks[name_or_id]
    return next((s for s in backend.stacks.values() if s.name == name_or_id), None)


# Create and update -------------------------------------------------------------------------------------

def run_operation(backend: CloudFormationBackend, stack: Stack, kind: str, template: str,
                  parameters: dict[str, str], tags: dict[str, str] | None, capabilities: list[str] | None,
                  apply: Callable[[], None], disable_rollback: bool = False) -> bool:
    """Run a CREATE or UPDATE of ``stack`` (``apply`` changes its resources); False when it failed (rolled
    back, or with ``disable_rollback`` paused in CREATE_FAILED / UPDATE_FAILED until RollbackStack)."""
    resource_map = stack.resource_map
    before = (resource_map._template, resource_map._resource_json_map, dict(resource_map.input_parameters or {}))
    stack.status = f"{kind}_IN_PROGRESS"
    stack._add_stack_event(stack.status, resource_status_reason="User Initiated")
    try:
        apply()
        resource_map.input_parameters = dict(parameters)
        outputs = OutputMap(resource_map, resource_map._template, stack.stack_id)
        for key in outputs:  # evaluate every output now: one that cannot be resolved fails the operation
            _ = outputs[key]
        exports = outputs.exports
        _check_exports(backend, stack, exports)
    except Exception as exc:  # noqa: BLE001 - any failure of a resource fails the stack, as on AWS
        _fail(stack, kind, template, exc, before, disable_rollback)
        return False
    stack.template = template
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.parameters = dict(parameters)
    stack.output_map = outputs
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        del backend.exports[name]
    backend.exports.update({e.name: e for e in exports})
    if tags:
        if kind == "UPDATE" and dict(tags) != dict(stack.tags or {}):
            _retag(stack, dict(stack.tags or {}), dict(tags))
        stack.tags = dict(tags)
    stack.capabilities = list(capabilities or [])
    stack.failed_operation = None
    stack.status, stack.status_reason = f"{kind}_COMPLETE", None
    if kind == "UPDATE":
        stack.last_updated_time = utcnow()
    stack._add_stack_event(stack.status)
    return True


def _check_exports(backend: CloudFormationBackend, stack: Stack, exports: list[Any]) -> None:
    for export in exports:
        holder = backend.exports.get(export.name)
        if holder is not None and holder.exporting_stack_id != stack.stack_id:
            raise ValidationError(message=f"Export with name {export.name} is already exported by stack "
                                          f"{holder.exporting_stack_id}")


def _fail(stack: Stack, kind: str, template: str, exc: Exception, before: tuple, paused: bool) -> None:
    failed = getattr(exc, "logical_id", None)
    verb = "create" if kind == "CREATE" else "update"
    reason = describe_error(exc)
    stack.status_reason = f"The following resource(s) failed to {verb}: [{failed}]. {reason}" if failed else reason
    stack.failed_operation = (kind, template, before)
    stack.failed_update = getattr(exc, "perfdeploy_update", None)
    if kind == "CREATE":
        stack.template = template
    if paused:  # DisableRollback: stay failed until RollbackStack
        stack.status = f"{kind}_FAILED"
        stack._add_stack_event(stack.status, resource_status_reason=stack.status_reason)
    else:
        roll_back(stack)


def roll_back(stack: Stack) -> None:
    """Undo a failed operation: a failed create deletes what it made (RetainExceptOnCreate included); a failed
    update goes back to the previous template and parameters (the resources it changed stay changed)."""
    kind, _, before = stack.failed_operation
    resource_map = stack.resource_map
    if kind == "CREATE":
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=stack.status_reason)
        resource_map.rolling_back_create = True
        try:
            resource_map.delete()
            stack.status = "ROLLBACK_COMPLETE"
        except Exception as cleanup:  # noqa: BLE001
            stack.status = "ROLLBACK_FAILED"
            stack.status_reason = f"{stack.status_reason}; rollback: {describe_error(cleanup)}"
        stack._add_stack_event(stack.status)
    else:
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=stack.status_reason)
        run = stack.failed_update
        try:
            if run is not None:
                run.undo()  # new resources deleted, replaced ones back, in-place changes reverted
            else:
                updates.restore(resource_map, before)
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(stack.status)
        except Exception as cleanup:  # noqa: BLE001
            stack.status = "UPDATE_ROLLBACK_FAILED"
            stack.status_reason = f"{stack.status_reason}; rollback: {describe_error(cleanup)}"
            stack._add_stack_event(stack.status, resource_status_reason=stack.status_reason)
    stack.failed_update = None
    stack.failed_operation = None


def create_stack(self: CloudFormationBackend, name: str, template: str, parameters: dict[str, Any],
                 notification_arns: list[str] | None = None, tags: dict[str, str] | None = None,
                 role_arn: str | None = None, enable_termination_protection: bool | None = False,
                 timeout_in_mins: int | None = None, stack_policy_body: str | None = None) -> Stack:
    """CreateStack through the same path as a CREATE change set."""
    if live_stack(self, name) is not None:
        raise AlreadyExistsException(f"Stack [{name}] already exists")
    stack = Stack(stack_id=generate_stack_id(name, self.region_name, self.account_id), name=name, template={},
                  parameters=parameters, account_id=self.account_id, region_name=self.region_name,
                  notification_arns=notification_arns, tags=tags, role_arn=role_arn,
                  enable_termination_protection=enable_termination_protection, timeout_in_mins=timeout_in_mins,
                  stack_policy_body=stack_policy_body)
    self.stacks[stack.stack_id] = stack
    body = checks.parse_template(template) if isinstance(template, str) else template
    run_operation(self, stack, "CREATE", template, parameters, tags, [],
                  apply=lambda: stack.resource_map.update(body, parameters))
    return stack


def update_stack(self: CloudFormationBackend, name: str, template: str, role_arn: str | None,
                 parameters: list[dict[str, Any]], tags: dict[str, str] | None) -> Stack:
    """UpdateStack through the same path as an UPDATE change set."""
    stack = self.get_stack(name)
    resolved = self._resolve_update_parameters(instance=stack, incoming_params=parameters)
    body = checks.parse_template(template)
    if not differs(stack, body, resolved, tags):
        raise ValidationError(stack.name, message=NO_UPDATES)
    run_operation(self, stack, "UPDATE", template, resolved, tags, getattr(stack, "capabilities", []),
                  apply=lambda: stack.resource_map.update(body, resolved))
    return stack


# No changes ---------------------------------------------------------------------------------------------

def effective_parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    declared = template.get("Parameters") or {}
    return {name: _as_text(given.get(name, slot.get("Default"))) for name, slot in declared.items()}


def _as_text(value: Any) -> str:
    """A parameter value as CloudFormation compares it: a list is the comma-separated string it came as."""
    if isinstance(value, list):
        return ",".join(str(v).strip() for v in value)
    return str(value)


def differs(stack: Stack, template: dict[str, Any], parameters: dict[str, str],
            tags: dict[str, str] | None) -> bool:
    """Whether an update would change anything: the template (parsed: layout and comments do not count),
    a parameter's effective value (a default included, a list compared as the string given), or the tags
    when they are given. AWS answers "no changes" exactly when none does, with or without parameters."""
    return (template != stack.template_dict
            or effective_parameters(template, parameters)
            != effective_parameters(stack.template_dict, stack.parameters)
            or bool(tags) and dict(tags) != dict(stack.tags or {}))


# Delete -----------------------------------------------------------------------------------------------

def delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
    stack = live_stack(self, name_or_stack_id)
    if stack is None:
        return  # AWS answers success for a stack that does not exist
    if stack.enable_termination_protection:
        raise ValidationError(message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection is "
                                      "enabled")
    for arn in [a for a, cs in self.change_sets.items() if cs.stack_id == stack.stack_id]:
        del self.change_sets[arn]
    stack.status = "DELETE_IN_PROGRESS"
    stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
    try:
        stack.resource_map.delete()
    except Exception as exc:  # noqa: BLE001
        stack.status, stack.status_reason = "DELETE_FAILED", describe_error(exc)
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=stack.status_reason)
        return
    stack.status, stack.deletion_time = "DELETE_COMPLETE", utcnow()
    stack._add_stack_event("DELETE_COMPLETE")
    del self.stacks[stack.stack_id]
    self.deleted_stacks[stack.stack_id] = stack
    for name in [n for n, e in self.exports.items() if e.exporting_stack_id == stack.stack_id]:
        del self.exports[name]


def _delete_resource_honouring_policy(original: Callable) -> Callable:
    def _delete_resource(self: ResourceMap, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        policy = resource_json.get("DeletionPolicy", "Delete")
        creating = getattr(self, "rolling_back_create", False)
        if policy == "Retain" or (policy == "RetainExceptOnCreate" and not creating):
            resource_event(self, parsed_resource, resource_json.get("Type", ""), "DELETE_SKIPPED")
            return
        if not native.delete_resource(parsed_resource, self._account_id, self._region_name):
            original(self, parsed_resource, resource_json)
        resource_event(self, parsed_resource, resource_json.get("Type", ""), "DELETE_COMPLETE")

    return _delete_resource


# Resource events ---------------------------------------------------------------------------------------

def _stack_of(resource_map: ResourceMap) -> Stack | None:
    backend = cloudformation_backends[resource_map._account_id][resource_map._region_name]
    return backend.stacks.get(resource_map.stack_id)


def resource_event(resource_map: ResourceMap, resource: Any, resource_type: str, status: str,
                    reason: str | None = None, logical_id: str | None = None) -> None:
    stack = _stack_of(resource_map)
    if stack is None:
        return
    stack.events.append(Event(
        stack_id=stack.stack_id, stack_name=stack.name,
        logical_resource_id=logical_id or getattr(resource, "logical_resource_id", ""),
        physical_resource_id=getattr(resource, "physical_resource_id", None) if resource is not None else None,
        resource_type=resource_type, resource_status=status, resource_status_reason=reason,
        resource_properties=None,
    ))


def _with_events(operation: Callable, verb: str) -> Callable:
    """Wrap moto's parse_and_create_resource: a failure names its resource, success is an event, and the
    resolved properties are recorded on the resource (updates.py compares them with the next template's)."""

    def run(logical_id: str, resource_json: dict[str, Any], resources_map: ResourceMap, account_id: str,
            region_name: str) -> Any:
        resource_type = resource_json.get("Type", "")
        doing = "UPDATE" if getattr(resources_map, "replacing", None) == logical_id else verb
        try:
            resource = operation(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            failure = ResourceFailed(logical_id, resource_type, describe_error(exc))
            resource_event(resources_map, None, resource_type, f"{doing}_FAILED", failure.reason, logical_id)
            raise failure from exc
        if resource is not None:
            properties = resources_map.resolving.pop(logical_id, {})
            resource = in_place.complete_create(resource, resource_type, logical_id, properties, account_id,
                                                region_name)
            updates.record(resource, properties)
            if isinstance(resource, TaggedEC2Resource):
                _tag(resources_map, resource, logical_id)
            resource_event(resources_map, resource, resource_type, f"{doing}_COMPLETE", logical_id=logical_id)
        return resource

    return run


def _remember_resolved(original: Callable) -> Callable:
    """moto resolves a resource's properties just before creating it: keep them for _with_events."""

    def parse_resource_and_generate_name(logical_id: str, resource_json: dict[str, Any],
                                         resources_map: ResourceMap) -> Any:
        parsed = original(logical_id, resource_json, resources_map)
        if parsed is not None:
            resources_map.resolving[logical_id] = copy.deepcopy(parsed[1].get("Properties") or {})
        return parsed

    return parse_resource_and_generate_name


def _retag(stack: Stack, old: dict[str, str], new: dict[str, str]) -> None:
    """New stack tags reach the EC2 resources, as the old ones did on create (AWS propagates them)."""
    ec2 = ec2_backends[stack.account_id][stack.region_name]
    ids = [r.physical_resource_id for r in stack.resource_map._parsed_resources.values()
           if isinstance(r, TaggedEC2Resource)]
    gone = {k: None for k in old if k not in new}
    if ids and gone:
        ec2.delete_tags(ids, gone)
    if ids and new:
        ec2.create_tags(ids, new)


def _tag(resources_map: ResourceMap, resource: TaggedEC2Resource, logical_id: str) -> None:
    """AWS tags what a stack creates with the stack's tags and aws:cloudformation:* keys."""
    stack = _stack_of(resources_map)
    tags = dict(stack.tags if stack is not None else {})
    tags.update({"aws:cloudformation:stack-name": resources_map["AWS::StackName"],
                 "aws:cloudformation:stack-id": resources_map.stack_id,
                 "aws:cloudformation:logical-id": logical_id})
    ec2_backends[resources_map._account_id][resources_map._region_name].create_tags(
        [resource.physical_resource_id], tags)


# Parameters ------------------------------------------------------------------------------------------------

def _is_list(parameter_type: str) -> bool:
    return parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<")


def _load_parameters(original: Callable) -> Callable:
    def load_parameters(self: ResourceMap) -> None:
        self.resolved_parameters = {}  # moto kept the parameters of earlier templates
        original(self)
        for name, slot in (self._template.get("Parameters") or {}).items():
            value = self.resolved_parameters.get(name)
            if not _is_list(str(slot.get("Type", "String"))):
                continue
            if isinstance(value, str):  # a default: moto only split passed values
                value = value.split(",")
            value = [v.strip() if isinstance(v, str) else v for v in value or []]
            self.resolved_parameters[name] = self._parsed_resources[name] = value

    return load_parameters


def parameter_list(self: Stack) -> list[dict[str, Any]]:
    """Parameters as DescribeStacks gives them: the strings that were passed (or the defaults)."""
    resource_map = self.resource_map
    passed = resource_map.input_parameters or {}
    declared = resource_map._template.get("Parameters") or {}
    masked = {k for k, slot in declared.items() if str(slot.get("NoEcho", "false")).lower() == "true"}
    result = []
    for key, value in resource_map.resolved_parameters.items():
        if key in masked:
            shown = "****"
        elif key in passed:
            shown = str(passed[key])
        elif "Default" in declared.get(key, {}):
            shown = str(declared[key]["Default"])
        elif isinstance(value, list):
            shown = ",".join(str(v) for v in value)
        else:
            shown = str(value)
        result.append({"ParameterKey": key, "ParameterValue": shown})
    return result


def _resource_map_init(original: Callable) -> Callable:
    def __init__(self: ResourceMap, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.resolving = {}

    return __init__


def apply() -> None:
    parsing.parse_and_create_resource = _with_events(parsing.parse_and_create_resource, "CREATE")
    parsing.parse_resource_and_generate_name = _remember_resolved(parsing.parse_resource_and_generate_name)
    ResourceMap.resolving = {}  # replaced per map in _resource_map_init
    ResourceMap.replacing = None
    ResourceMap.__init__ = _resource_map_init(ResourceMap.__init__)
    ResourceMap.update = lambda self, template, parameters=None: updates.update(
        self, template, parameters if parameters is not None else dict(self.input_parameters or {}),
        events=resource_event)
    ResourceMap._delete_resource = _delete_resource_honouring_policy(ResourceMap._delete_resource)
    ResourceMap.load_parameters = _load_parameters(ResourceMap.load_parameters)
    Stack.parameter_list = property(parameter_list)
    Stack.parse_template = staticmethod(checks.parse_template)  # the emulator's one parser (moto's: pure Python)
    Stack.capabilities = []
    Stack.last_updated_time = None
    Stack.deletion_time = None
    Stack.status_reason = None
    Stack.failed_operation = None
    Stack.failed_update = None
    Stack.rollback_configuration = None
    CloudFormationBackend.create_stack = create_stack
    CloudFormationBackend.update_stack = update_stack
    CloudFormationBackend.delete_stack = delete_stack
