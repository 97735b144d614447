"""A fake CloudFormation (and friends) for what the emulator cannot produce: failures, rollback states,
operations in progress, throttling, replacements, and completion in an order the test chooses."""

from __future__ import annotations

import io
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import yaml
from botocore.exceptions import ClientError

from perfdeploy.aws import Aws
from perfdeploy.deploy.diff import references
from perfdeploy.template_loader import load as load_template

_ids = itertools.count(1)


def client_error(code: str, message: str, op: str = "Op", status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


@dataclass
class FakeStack:
    name: str
    status: str
    template: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    termination_protection: bool = False
    policy: str | None = None
    stack_id: str = ""
    generation: int = 0   # bumped when an execution replaces a resource: outputs (ids) change
    rollback_configuration: dict | None = None   # the triggers CloudFormation saved with the stack
    tokens: set = field(default_factory=set)     # ClientRequestTokens of operations started on it
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime | None = None              # LastUpdatedTime: set by every update, whoever makes it

    def touch(self) -> None:
        """An update started: LastUpdatedTime moves on (strictly, however fast the test runs)."""
        now = datetime.now(UTC)
        self.updated = max(now, (self.updated or self.created) + timedelta(microseconds=1))
    role_arn: str | None = None                  # the service role its last operation ran as (kept by AWS)

    def describe(self) -> dict:
        described = {"StackName": self.name, "StackId": self.stack_id, "StackStatus": self.status,
                     "CreationTime": self.created,
                     "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
                     "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
                     "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()],
                     "EnableTerminationProtection": self.termination_protection}
        if self.rollback_configuration is not None:
            described["RollbackConfiguration"] = self.rollback_configuration
        if self.updated is not None:
            described["LastUpdatedTime"] = self.updated
        if self.role_arn:
            described["RoleARN"] = self.role_arn
        return described


class FakeCloudFormation:
    """Stacks in memory, answering as CloudFormation does. Knobs:
    - fail[stack_name] = (logical_id, reason): executing that stack's change set fails there (ROLLBACK_COMPLETE on
      create, UPDATE_ROLLBACK_COMPLETE on update);
    - gates[stack_name] = threading.Event: execution blocks until the test sets it (completion order);
    - replacement[(stack_name, logical_id)] = "True" | "Conditional": reported on Modify;
    - throttle_describes = N: the next N describe_stacks calls raise Throttling;
    - errors[operation] = [exception, ...]: the next calls of that operation raise these, one each;
    - in_progress[stack_name] = N: the stack reports *_IN_PROGRESS for N more describes, then settles (and
      on_settle[stack_name](stack) runs: another operation's result lands);
    - failed_resources[stack_name] = {logical_id}: resources in UPDATE_FAILED (what ResourcesToSkip may name).
    Like AWS: change sets carry Details (what changed, why, whether it recreates the resource); the stack keeps
    the rollback triggers it was last given (RollbackConfiguration omitted = keep them), and an update under a
    trigger that is in ALARM or no longer exists rolls back; the RoleARN a change set ran as stays the stack's;
    a repeated call with the ClientRequestToken of an operation already started is answered as the first was,
    without it the state decides.
    """

    def __init__(self):
        self.stacks: dict[str, FakeStack] = {}
        self.change_sets: dict[str, dict] = {}
        self.fail: dict[str, tuple[str, str]] = {}
        self.gates: dict[str, threading.Event] = {}
        self.replacement: dict[tuple[str, str], str] = {}
        self.throttle_describes = 0
        self.errors: dict[str, list[Exception]] = {}
        self.in_progress: dict[str, int] = {}
        self.on_settle: dict[str, object] = {}
        self.failed_resources: dict[str, set[str]] = {}
        self.alarms: FakeCloudWatch | None = None   # set by FakeAws: the alarms rollback triggers watch
        self.calls: list[tuple[str, dict]] = []
        self.policy_history: list[tuple[str, str]] = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.RLock()

    # helpers
    def _log(self, op: str, **kwargs) -> None:
        with self.lock:
            self.calls.append((op, kwargs))
            queued = self.errors.get(op)
            if queued:
                raise queued.pop(0)

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)

    def args(self, op: str) -> list[dict]:
        """The arguments of every call of an operation, in order."""
        return [kwargs for name, kwargs in self.calls if name == op]

    def _stack(self, name_or_id: str) -> FakeStack:
        for stack in self.stacks.values():
            if name_or_id in (stack.name, stack.stack_id):
                return stack
        raise client_error("ValidationError", f"Stack with id {name_or_id} does not exist", "DescribeStacks")

    def put(self, name: str, status: str, template: dict | None = None, **kwargs) -> FakeStack:
        stack = FakeStack(name, status, template or {}, stack_id=f"arn:aws:cloudformation:us-east-1:123456789012:"
                          f"stack/{name}/{next(_ids)}", **kwargs)
        self.stacks[name] = stack
        return stack

    def throttle(self, knob: str, op: str) -> None:
        """Raise Throttling while the counter `knob` (e.g. throttle_describes) is above zero, counting it down."""
        with self.lock:
            if getattr(self, knob) > 0:
                setattr(self, knob, getattr(self, knob) - 1)
                raise client_error("Throttling", "Rate exceeded", op)

    @staticmethod
    def _repeated(stack: FakeStack, token: str | None) -> bool:
        """True for a retry of an operation already started (same token); remembers new tokens."""
        if token is None:
            return False
        if token in stack.tokens:
            return True
        stack.tokens.add(token)
        return False

    # the API
    def describe_stacks(self, StackName):
        self._log("describe_stacks", StackName=StackName)
        self.throttle("throttle_describes", "DescribeStacks")
        stack = self._stack(StackName)
        if self.in_progress.get(stack.name):
            self.in_progress[stack.name] -= 1
            if not self.in_progress[stack.name]:
                settled = {"UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_COMPLETE",
                           "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_COMPLETE"}
                stack.status = settled.get(stack.status, stack.status.replace("_IN_PROGRESS", "_COMPLETE"))
                if stack.name in self.on_settle:
                    self.on_settle.pop(stack.name)(stack)
        return {"Stacks": [stack.describe()]}

    def describe_stack_events(self, StackName, NextToken=None):
        stack = self._stack(StackName)
        return {"StackEvents": list(reversed(stack.events))}

    def get_template(self, StackName, TemplateStage="Original"):
        self._log("get_template", StackName=StackName)
        return {"TemplateBody": yaml.safe_dump(self._stack(StackName).template)}

    def create_change_set(self, StackName, ChangeSetName, ChangeSetType, Parameters, Tags, Capabilities,
                          Description="", TemplateBody=None, TemplateURL=None, RollbackConfiguration=None,
                          ClientToken=None, RoleARN=None):
        self._log("create_change_set", StackName=StackName, ChangeSetType=ChangeSetType,
                  RollbackConfiguration=RollbackConfiguration, TemplateURL=TemplateURL, ClientToken=ClientToken,
                  RoleARN=RoleARN)
        template = load_template(TemplateBody) if TemplateBody else {"Resources": {}}
        with self.lock:
            if ChangeSetType == "CREATE":
                if StackName in self.stacks and self.stacks[StackName].status != "REVIEW_IN_PROGRESS":
                    raise client_error("AlreadyExistsException", f"Stack [{StackName}] already exists")
                stack = self.stacks.get(StackName) or self.put(StackName, "REVIEW_IN_PROGRESS")
                old: dict = {}
            else:
                stack = self._stack(StackName)
                if stack.status in ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED",
                                    "UPDATE_ROLLBACK_FAILED") or stack.status.endswith("_IN_PROGRESS"):
                    raise client_error("ValidationError", f"Stack:{stack.stack_id} is in {stack.status} state and "
                                       "can not be updated.", "CreateChangeSet")
                old = stack.template
            params = {p["ParameterKey"]: p["ParameterValue"] for p in Parameters}
            changes = resource_changes(old, template, stack.parameters, params,
                                       lambda lid: self.replacement.get((StackName, lid), "False"))
            arn = f"arn:aws:cloudformation:us-east-1:123456789012:changeSet/{ChangeSetName}/{next(_ids)}"
            tags = {t["Key"]: t["Value"] for t in Tags}
            # "No changes" only when nothing at all differs: an outputs-only change is a change set too.
            empty = ChangeSetType == "UPDATE" and template == stack.template and params == stack.parameters \
                and tags == stack.tags
            self.change_sets[arn] = {
                "ChangeSetId": arn, "StackId": stack.stack_id, "StackName": StackName, "Type": ChangeSetType,
                "Status": "FAILED" if empty else "CREATE_COMPLETE",
                "StatusReason": "The submitted information didn't contain changes. Submit different information "
                                "to create a change set." if empty else "",
                "Changes": changes, "template": template, "params": params, "tags": tags,
                "rollback": RollbackConfiguration, "role": RoleARN,
            }
        return {"Id": arn, "StackId": stack.stack_id}

    def describe_change_set(self, ChangeSetName, NextToken=None):
        if ChangeSetName not in self.change_sets:
            raise client_error("ChangeSetNotFound", f"ChangeSet [{ChangeSetName}] does not exist")
        cs = self.change_sets[ChangeSetName]
        return {k: v for k, v in cs.items() if k[0].isupper()}

    def delete_change_set(self, ChangeSetName):
        self._log("delete_change_set", ChangeSetName=ChangeSetName)
        self.change_sets.pop(ChangeSetName, None)

    def list_change_sets(self, StackName):
        return {"Summaries": [{"ChangeSetId": a} for a, cs in self.change_sets.items()
                              if cs["StackName"] == StackName]}

    def execute_change_set(self, ChangeSetName, DisableRollback=False, ClientRequestToken=None):
        self._log("execute_change_set", ChangeSetName=ChangeSetName, DisableRollback=DisableRollback,
                  ClientRequestToken=ClientRequestToken)
        with self.lock:
            if ChangeSetName not in self.change_sets:
                executed = [s for s in self.stacks.values() if ClientRequestToken in s.tokens]
                if ClientRequestToken is not None and executed:
                    return {}   # a retry of the execution already under way
                raise client_error("ChangeSetNotFound", f"ChangeSet [{ChangeSetName}] does not exist",
                                   "ExecuteChangeSet")
            cs = self.change_sets[ChangeSetName]
            stack = self._stack(cs["StackId"])
            self._repeated(stack, ClientRequestToken)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            # AWS drops every change set of a stack once one executes
            for arn in [a for a, c in self.change_sets.items() if c["StackId"] == stack.stack_id]:
                del self.change_sets[arn]
            if cs["rollback"] is not None:   # given: replaces the saved triggers (an empty list detaches)
                stack.rollback_configuration = cs["rollback"]
            if cs["role"]:                   # given: the stack keeps it for later operations, delete included
                stack.role_arn = cs["role"]
        creating = cs["Type"] == "CREATE"
        stack.status = "CREATE_IN_PROGRESS" if creating else "UPDATE_IN_PROGRESS"
        if not creating:
            stack.touch()
        threading.Thread(target=self._finish, args=(stack, cs, creating, DisableRollback), daemon=True).start()
        return {}

    def _trigger_failure(self, stack: FakeStack) -> str | None:
        """Why the stack's rollback triggers stop this operation: an alarm in ALARM, or one that is gone."""
        for trigger in (stack.rollback_configuration or {}).get("RollbackTriggers", []):
            name = trigger["Arn"].split(":alarm:", 1)[-1]
            state = self.alarms.states.get(name) if self.alarms is not None else None
            if state is None:
                return f"rollback trigger {trigger['Arn']} does not exist"
            if state == "ALARM":
                return f"rollback triggered by {trigger['Arn']} in ALARM"
        return None

    def _finish(self, stack: FakeStack, cs: dict, creating: bool, disable_rollback: bool) -> None:
        gate = self.gates.get(stack.name)
        if gate is not None:
            gate.wait(10)
        with self.lock:
            self.running -= 1
            failure = self.fail.get(stack.name)
            triggered = self._trigger_failure(stack)
            if failure or triggered:
                lid, reason = failure or (stack.name, triggered)
                stack.events.append(_event(stack, lid, "CREATE_FAILED" if creating else "UPDATE_FAILED", reason))
                if disable_rollback and not triggered:
                    stack.status = "CREATE_FAILED" if creating else "UPDATE_FAILED"
                else:
                    stack.status = "ROLLBACK_COMPLETE" if creating else "UPDATE_ROLLBACK_COMPLETE"
                return
            stack.template, stack.parameters, stack.tags = cs["template"], cs["params"], cs["tags"]
            if any(c["ResourceChange"].get("Replacement") == "True" for c in cs["Changes"]):
                stack.generation += 1
            suffix = f"#{stack.generation}" if stack.generation else ""
            stack.outputs = {name: f"{stack.name}:{name}{suffix}" for name in cs["template"].get("Outputs", {})}
            stack.outputs.update({name: f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{stack.name}-{name}"
                                  for name in stack.outputs if name.endswith("AlarmArn")})
            for name in stack.outputs:
                if name.endswith("AlarmArn") and self.alarms is not None:
                    self.alarms.states.setdefault(f"{stack.name}-{name}", "OK")
            stack.status = "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE"
            stack.events.append(_event(stack, stack.name, stack.status, ""))

    def delete_stack(self, StackName, ClientRequestToken=None):
        self._log("delete_stack", StackName=StackName, ClientRequestToken=ClientRequestToken)
        stack = self._stack(StackName)
        stack.status = "DELETE_COMPLETE"
        del self.stacks[stack.name]
        self.stacks[f"deleted:{stack.stack_id}"] = stack

    def update_termination_protection(self, StackName, EnableTerminationProtection):
        self._log("update_termination_protection", StackName=StackName,
                  EnableTerminationProtection=EnableTerminationProtection)
        self._stack(StackName).termination_protection = EnableTerminationProtection

    def set_stack_policy(self, StackName, StackPolicyBody):
        self._log("set_stack_policy", StackName=StackName)
        stack = self._stack(StackName)
        stack.policy = StackPolicyBody
        self.policy_history.append((stack.name, StackPolicyBody))

    def get_stack_policy(self, StackName):
        self._log("get_stack_policy", StackName=StackName)
        policy = self._stack(StackName).policy
        return {"StackPolicyBody": policy} if policy is not None else {}   # AWS leaves the key out when none

    def cancel_update_stack(self, StackName, ClientRequestToken=None):
        self._log("cancel_update_stack", StackName=StackName, ClientRequestToken=ClientRequestToken)
        stack = self._stack(StackName)
        if self._repeated(stack, ClientRequestToken) and stack.status.startswith("UPDATE_ROLLBACK"):
            return {}
        if stack.status != "UPDATE_IN_PROGRESS":
            raise client_error("ValidationError", "CancelUpdateStack cannot be called from current stack status",
                               "CancelUpdateStack")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
        return {}

    def continue_update_rollback(self, StackName, ResourcesToSkip=(), ClientRequestToken=None):
        self._log("continue_update_rollback", StackName=StackName, ResourcesToSkip=list(ResourcesToSkip),
                  ClientRequestToken=ClientRequestToken)
        stack = self._stack(StackName)
        if self._repeated(stack, ClientRequestToken) and stack.status.startswith("UPDATE_ROLLBACK"):
            return {}
        if stack.status != "UPDATE_ROLLBACK_FAILED":
            raise client_error("ValidationError", "ContinueUpdateRollback cannot be called from current stack "
                               "status", "ContinueUpdateRollback")
        failed = self.failed_resources.get(stack.name, set())
        for lid in ResourcesToSkip:
            if lid not in failed:
                raise client_error("ValidationError", f"Resource [{lid}] is not in UPDATE_FAILED state: only "
                                   "resources that failed to update can be skipped", "ContinueUpdateRollback")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
        return {}

    def rollback_stack(self, StackName, ClientRequestToken=None):
        self._log("rollback_stack", StackName=StackName, ClientRequestToken=ClientRequestToken)
        stack = self._stack(StackName)
        if self._repeated(stack, ClientRequestToken):
            return {"StackId": stack.stack_id}
        if stack.status not in ("CREATE_FAILED", "UPDATE_FAILED"):
            raise client_error("ValidationError", f"Stack {stack.stack_id} is in {stack.status} state and can not "
                               "be rolled back", "RollbackStack")
        stack.status = "ROLLBACK_COMPLETE" if stack.status == "CREATE_FAILED" else "UPDATE_ROLLBACK_COMPLETE"
        return {"StackId": stack.stack_id}


