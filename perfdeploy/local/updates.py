"""Stack updates as CloudFormation runs them, in place of moto's ``ResourceMap.update``.

moto modified resources in no particular order and by whatever its type's update did: many types were
deleted and created again under a new id (security groups, on a tag change), others not updated at all
(a VPC kept its old CIDR, a table its old key). Here, as on AWS
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html):

- resources are visited in dependency order; each one's properties are resolved against the resources
  as they are now (a replaced upstream resource's new id flows into its dependents);
- a change to a create-only property (schemas.py) replaces the resource: a new one is made (new physical
  id, none of the old one's data), its dependents updated, and the old one deleted at the end (cleanup),
  unless its UpdateReplacePolicy is Retain; a custom-named resource cannot be replaced (AWS's error);
- any other change is made in place (in_place.py) and the physical id kept; a change the emulator cannot
  make fails the update naming the resource and property, never silently ignored;
- resources removed from the template are deleted last (DeletionPolicy honoured);
- a failure undoes what was done, in reverse (new resources deleted, replaced ones restored, in-place
  changes reverted), as CloudFormation's update rollback does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.parsing import ResourceMap

from perfdeploy.local import in_place, schemas
from perfdeploy.local.failures import ResourceFailed, describe_error

CUSTOM_NAME = ("CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename "
               "{name} and update the stack again.")  # https://repost.aws/knowledge-center/cloudformation-custom-name
REPLACING = "Requested update requires the creation of a new physical resource; hence creating one."


# The template's graph ---------------------------------------------------------------------------------

def references(node: Any) -> set[str]:
    """Names a template fragment refers to: Ref, Fn::GetAtt and ${Name} / ${Name.Attr} inside Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value.split(".", 1)[0] if isinstance(value, str) else (value or [None])[0]
                if isinstance(target, str):
                    found.add(target)
                found |= references(value[1:] if isinstance(value, list) else None)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {name.split(".")[0] for name in sub_names(text)}
                found |= references(value[1] if isinstance(value, list) and len(value) > 1 else None)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def sub_names(text: Any) -> list[str]:
    import re

    return re.findall(r"\$\{([^!][^}]*)\}", text) if isinstance(text, str) else []


def dependencies(resources: dict[str, Any]) -> dict[str, set[str]]:
    graph = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn") or []
        depends_on = [depends_on] if isinstance(depends_on, str) else list(depends_on)
        graph[logical_id] = (references(resource) | set(depends_on)) & set(resources) - {logical_id}
    return graph


def dependency_order(resources: dict[str, Any]) -> list[str]:
    return list(TopologicalSorter(dependencies(resources)).static_order())


# Resolved properties ----------------------------------------------------------------------------------

def resolve(resource_map: ResourceMap, resource_json: dict[str, Any]) -> dict[str, Any] | None:
    """The resource's properties with every intrinsic function resolved against the map as it is now."""
    parsed = parsing.parse_resource(copy.deepcopy(resource_json), resource_map)
    return None if parsed is None else dict(parsed[1].get("Properties") or {})


def properties_of(resource: Any) -> dict[str, Any] | None:
    """The resolved properties a resource was created or last updated with (stacks.py records them)."""
    return getattr(resource, "cfn_properties", None)


def record(resource: Any, properties: dict[str, Any]) -> None:
    try:
        resource.cfn_properties = copy.deepcopy(properties)
    except AttributeError:  # a type with __slots__: nothing to compare against later, it is modified
        pass


def _active(resource_map: ResourceMap, resource_json: dict[str, Any]) -> bool:
    condition = resource_json.get("Condition")
    return not condition or bool(resource_map.lazy_condition_map[condition])


def _fail(logical_id: str, resource_type: str, reason: str) -> Exception:
    return ResourceFailed(logical_id, resource_type, reason)


# The update -------------------------------------------------------------------------------------------

