"""Change sets: create (unique name, addressed by ARN), wait, read the changes, execute or delete.

A change set that is not executed is always deleted: a run never leaves one behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from perfdeploy.aws import error_code
from perfdeploy.deploy import operations
from perfdeploy.deploy.waiter import Backoff, poll

# CloudFormation's two ways of saying "nothing to do" (the reason text is all it gives us here).
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


@dataclass
class ChangeSet:
    arn: str
    stack_id: str
    kind: str                       # CREATE | UPDATE
    changes: list[dict] = field(default_factory=list)       # as perfdeploy reports them (summarize)
    resource_changes: list[dict] = field(default_factory=list)  # CloudFormation's ResourceChange, with Details
    empty: bool = False
    executed: bool = False


def unique_name(prefix: str = "perfdeploy") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create(cfn, stack_name: str, kind: str, template: dict, parameters: dict[str, str], tags: dict[str, str],
           capabilities: list[str], rollback: dict | None, backoff: Backoff, stop=None, say=None,
           role_arn: str | None = None) -> ChangeSet:
    """Create a change set and wait until it is ready; an empty one is reported, not failed. With
    ``role_arn`` CloudFormation executes it as that role (the stack's execution role)."""
    kwargs = {
        "StackName": stack_name,
        "ChangeSetName": unique_name(),
        "ChangeSetType": kind,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
        "Capabilities": capabilities,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        "Description": "perfdeploy",
        "ClientToken": operations.request_token(),  # a retried create is the same change set, not a clash
        **template,  # TemplateBody or TemplateURL
    }
    if rollback:
        kwargs["RollbackConfiguration"] = rollback
    if role_arn:
        kwargs["RoleARN"] = role_arn
    created = cfn.create_change_set(**kwargs)
    cs = ChangeSet(arn=created["Id"], stack_id=created["StackId"], kind=kind)
    try:
        desc = poll(lambda: _ready(cfn, cs.arn), backoff, stop, say)
    except BaseException:
        delete(cfn, cs)
        raise
    if desc["Status"] == "FAILED":
        reason = desc.get("StatusReason", "")
        if any(text in reason for text in NO_CHANGES):
            cs.empty = True
            return cs
        delete(cfn, cs)
        raise ChangeSetFailed(reason or "the change set failed")
    cs.resource_changes = _all_changes(cfn, cs.arn, desc)
    cs.changes = [summarize(c) for c in cs.resource_changes]
    return cs


class ChangeSetFailed(Exception):
    """CloudFormation could not make the change set (bad template or parameters)."""


def _ready(cfn, arn: str) -> dict | None:
    desc = cfn.describe_change_set(ChangeSetName=arn)
    return desc if desc["Status"] in ("CREATE_COMPLETE", "FAILED") else None


def _all_changes(cfn, arn: str, first: dict) -> list[dict]:
    pages, token = [first], first.get("NextToken")
    while token:
        page = cfn.describe_change_set(ChangeSetName=arn, NextToken=token)
        pages.append(page)
        token = page.get("NextToken")
    return [c.get("ResourceChange", {}) for page in pages for c in page.get("Changes", [])
            if c.get("Type") == "Resource"]


def summarize(rc: dict) -> dict:
    """One ResourceChange as perfdeploy reports it: action, logical id, type, replacement."""
    return {
        "action": rc.get("Action", ""),
        "logical_id": rc.get("LogicalResourceId", ""),
        "type": rc.get("ResourceType", ""),
        "replacement": rc.get("Replacement", "") if rc.get("Action") == "Modify" else "",
    }


def execute(cfn, cs: ChangeSet, disable_rollback: bool = False) -> None:
    operations.execute_change_set(cfn, cs.arn, disable_rollback)
    cs.executed = True


def delete(cfn, cs: ChangeSet) -> None:
    """Delete an un-executed change set; a CREATE one also leaves an empty REVIEW_IN_PROGRESS stack: drop it."""
    if cs.executed:
        return
    try:
        cfn.delete_change_set(ChangeSetName=cs.arn)
    except ClientError as exc:
        # Gone already, or executing after all (an execute whose answer was lost): nothing to delete.
        if error_code(exc) not in ("ChangeSetNotFound", "ChangeSetNotFoundException", "ValidationError",
                                   "InvalidChangeSetStatus"):
            raise
    if cs.kind == "CREATE":
        try:
            stack = cfn.describe_stacks(StackName=cs.stack_id)["Stacks"][0]
            if stack["StackStatus"] == "REVIEW_IN_PROGRESS":
                operations.delete_stack(cfn, cs.stack_id)
        except ClientError:
            pass