RECREATION = {"True": "Always", "Conditional": "Conditionally", "False": "Never"}


def resource_changes(old: dict, new: dict, old_params: dict, new_params: dict, replacement) -> list[dict]:
    """The Changes of a change set as CloudFormation describes them (ResourceChange with Scope and Details):
    a property that differs is a DirectModification, one that takes a changed parameter a ParameterReference;
    a resource that Refs a replaced one, or GetAtts a modified one, is modified Dynamically by it."""
    before, after = old.get("Resources") or {}, new.get("Resources") or {}
    changed_params = {n for n in set(old_params) | set(new_params) if old_params.get(n) != new_params.get(n)}
    details: dict[str, list[dict]] = {}
    for lid, res in after.items():
        if lid not in before:
            continue
        found = []
        old_props, new_props = before[lid].get("Properties") or {}, res.get("Properties") or {}
        for name in sorted(set(old_props) | set(new_props)):
            recreation = RECREATION.get(replacement(lid), "Never")
            target = {"Attribute": "Properties", "Name": name, "RequiresRecreation": recreation}
            if old_props.get(name) != new_props.get(name):
                found.append({"Target": target, "Evaluation": "Static", "ChangeSource": "DirectModification"})
            for param in sorted(references(new_props.get(name))[0] & changed_params):
                found.append({"Target": target, "Evaluation": "Static", "ChangeSource": "ParameterReference",
                              "CausingEntity": param})
        if found:
            details[lid] = found
    for _ in range(len(after)):   # consequences inside the stack, until nothing new follows
        grew = False
        replaced = {lid for lid in details if replacement(lid) == "True"}
        for lid, res in after.items():
            if lid not in before:
                continue
            for name, value in sorted((res.get("Properties") or {}).items()):
                refs, atts = references(value)
                causes = [(r, "ResourceReference") for r in sorted(refs & replaced)]
                causes += [(a, "ResourceAttribute") for a in sorted(atts & set(details))]
                for cause, source in causes:
                    detail = {"Target": {"Attribute": "Properties", "Name": name,
                                         "RequiresRecreation": RECREATION.get(replacement(lid), "Never")},
                              "Evaluation": "Dynamic", "ChangeSource": source, "CausingEntity": cause}
                    if detail not in details.setdefault(lid, []):
                        details[lid].append(detail)
                        grew = True
        if not grew:
            break
    changes = [_change("Add", lid, res["Type"]) for lid, res in after.items() if lid not in before]
    changes += [_change("Modify", lid, res["Type"], replacement(lid), details[lid])
                for lid, res in after.items() if lid in details]
    changes += [_change("Remove", lid, res["Type"]) for lid, res in before.items() if lid not in after]
    return changes


