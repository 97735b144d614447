"""`perfdeploy plan`: what a deploy would change, stack by stack, without changing anything.

For every stack that differs from what is deployed: a change set, described, then deleted. Inputs whose
upstream would change first are marked `<known after KEY deploys>`, not guessed; the change set is made
with today's value so the rest of the stack's changes are still real. A stack not yet deployed is shown
as the resources its template would add. The guard's verdict is included.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

from cfn_flip import load as load_template

from perfdeploy.aws import Aws
from perfdeploy.deploy import changeset
from perfdeploy.deploy.engine import Deployer, DeployOptions, StackFailure
from perfdeploy.deploy.guard import refusals
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.stacks import describe, stack_outputs, stack_parameters
from perfdeploy.deploy.states import SKIPPABLE
from perfdeploy.render import Rendered, RenderedStack


@dataclass
class StackPlan:
    key: str
    stack_name: str
    action: str                                   # create | update | unchanged
    changes: list[dict] = field(default_factory=list)
    unknown_inputs: list[str] = field(default_factory=list)
    parameters: list[dict] = field(default_factory=list)   # [{"name", "old", "new"}] for changed ones
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
    deployer = Deployer(aws, rendered, options, reporter or Reporter(quiet=True), lambda s, c: False, stop=stop)
    selected = deployer.selection()
    plans: dict[str, StackPlan] = {}
    for spec in rendered.stacks:
        stack = describe(deployer.cfn, spec.stack_name)
        deployer.outputs[spec.key] = stack_outputs(stack)
        if spec.key in selected:
            plans[spec.key] = _plan_stack(deployer, spec, stack, plans)
    return Plan(rendered.env, [plans[k] for k in selected])


def _plan_stack(deployer: Deployer, spec: RenderedStack, stack: dict | None,
                plans: dict[str, StackPlan]) -> StackPlan:
    plan = StackPlan(spec.key, spec.stack_name, "create" if stack is None else "update")
    changing = {key for key, p in plans.items() if p.action != "unchanged"}
    chained = {name: v for name, v in spec.manifest["parameters"].items() if isinstance(v, dict) and "stack" in v}
    plan.unknown_inputs = sorted(name for name, v in chained.items() if v["stack"] in changing)
    if stack is None:
        plan.changes = [{"action": "Add", "logical_id": lid, "type": res["Type"], "replacement": ""}
                        for lid, res in load_template(spec.body)[0].get("Resources", {}).items()]
        return plan
    try:
        params = deployer.parameters_for(spec, stack)
    except StackFailure as exc:
        plan.note = str(exc)
        return plan
    plan.parameters = _parameter_changes(stack_parameters(stack), params, spec, plan.unknown_inputs)
    if stack["StackStatus"] in SKIPPABLE and not plan.unknown_inputs and deployer.is_unchanged(spec, stack, params):
        plan.action = "unchanged"
        return plan
    cs = changeset.create(deployer.cfn, spec.stack_name, "UPDATE", deployer.template_arg(spec), params,
                          spec.manifest["tags"], spec.manifest["capabilities"], None, deployer.backoff, deployer.stop)
    try:
        if cs.empty and not plan.unknown_inputs:
            plan.action = "unchanged"
        plan.changes = cs.changes
        plan.refused = refusals(spec.key, cs.changes, deployer.options.allow_replace)
    finally:
        changeset.delete(deployer.cfn, cs)
    return plan


def _parameter_changes(old: dict[str, str], new: dict[str, str], spec: RenderedStack,
                       unknown: list[str]) -> list[dict]:
    changes = []
    for name in sorted(set(old) | set(new)):
        if name in unknown:
            upstream = spec.manifest["parameters"][name]["stack"]
            changes.append({"name": name, "old": old.get(name), "new": f"<known after {upstream} deploys>"})
        elif old.get(name) != new.get(name):
            changes.append({"name": name, "old": old.get(name), "new": new.get(name)})
    return changes