@dataclass
class Update:
    """One stack update in progress; ``undo()`` reverts what it has done so far."""

    resource_map: ResourceMap
    before: tuple[Any, ...]
    done: list[Callable[[], None]] = field(default_factory=list)
    cleanup: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)

    @property
    def account(self) -> str:
        return self.resource_map._account_id

    @property
    def region(self) -> str:
        return self.resource_map._region_name

    def undo(self) -> None:
        """Revert in reverse order, then restore the previous template and parameters."""
        errors = []
        for step in reversed(self.done):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest; say what could not be undone
                errors.append(exc)
        self.done.clear()
        restore(self.resource_map, self.before)
        if errors:
            raise errors[0]


def snapshot(resource_map: ResourceMap) -> tuple[Any, ...]:
    return (resource_map._template, resource_map._resource_json_map, dict(resource_map.input_parameters or {}))


def restore(resource_map: ResourceMap, before: tuple[Any, ...]) -> None:
    resource_map._template, resource_map._resource_json_map, resource_map.input_parameters = before
    resource_map.load_mapping()
    resource_map.load_parameters()
    resource_map.load_conditions()


def update(resource_map: ResourceMap, template: dict[str, Any], parameters: dict[str, Any],
           forced: frozenset[str] = frozenset(), events: Any = None) -> Update:
    """Update the stack's resources to ``template``; on failure the exception carries ``undo`` (the
    ``Update``) so the caller rolls back now or, with DisableRollback, when asked."""
    run = Update(resource_map, snapshot(resource_map))
    old_json = dict(resource_map._resource_json_map)
    try:
        resource_map._template = template
        resource_map.input_parameters = dict(parameters)
        resource_map.load_mapping()
        resource_map.load_parameters()
        resource_map.load_conditions()
        resource_map._resource_json_map = template["Resources"]
        new_json = template["Resources"]
        for logical_id in dependency_order(new_json):
            resource_json = new_json[logical_id]
            if not _active(resource_map, resource_json):
                continue
            current = resource_map._parsed_resources.get(logical_id)
            if logical_id not in old_json or current is None:
                _add(run, logical_id)
            else:
                _change(run, logical_id, old_json[logical_id], resource_json, logical_id in forced, events)
        gone = [lid for lid in reversed(dependency_order(old_json))
                if lid in resource_map._parsed_resources and resource_map._parsed_resources[lid] is not None
                and (lid not in new_json or not _active(resource_map, new_json[lid]))]
        _clean_up(run, gone, old_json, events)
    except Exception as exc:
        exc.perfdeploy_update = run  # type: ignore[attr-defined]
        raise
    return run


def _add(run: Update, logical_id: str) -> None:
    resource_map = run.resource_map
    resource_map._parsed_resources.pop(logical_id, None)
    created = resource_map[logical_id]  # moto's lazy map creates it (stacks.py records its properties)

    def undo() -> None:
        resource = resource_map._parsed_resources.pop(logical_id, None)
        if resource is not None:
            _delete(run, resource, {"Type": getattr(created, "cf_resource_type", "")}, force=True)

    if created is not None:
        run.done.append(undo)


def _change(run: Update, logical_id: str, before_json: dict[str, Any], resource_json: dict[str, Any],
            forced: bool, events: Any) -> None:
    resource_map = run.resource_map
    resource = resource_map._parsed_resources[logical_id]
    resource_type = resource_json.get("Type", "")
    after = resolve(resource_map, resource_json)
    if after is None:  # a type with no model at all (moto's NULL_MODELS): nothing to change
        return
    before = properties_of(resource)
    if before is None:
        before = {} if before_json != resource_json else after
    decision, _ = schemas.replacement(resource_type, before, after, run.region)
    if forced or before_json.get("Type") != resource_type or decision != schemas.IN_PLACE:
        _replace(run, logical_id, resource, before_json, resource_json, before, after, events)
        return
    changed = schemas.changed_properties(before, after)
    if not changed:
        return
    updated = in_place.update(resource, resource_type, logical_id, before, after, run.account, run.region)
    record(updated, after)
    resource_map._parsed_resources[logical_id] = updated
    if events is not None:
        events(resource_map, updated, resource_type, "UPDATE_COMPLETE", None, logical_id)

    def undo() -> None:
        reverted = in_place.update(updated, resource_type, logical_id, after, before, run.account, run.region)
        record(reverted, before)
        resource_map._parsed_resources[logical_id] = reverted

    run.done.append(undo)