def _change(action: str, lid: str, rtype: str, replacement: str = "", details: list | None = None) -> dict:
    rc = {"Action": action, "LogicalResourceId": lid, "ResourceType": rtype, "Scope": [], "Details": []}
    if action == "Modify":
        rc.update(Replacement=replacement, Scope=["Properties"], Details=details or [])
    return {"Type": "Resource", "ResourceChange": rc}


def _event(stack: FakeStack, lid: str, status: str, reason: str) -> dict:
    return {"EventId": f"e{next(_ids)}", "StackName": stack.name, "LogicalResourceId": lid,
            "ResourceType": "AWS::CloudFormation::Stack" if lid == stack.name else "AWS::Fake::Thing",
            "ResourceStatus": status, "ResourceStatusReason": reason}


class FakeEcr:
    def __init__(self, tags: set[str] | None = None):
        self.tags = tags if tags is not None else {"latest"}

    def describe_images(self, repositoryName, imageIds):
        if imageIds[0]["imageTag"] not in self.tags:
            raise client_error("ImageNotFoundException", "image not found")
        return {"imageDetails": [{}]}


class FakeCloudWatch:
    """Alarms by name: states[name] = OK | ALARM | INSUFFICIENT_DATA; kinds[name] = "composite" (default) or
    "metric". Every alarm a fake stack names (an output ending in AlarmArn) exists, in OK, unless removed."""

    def __init__(self):
        self.states: dict[str, str] = {}
        self.kinds: dict[str, str] = {}

    def describe_alarms(self, AlarmNames, AlarmTypes=()):
        found = [(n, self.states[n], self.kinds.get(n, "composite")) for n in AlarmNames if n in self.states]
        return {"CompositeAlarms": [{"AlarmName": n, "StateValue": s} for n, s, k in found if k == "composite"],
                "MetricAlarms": [{"AlarmName": n, "StateValue": s} for n, s, k in found if k == "metric"]}


