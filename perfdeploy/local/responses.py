"""The CloudFormation API actions the emulator answers differently from moto (request parsing only;
the behaviour lives in changesets.py and stacks.py)."""

from __future__ import annotations

from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import responses as cfn_responses
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

from perfdeploy.local import changesets, checks, drift, stacks


def _template_body(self: CloudFormationResponse, previous: Any = None) -> str:
    if self._get_bool_param("UsePreviousTemplate", False):
        if previous is None:
            raise ValidationError(message="UsePreviousTemplate needs an existing stack")
        return previous.template
    body = self._get_param("TemplateBody")
    url = self._get_param("TemplateURL")
    if url and not body:
        body = checks.template_from_url(url, self.current_account, self.partition)
    if not body:
        raise ValidationError(message="Either Template URL or Template Body must be specified.")
    return body


def _parameters(self: CloudFormationResponse, previous: dict[str, str]) -> dict[str, str]:
    values = {}
    for item in self._get_param("Parameters", []):
        key = item["ParameterKey"]
        if item.get("UsePreviousValue"):
            if key not in previous:
                raise ValidationError(message=f"Invalid input for parameter key {key}. Cannot specify "
                                              "usePreviousValue as true for a parameter key not in the previous "
                                              "template")
            values[key] = previous[key]
        else:
            values[key] = str(item.get("ParameterValue", ""))
    return values


def create_change_set(self: CloudFormationResponse) -> ActionResult:
    backend = self.cloudformation_backend
    stack_name = self._get_param("StackName")
    live = stacks.live_stack(backend, stack_name)
    body = _template_body(self, live)
    parameters = _parameters(self, dict(live.parameters) if live is not None else {})
    capabilities = self._get_param("Capabilities", [])
    checks.check_template(checks.parse_template(body), parameters, capabilities, backend.account_id,
                          backend.region_name)
    change_set = changesets.create_change_set(
        backend, stack_name=stack_name, change_set_name=self._get_param("ChangeSetName"), template=body,
        parameters=parameters, change_set_type=self._get_param("ChangeSetType", "UPDATE"),
        description=self._get_param("Description"),
        tags={t["Key"]: t["Value"] for t in self._get_param("Tags", [])}, capabilities=capabilities,
        notification_arns=self._get_param("NotificationARNs", []), role_arn=self._get_param("RoleARN"),
        rollback_configuration=self._get_param("RollbackConfiguration"))
    return ActionResult({"Id": change_set.change_set_id, "StackId": change_set.stack_id})


def execute_change_set(self: CloudFormationResponse) -> ActionResult:
    changesets.execute_change_set(self.cloudformation_backend, self._get_param("ChangeSetName"),
                                  self._get_param("StackName"),
                                  disable_rollback=self._get_bool_param("DisableRollback", False))
    return ActionResult({})


def rollback_stack(self: CloudFormationResponse) -> ActionResult:
    """RollbackStack: undo a failure paused with DisableRollback (CREATE_FAILED, UPDATE_FAILED)."""
    stack = _stack(self)
    if stack.status not in ("CREATE_FAILED", "UPDATE_FAILED") or stack.failed_operation is None:
        raise ValidationError(message=f"Stack {stack.stack_id} is in {stack.status} state and can not be "
                                      "rolled back")
    stacks.roll_back(stack)
    return ActionResult({"StackId": stack.stack_id})


def cancel_update_stack(self: CloudFormationResponse) -> ActionResult:
    """The emulator runs every operation to its end before answering: there is never one to cancel."""
    stack = _stack(self)
    raise ValidationError(message=f"CancelUpdateStack cannot be called from current stack status "
                                  f"{stack.status}")


def continue_update_rollback(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self)
    if stack.status != "UPDATE_ROLLBACK_FAILED":
        raise ValidationError(message=f"Stack {stack.stack_id} is in {stack.status} state and can not "
                                      "continue its update rollback")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack._add_stack_event(stack.status)
    return ActionResult({})


def _stack(self: CloudFormationResponse) -> Any:
    stack = stacks.live_stack(self.cloudformation_backend, self._get_param("StackName"))
    if stack is None:
        raise ValidationError(self._get_param("StackName"))
    return stack


def list_change_sets(self: CloudFormationResponse) -> ActionResult:
    """Only the change sets of the stack asked about (moto listed every stack's)."""
    stack_name = self._get_param("StackName")
    summaries = [cs for cs in self.cloudformation_backend.change_sets.values()
                 if stack_name in (cs.stack_name, cs.stack_id)]
    return ActionResult({"Summaries": summaries})


