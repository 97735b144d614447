"""The cost difference of a plan: what is deployed now against what the plan would deploy.

"Before" prices the deployed template of every stack the plan would change (a stack it would create counts as
nothing deployed); stacks the plan leaves unchanged, or did not select, are the same on both sides. One
GetTemplate per changing stack, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from perfdeploy.cost.estimate import Estimate, estimate, parse_templates
from perfdeploy.deploy.stacks import deployed_template

NOT_DEPLOYED = ("create", "recreate")  # plan actions whose stack has nothing running today


@dataclass
class CostChange:
    before: Estimate
    after: Estimate

    @property
    def difference(self) -> float:
        return self.after.total - self.before.total

    def per_stack(self) -> dict[str, tuple[float, float]]:
        """key -> (before, after) for the stacks whose estimate changes."""
        before = {s.key: s.monthly for s in self.before.stacks}
        after = {s.key: s.monthly for s in self.after.stacks}
        keys = [k for k in after if round(after[k] - before.get(k, 0.0), 2)]
        keys += [k for k in before if k not in after and round(before[k], 2)]
        return {k: (before.get(k, 0.0), after.get(k, 0.0)) for k in keys}

    def summary(self) -> str:
        changes = ", ".join(f"{k} {_signed(a - b)}" for k, (b, a) in self.per_stack().items())
        detail = f": {changes}" if changes else ""
        return (f"estimated monthly cost: ${self.before.total:,.2f} -> ${self.after.total:,.2f} "
                f"({_signed(self.difference)}{detail}; perfdeploy cost {self.after.env} for the lines)")

    def to_json(self) -> dict:
        return {"before": round(self.before.total, 2), "after": round(self.after.total, 2),
                "difference": round(self.difference, 2), "prices_as_of": self.after.prices.as_of,
                "stacks": {k: {"before": round(b, 2), "after": round(a, 2), "difference": round(a - b, 2)}
                           for k, (b, a) in self.per_stack().items()}}


def plan_cost(aws, rendered, plan, after: Estimate | None = None) -> CostChange | None:
    """The cost change of `plan` (perfdeploy.deploy.plan.Plan) for `rendered`; None when a deployed template
    cannot be read (the plan itself stands without it). `after`: the rendered environment's estimate, when the
    caller has it already (plan prices it while its change sets are made)."""
    documents = rendered.documents()
    after = after or estimate(rendered.env, rendered.region, documents)
    before = dict(documents)  # the stacks that do not change are the same on both sides
    cfn = aws.client("cloudformation")
    try:
        for stack in plan.stacks:
            if stack.action in NOT_DEPLOYED:
                before.pop(stack.key, None)
            elif stack.action != "unchanged":
                before.update(parse_templates({stack.key: deployed_template(cfn, stack.stack_name)}))
    except ClientError:
        return None
    unchanged = before.keys() == documents.keys() and all(before[k] is documents[k] for k in documents)
    return CostChange(after if unchanged else estimate(rendered.env, rendered.region, before), after)


def _signed(value: float) -> str:
    return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}"