class FakeSts:
    """STS as the local emulator answers it: a loopback endpoint (so preflight treats the fakes as the emulator,
    whose account is the documented placeholder the shipped config uses) and its caller."""

    meta = SimpleNamespace(endpoint_url="http://127.0.0.1:4566")

    def get_caller_identity(self):
        return {"Account": FakeAws.account_id, "Arn": f"arn:aws:iam::{FakeAws.account_id}:user/fake"}


class FakeAws:
    """Stands in for perfdeploy.aws.Aws: one fake client per service."""

    endpoint_url = None
    account_id = "123456789012"
    on_retry = None

    def __init__(self, cfn: FakeCloudFormation | None = None, region: str = "us-east-1", **clients):
        self.region = region
        self.clients = {"cloudformation": cfn or FakeCloudFormation(), "ecr": FakeEcr(),
                        "cloudwatch": FakeCloudWatch(), "s3": FakeS3(), "sts": FakeSts(), **clients}
        cfn = self.clients["cloudformation"]
        if cfn.alarms is None:
            cfn.alarms = self.clients["cloudwatch"]

    partition = Aws.partition      # from the region, through botocore's data, as the real one
    dns_suffix = Aws.dns_suffix

    def client(self, service: str):
        return self.clients[service]

    @property
    def session(self):
        import boto3

        return boto3.Session(region_name=self.region)  # partition data only, no call


