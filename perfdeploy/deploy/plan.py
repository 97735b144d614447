"""`perfdeploy plan`: what a deploy would change, stack by stack, without changing anything.

Per stack, what deploy would do with it comes from its state (states.py): create, recreate (a failed first
create), wait (an operation in progress), refuse, or update. An update is a change set, described, then
deleted; each modified resource is shown property by property, old and new (diff.py), with the stack's
parameter and tag changes. An input is `<known after KEY deploys>` only when that upstream's change set can
change the output it reads (it replaces the resource the output Refs, modifies one it GetAtts, or redefines the
output); otherwise the deployed value is used, and a stack with nothing to change is `unchanged`. The change
set of a stack with an unknown input is made with today's value, so the rest of its changes are still real.
The guard's verdict is included.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from perfdeploy.aws import Aws
from perfdeploy.deploy import changeset
from perfdeploy.deploy.diff import Side, changing_outputs, parameter_changes, resource_diff, tag_changes
from perfdeploy.deploy.engine import Deployer, DeployOptions, StackFailure
from perfdeploy.deploy.guard import refusals
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.stacks import deployed_template, describe, stack_outputs, stack_parameters
from perfdeploy.deploy.states import SKIPPABLE, Deploy, deploy_decision, refusal_reason
from perfdeploy.render import Rendered, RenderedStack
from perfdeploy.template_loader import load

EVERY_OUTPUT = None   # in `changing`: all of a stack's outputs are unknown (it is created, or busy)


@dataclass
class StackPlan:
    key: str
    stack_name: str
    action: str                     # create | recreate | update | unchanged | wait | refuse
    changes: list[dict] = field(default_factory=list)      # each Modify with "properties": old -> new
    unknown_inputs: list[str] = field(default_factory=list)
    parameters: list[dict] = field(default_factory=list)   # [{"name", "old", "new"}] for changed ones
    tags: list[dict] = field(default_factory=list)         # [{"key", "old", "new"}] stack tags that change
    refused: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Plan:
    env: str
    stacks: list[StackPlan]

    @property
    def changed(self) -> bool:
        return any(s.action != "unchanged" for s in self.stacks)

    def to_json(self) -> dict:
        return {"env": self.env, "stacks": [asdict(s) for s in self.stacks]}


def make_plan(aws: Aws, rendered: Rendered, options: DeployOptions, reporter: Reporter | None = None,
              stop: threading.Event | None = None) -> Plan:
    """Plan every selected stack in dependency order (one change set at a time, each deleted)."""
    from perfdeploy.deploy.artifacts import Artifacts
    from perfdeploy.deploy.releases import ReleaseStore

    deployer = Deployer(aws, rendered, options, reporter or Reporter(quiet=True), lambda s, c: False, stop=stop)
    selected = deployer.selection()
    plans: dict[str, StackPlan] = {}
    changing: dict[str, set[str] | None] = {}   # key -> outputs that may change (EVERY_OUTPUT: all of them)
    # The reads first, at once as deploy makes them (concurrency), then each stack planned in order.
    with ThreadPoolExecutor(max(1, options.concurrency)) as pool:
        recorded = pool.submit(ReleaseStore(Artifacts(aws)).last_deployed, rendered.env)
        described = list(pool.map(lambda spec: describe(deployer.cfn, spec.stack_name), rendered.stacks))
        deployer.recorded = recorded.result()
    for spec, stack in zip(rendered.stacks, described, strict=True):
        deployer.outputs[spec.key] = stack_outputs(stack)
        if spec.key in selected:
            plans[spec.key] = _plan_stack(deployer, spec, stack, changing)
    return Plan(rendered.env, [plans[k] for k in selected])


def _unknown_inputs(spec: RenderedStack, changing: dict[str, set[str] | None]) -> dict[str, str]:
    """Chained parameter -> its upstream, for the inputs whose upstream output may change."""
    unknown = {}
    for name, value in spec.manifest["parameters"].items():
        if isinstance(value, dict) and "stack" in value and value["stack"] in changing:
            outputs = changing[value["stack"]]
            if outputs is EVERY_OUTPUT or value["output"] in outputs:
                unknown[name] = value["stack"]
    return unknown


def _plan_stack(deployer: Deployer, spec: RenderedStack, stack: dict | None,
                changing: dict[str, set[str] | None]) -> StackPlan:
    status = stack["StackStatus"] if stack else None
    decision = deploy_decision(status)
    upstream_of = _unknown_inputs(spec, changing)
    plan = StackPlan(spec.key, spec.stack_name, "update", unknown_inputs=sorted(upstream_of))
    if decision in (Deploy.CREATE, Deploy.RECREATE):
        new_template = load(spec.body)
        plan.action = "create" if decision is Deploy.CREATE else "recreate"
        if decision is Deploy.RECREATE:
            plan.note = "ROLLBACK_COMPLETE (a failed first create): deploy deletes it and creates it again"
        plan.changes = [{"action": "Add", "logical_id": lid, "type": res["Type"], "replacement": ""}
                        for lid, res in (new_template.get("Resources") or {}).items()]
        changing[spec.key] = EVERY_OUTPUT
        return plan
    if decision is Deploy.WAIT:
        plan.action, plan.note = "wait", (f"{status}: an operation is in progress; deploy waits for it to "
                                          "finish and decides then (plan again afterwards)")
        changing[spec.key] = EVERY_OUTPUT
        return plan
    if decision is Deploy.REFUSE:
        plan.action, plan.note = "refuse", refusal_reason(status)
        return plan
    if decision is Deploy.FIX_FORWARD:
        plan.note = f"{status} (paused by --no-rollback): deploy updates it from where it stopped"
    try:
        params = deployer.parameters_for(spec, stack)
    except StackFailure as exc:
        plan.note = str(exc)
        return plan
    # What deploy would skip is unchanged here too, before any template is read or parsed.
    if status in SKIPPABLE and not upstream_of and deployer.is_unchanged(spec, stack, params):
        plan.action = "unchanged"
        return plan
    old = Side(load(deployed_template(deployer.cfn, spec.stack_name)), stack_parameters(stack))
    new = Side(load(spec.body), params,
               {name: f"<known after {up} deploys>" for name, up in upstream_of.items()})
    plan.parameters = parameter_changes(old, new)
    plan.tags = tag_changes({t["Key"]: t["Value"] for t in stack.get("Tags", [])}, spec.manifest["tags"])
    protection = spec.manifest["termination_protection"]
    if bool(stack.get("EnableTerminationProtection")) != protection:
        plan.note = f"termination protection would be {'enabled' if protection else 'disabled'}"
    cs = changeset.create(deployer.cfn, spec.stack_name, "UPDATE", deployer.template_arg(spec), params,
                          spec.manifest["tags"], spec.manifest["capabilities"], None, deployer.backoff, deployer.stop,
                          role_arn=deployer.role_arn(spec))
    try:
        if cs.empty and decision is Deploy.FIX_FORWARD:
            plan.note = (f"{status}: nothing differs from the update that failed, so deploy cannot fix it "
                         "forward; change the template, or roll it back with 'perfdeploy rollback ENV'")
            return plan
        if cs.empty and not upstream_of and not plan.note:
            plan.action = "unchanged"
            return plan
        plan.changes = [{**summary, "properties": resource_diff(rc["LogicalResourceId"], old, new,
                                                                 rc.get("Details") or [])}
                        if summary["action"] == "Modify" else summary
                        for summary, rc in zip(cs.changes, cs.resource_changes, strict=True)]
        plan.refused = refusals(spec.key, cs.changes, deployer.options.allow_replace)
        outputs = changing_outputs(old, new, cs.resource_changes)
        if outputs:
            changing[spec.key] = outputs
    finally:
        changeset.delete(deployer.cfn, cs)
    return plan


