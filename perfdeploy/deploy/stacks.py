"""Reading deployed stacks: the small calls every command shares."""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import ClientError

from perfdeploy.aws import error_code


def describe(cfn, name: str) -> dict | None:
    """The stack's description, or None when it does not exist."""
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise


def stack_outputs(stack: dict | None) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}


def stack_parameters(stack: dict | None) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters", [])}


def deployed_template(cfn, name: str) -> str:
    """The deployed template's body as text (boto3 hands JSON bodies back already parsed)."""
    body = cfn.get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    return body if isinstance(body, str) else json.dumps(body, indent=1)


def last_updated(stack: dict) -> str:
    """When the stack last changed: LastUpdatedTime once it has been updated, else CreationTime ("" when the
    answer has neither). It is the stack's own "time the stack was last updated", returned once it has been
    updated at least once, so an update by anyone moves it (boto3 CloudFormation.Stack.last_updated_time,
    https://boto3.amazonaws.com/v1/documentation/api/latest/reference/services/cloudformation/stack/last_updated_time.html)."""
    return str(stack.get("LastUpdatedTime") or stack.get("CreationTime") or "")


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def deployed_stateful(cfn, name: str) -> list[str]:
    """Logical ids of the stateful resources in the deployed stack's template ([] when not deployed)."""
    from cfn_flip import load as load_template

    from perfdeploy.safety import STATEFUL_TYPES

    if describe(cfn, name) is None:
        return []
    resources = load_template(deployed_template(cfn, name))[0].get("Resources", {})
    return sorted(lid for lid, r in resources.items() if r.get("Type") in STATEFUL_TYPES)


def same_template(cfn, name: str, body: str) -> bool:
    """True when the deployed template equals `body` as data (YAML/JSON form and key order do not matter).
    Equal text says so without parsing; only different text is parsed and compared as data."""
    deployed = deployed_template(cfn, name)
    if body_hash(deployed) == body_hash(body):
        return True
    from cfn_flip import load as load_template

    return _plain(load_template(deployed)[0]) == _plain(load_template(body)[0])


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def failure_reason(stack: dict) -> str:
    """Why a stack operation failed: the first failed resource and its reason (set as `_first_failure` by
    the event reader), else the stack's own status reason."""
    failure = stack.get("_first_failure")
    if failure:
        return (f"{failure['LogicalResourceId']} ({failure.get('ResourceType', '')}): "
                f"{failure.get('ResourceStatusReason', failure['ResourceStatus'])}")
    return stack.get("StackStatusReason") or stack["StackStatus"]