def tiny_environment(edges: dict[str, list[str]], env: str = "dev", image_stack: str | None = None,
                     resource_type: str = "AWS::SNS::Topic", extra: dict[str, dict] | None = None,
                     guarded: tuple[str, ...] = (), outputs: dict[str, list[str]] | None = None, version: int = 1,
                     out: dict[str, dict] | None = None):
    """A rendered environment of small stacks with the given edges (key -> upstream keys).

    Each stack has one resource (of `resource_type`, or `extra[key]` resources) and an output `Out`, the Ref of
    its first resource unless `out[key]` gives its value; each input P_<up> takes `Out` from its upstream.
    `image_stack` gets the image_tag argument and the registry's RepositoryName input, like the ecs stack.
    """
    from troposphere import Output, Parameter, Ref, Template

    from perfdeploy.blueprints.base import Arg, Blueprint, Input
    from perfdeploy.config import load_config
    from perfdeploy.render import render_env

    class Tiny(Blueprint):
        description = "tiny"

        def __init__(self, key):
            self.key = key
            self.guarded_by_rollback_trigger = key in guarded

        def inputs(self, cfg):
            return {f"P{up}": Input(up, "Out") for up in edges[self.key]}

        def args(self, cfg):
            return {"ImageTag": Arg("image_tag", "latest")} if self.key == image_stack else {}

        def build(self, cfg):
            t = Template()
            for name in list(self.inputs(cfg)) + list(self.args(cfg)):
                t.add_parameter(Parameter(name, Type="String"))
            resources = (extra or {}).get(self.key) or {"Thing": {"Type": resource_type,
                                                                  "Properties": {"V": version}}}
            for lid, res in resources.items():
                t.resources[lid] = _Raw(lid, res)
            t.add_output(Output("Out", Value=(out or {}).get(self.key) or Ref(next(iter(resources)))))
            if self.key == "registry":
                t.add_output(Output("RepositoryName", Value="repo"))
            for extra_output in (outputs or {}).get(self.key, []):
                t.add_output(Output(extra_output, Value="x"))
            return t

    cfg = load_config(env)
    return render_env(cfg, {key: Tiny(key) for key in edges})