def update_termination_protection(self: CloudFormationResponse) -> ActionResult:
    stack = stacks.live_stack(self.cloudformation_backend, self._get_param("StackName"))
    if stack is None:
        raise ValidationError(self._get_param("StackName"))
    stack.enable_termination_protection = self._get_bool_param("EnableTerminationProtection", False)
    return ActionResult({"StackId": stack.stack_id})


def detect_stack_drift(self: CloudFormationResponse) -> ActionResult:
    """DetectStackDrift, complete when it answers (drift.py)."""
    stack = _stack(self)
    if stack.status not in DRIFT_CHECKABLE:
        raise ValidationError(message=f"Stack {stack.stack_id} is in {stack.status} state; drift cannot be "
                                      "detected")
    return ActionResult({"StackDriftDetectionId": drift.detect(self.cloudformation_backend, stack)})


def describe_stack_drift_detection_status(self: CloudFormationResponse) -> ActionResult:
    detection_id = self._get_param("StackDriftDetectionId")
    found = drift.detections(self.cloudformation_backend).get(detection_id)
    if found is None:
        raise ValidationError(message=f"Drift detection {detection_id} does not exist")
    return ActionResult(found)


def describe_stack_resource_drifts(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self)
    wanted = self._get_param("StackResourceDriftStatusFilters", [])
    drifts = [d for d in getattr(stack, "resource_drifts", None) or []
              if not wanted or d["StackResourceDriftStatus"] in wanted]
    return ActionResult({"StackResourceDrifts": drifts})


def detect_stack_resource_drift(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self)
    logical_id = self._get_param("LogicalResourceId")
    resource = stack.resource_map._parsed_resources.get(logical_id)
    if resource is None or logical_id not in stack.resource_map._resource_json_map:
        raise ValidationError(message=f"Resource {logical_id} does not exist for stack {stack.name}")
    return ActionResult({"StackResourceDrift": drift.resource_drift(stack, logical_id, resource)})


DRIFT_CHECKABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED")


def _checked(action: Any) -> Any:
    """CreateStack / UpdateStack: the same checks as a change set before moto's handler runs."""

    def handler(self: CloudFormationResponse) -> ActionResult:
        backend = self.cloudformation_backend
        live = stacks.live_stack(backend, self._get_param("StackName"))
        body = _template_body(self, live)
        parameters = _parameters(self, dict(live.parameters) if live is not None else {})
        capabilities = self._get_param("Capabilities", [])
        checks.check_template(checks.parse_template(body), parameters, capabilities, backend.account_id,
                              backend.region_name)
        result = action(self)
        stack = stacks.live_stack(backend, self._get_param("StackName"))
        if stack is not None:
            stack.capabilities = list(capabilities)
        return result

    return handler


def apply() -> None:
    transformers = CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER
    transformers["DescribeChangeSetOutput.Tags"] = cfn_responses.transform_dict
    CloudFormationResponse.create_change_set = create_change_set
    CloudFormationResponse.execute_change_set = execute_change_set
    CloudFormationResponse.rollback_stack = rollback_stack
    CloudFormationResponse.cancel_update_stack = cancel_update_stack
    CloudFormationResponse.continue_update_rollback = continue_update_rollback
    CloudFormationResponse.list_change_sets = list_change_sets
    CloudFormationResponse.update_termination_protection = update_termination_protection
    CloudFormationResponse.detect_stack_drift = detect_stack_drift
    CloudFormationResponse.describe_stack_drift_detection_status = describe_stack_drift_detection_status
    CloudFormationResponse.describe_stack_resource_drifts = describe_stack_resource_drifts
    CloudFormationResponse.detect_stack_resource_drift = detect_stack_resource_drift
    # moto's own "no updates" check compared the raw body and only when parameters were passed: stacks.py
    # decides instead, for every UpdateStack
    CloudFormationResponse._validate_different_update = lambda self, params, body, stack: None
    CloudFormationResponse.create_stack = _checked(CloudFormationResponse.create_stack)
    CloudFormationResponse.update_stack = _checked(CloudFormationResponse.update_stack)
    # TemplateURL / StackPolicyURL of the form http://127.0.0.1:PORT/bucket/key (the emulator's own S3)
    cfn_responses.get_stack_from_s3_url = checks.template_from_url
    cfn_models.get_stack_from_s3_url = checks.template_from_url