def _replace(run: Update, logical_id: str, old: Any, before_json: dict[str, Any], resource_json: dict[str, Any],
             before: dict[str, Any], after: dict[str, Any], events: Any) -> None:
    resource_map = run.resource_map
    resource_type = resource_json.get("Type", "")
    delete_first = schemas.rules(resource_type, run.region).delete_first
    name_property = parsing.resource_name_property_from_type(resource_type)
    name = after.get(name_property) if name_property else None
    if name is not None and name == before.get(name_property) and not delete_first:
        raise _fail(logical_id, resource_type, CUSTOM_NAME.format(name=name))
    if events is not None:
        events(resource_map, old, resource_type, "UPDATE_IN_PROGRESS", REPLACING, logical_id)
    if delete_first:
        _delete(run, old, before_json, force=True)
    resource_map._parsed_resources.pop(logical_id, None)
    resource_map.replacing = logical_id
    try:
        new = resource_map[logical_id]
    except Exception:
        if not delete_first:
            resource_map._parsed_resources[logical_id] = old
        raise
    finally:
        resource_map.replacing = None

    def undo() -> None:
        current = resource_map._parsed_resources.pop(logical_id, None)
        if current is not None:
            _delete(run, current, resource_json, force=True)
        if delete_first:  # the old one is gone: make it again from the template it came from
            restored = parsing.parse_and_create_resource(logical_id, before_json, resource_map, run.account,
                                                         run.region)
            resource_map._parsed_resources[logical_id] = restored
        else:
            resource_map._parsed_resources[logical_id] = old

    run.done.append(undo)
    if not delete_first and new is not old:
        run.cleanup.append((logical_id, old, before_json))


def _clean_up(run: Update, gone: list[str], old_json: dict[str, Any], events: Any = None) -> None:
    """After every add and change, dependents first: the resources replaced (UpdateReplacePolicy) and the
    ones removed from the template (DeletionPolicy). As on AWS, a resource the cleanup cannot delete does
    not fail the update: it is left behind with a DELETE_FAILED event."""
    resource_map = run.resource_map
    pending: list[tuple[str | None, Any, dict[str, Any]]] = [
        (None, old, {**before_json, "DeletionPolicy": "Retain" if before_json.get("UpdateReplacePolicy") == "Retain"
                     else "Delete"})
        for _, old, before_json in reversed(run.cleanup)]
    pending += [(lid, resource_map._parsed_resources[lid], old_json[lid]) for lid in gone]
    run.cleanup.clear()
    last_error: Exception | None = None
    while pending:  # a resource another still needs goes in a later pass
        progressed = False
        for item in list(pending):
            logical_id, resource, resource_json = item
            try:
                _delete(run, resource, resource_json)
            except Exception as exc:  # noqa: BLE001
                last_error = exc
                continue
            if logical_id is not None:
                resource_map._parsed_resources.pop(logical_id, None)
            pending.remove(item)
            progressed = True
        if not progressed:
            for logical_id, resource, resource_json in pending:
                if events is not None:
                    events(resource_map, resource, resource_json.get("Type", ""), "DELETE_FAILED",
                           describe_error(last_error), logical_id or getattr(resource, "logical_resource_id", ""))
            return


def _delete(run: Update, resource: Any, resource_json: dict[str, Any], force: bool = False) -> None:
    """Delete through the stack's deletion (policies, events); ``force`` deletes whatever the policy."""
    resource_map = run.resource_map
    if force:
        resource_json = {**resource_json, "DeletionPolicy": "Delete"}
    resource_map._delete_resource(resource, resource_json)