class _Raw:
    """A resource given as plain data (troposphere's Template accepts anything with to_dict)."""

    def __init__(self, title, data):
        self.title, self.data = title, data
        self.resource_type = data["Type"]

    def to_dict(self):
        return self.data


class FakeS3:
    """Just enough S3 for the artifacts bucket: objects, conditional puts, listing."""

    def __init__(self):
        self.buckets: dict[str, dict[str, bytes]] = {}
        self.lock = threading.Lock()

    def head_bucket(self, Bucket):
        if Bucket not in self.buckets:
            raise client_error("404", "Not Found", "HeadBucket", 404)

    def create_bucket(self, Bucket, **kwargs):
        self.buckets.setdefault(Bucket, {})

    def put_public_access_block(self, **kwargs):
        pass

    put_bucket_encryption = put_bucket_versioning = put_bucket_policy = put_public_access_block

    def put_object(self, Bucket, Key, Body, IfNoneMatch=None, **kwargs):
        with self.lock:
            if Bucket not in self.buckets:  # S3's answer (ErrorResponses: NoSuchBucket, 404)
                raise client_error("NoSuchBucket", "The specified bucket does not exist", "PutObject", 404)
            if IfNoneMatch == "*" and Key in self.buckets[Bucket]:
                raise client_error("PreconditionFailed", "At least one of the pre-conditions you specified did "
                                   "not hold", "PutObject", 412)
            self.buckets[Bucket][Key] = Body

    def get_object(self, Bucket, Key):
        import io
        if Key not in self.buckets.get(Bucket, {}):
            raise client_error("NoSuchKey", "The specified key does not exist.", "GetObject", 404)
        return {"Body": io.BytesIO(self.buckets[Bucket][Key])}

    def head_object(self, Bucket, Key):
        self.get_object(Bucket, Key)

    def delete_object(self, Bucket, Key):
        self.buckets[Bucket].pop(Key, None)

    def list_objects_v2(self, Bucket, Prefix="", **kwargs):
        return {"Contents": [{"Key": k} for k in sorted(self.buckets[Bucket]) if k.startswith(Prefix)]}


class FakeEcs:
    """ECS service deployments as ListServiceDeployments / DescribeServiceDeployments answer them, for the
    rollout follower. Knobs:
    - script: the states (ServiceDeployment fields) the deployment an ecs stack update starts goes through,
      one per DescribeServiceDeployments call, the last one repeating;
    - the deployment exists once the fake CloudFormation runs a change set of `stack` (CloudFormation's
      UpdateService starts it), listed after the service's `earlier` deployments;
    - page_size: ListServiceDeployments pages (nextToken) of this many;
    - api=False: the endpoint has no such operations (UnknownOperationException, as an AWS JSON endpoint
      answers for an operation it lacks).
    """

    def __init__(self, cfn: FakeCloudFormation, stack: str, script=(), earlier: int = 2, page_size: int = 1,
                 api: bool = True):
        from datetime import UTC, datetime, timedelta

        self.cfn, self.stack, self.script, self.page_size, self.api = cfn, stack, list(script), page_size, api
        self.now = datetime.now(UTC)
        self.earlier = [{"serviceDeploymentArn": f"arn:aws:ecs:us-east-1:123456789012:service-deployment/c/s/old{i}",
                         "status": "SUCCESSFUL", "createdAt": self.now - timedelta(minutes=3 - i)}
                        for i in range(earlier)]
        self.new_arn = "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/s/new"
        self.describes = 0
        self.calls: list[str] = []
        stack = cfn.stacks.get(stack)
        self.before = (stack.status, stack.template) if stack else None
        self.started = False

    def _started(self) -> bool:
        """Latched once the stack's change set runs (its status or template moves on from where it was)."""
        stack = self.cfn.stacks.get(self.stack)
        now = (stack.status, stack.template) if stack else None
        self.started = self.started or (now != self.before and stack is not None)
        return self.started

    def _check(self, op: str) -> None:
        self.calls.append(op)
        if not self.api:
            raise client_error("UnknownOperationException", f"The endpoint does not implement {op}", op)

    def list_service_deployments(self, cluster, service, createdAt=None, status=None, nextToken=None,
                                 maxResults=None):
        self._check("ListServiceDeployments")
        listed = list(self.earlier)
        if self._started():
            listed.append({"serviceDeploymentArn": self.new_arn, "status": "IN_PROGRESS", "createdAt": self.now})
        listed.reverse()  # newest first
        start = int(nextToken or 0)
        page = listed[start:start + self.page_size]
        more = start + self.page_size < len(listed)
        return {"serviceDeployments": page, **({"nextToken": str(start + self.page_size)} if more else {})}

    def describe_service_deployments(self, serviceDeploymentArns):
        from datetime import timedelta

        self._check("DescribeServiceDeployments")
        found = []
        for arn in serviceDeploymentArns:
            if arn == self.new_arn and self.script:
                state = self.script[min(self.describes, len(self.script) - 1)]
                self.describes += 1
                found.append({"serviceDeploymentArn": arn, "startedAt": self.now,
                              **({"finishedAt": self.now + timedelta(seconds=95)}
                                 if state.get("status") in ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL") else {}),
                              **state})
        return {"serviceDeployments": found, "failures": []}


# botocore-level fakes: a real client, its HTTP answered in the test ------------------------------------------

class _Body(io.BytesIO):
    """A raw HTTP body botocore can stream."""

    def stream(self, **kwargs):
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def cfn_answer(request, operation: str, status: int = 200, code: str = "", message: str = ""):
    """CloudFormation's query-protocol answer: an empty <Operation>Result, or an ErrorResponse."""
    from botocore.awsrequest import AWSResponse

    ns = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
    if status == 200:
        body = f'<{operation}Response xmlns="{ns}"><{operation}Result/></{operation}Response>'
    else:
        body = (f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type><Code>{code}</Code>'
                f"<Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>")
    return AWSResponse(request.url, status, {}, _Body(body.encode()))


def lose_first_answer(client, operation: str, refusal: tuple[str, str]) -> list[str | None]:
    """The first `operation` request reaches CloudFormation but its answer is lost (a read timeout), so botocore
    retries it. CloudFormation answers the retry as it does: as the first request, when it carries that
    request's ClientRequestToken; otherwise as a second request, refused with `refusal` (code, message) because
    the first one is already under way. Returns the tokens the requests carried."""
    from urllib.parse import parse_qs

    from botocore.exceptions import ReadTimeoutError

    tokens: list[str | None] = []

    def answer(request, **kwargs):
        token = parse_qs(request.body.decode() if isinstance(request.body, bytes) else request.body or "") \
            .get("ClientRequestToken", [None])[0]
        tokens.append(token)
        if len(tokens) == 1:
            raise ReadTimeoutError(endpoint_url=request.url)
        if token is not None and token == tokens[0]:
            return cfn_answer(request, operation)
        return cfn_answer(request, operation, 400, *refusal)

    client.meta.events.register(f"before-send.cloudformation.{operation}", answer)
    return tokens
