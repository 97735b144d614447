"""`perfdeploy cost`: an estimated monthly cost per stack and in total.

Priced from the rendered templates (what deploy sends to CloudFormation, so every size in config counts: broker
type and count, EBS, Redis nodes, task size and count, NAT gateways, tables, retention) and the package's price
table. Traffic-dependent lines (log ingestion, LCUs, requests) follow the usage assumptions in prices.yaml, scaled
by the number of running tasks. The same function prices deployed templates, so `plan` can show a difference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from perfdeploy.cost.pricers import PRICERS, Context, Line, Workload, free_type, number, resources
from perfdeploy.cost.prices import PriceTable, load_prices
from perfdeploy.template_loader import load

SECONDS_PER_HOUR = 3600

# What the estimate leaves out, said once in the output and the docs.
NOT_INCLUDED = (
    "data transfer",
    "Container Insights and MSK enhanced-monitoring metrics",
    "API requests (KMS, Secrets Manager, S3, CloudWatch)",
    "snapshots and SNS",
    "free tiers and discounts (Spot tasks priced on demand)",
    "KMS rotation charges after the first year",
)


@dataclass
class StackCost:
    key: str
    lines: list[Line] = field(default_factory=list)

    @property
    def monthly(self) -> float:
        return sum(line.monthly for line in self.lines if line.monthly is not None)

    @property
    def unpriced(self) -> list[Line]:
        return [line for line in self.lines if line.unit_price is None]

    def to_json(self) -> dict:
        return {"key": self.key, "monthly": round(self.monthly, 2), "lines": [line.to_json() for line in self.lines]}


@dataclass
class Estimate:
    env: str
    region: str
    prices: PriceTable
    workload: Workload
    stacks: list[StackCost]

    @property
    def total(self) -> float:
        return sum(s.monthly for s in self.stacks)

    @property
    def complete(self) -> bool:
        """False when a resource could not be priced (a type or size the price table does not list)."""
        return not any(s.unpriced for s in self.stacks)

    def stack(self, key: str) -> StackCost:
        return next(s for s in self.stacks if s.key == key)

    def notes(self) -> list[str]:
        notes = []
        if self.region != self.prices.region:
            notes.append(f"prices are {self.prices.region}'s; {self.env} runs in {self.region}, where they differ")
        notes += [f"{s.key}: {line.item}: {line.note}" for s in self.stacks for line in s.unpriced]
        return notes

    def to_json(self) -> dict:
        return {
            "env": self.env, "region": self.region, "currency": self.prices.currency,
            "price_region": self.prices.region, "prices_as_of": self.prices.as_of,
            "total_monthly": round(self.total, 2), "complete": self.complete,
            "stacks": [s.to_json() for s in self.stacks],
            "workload": self.workload.to_json(), "assumptions": dict(self.prices.usage),
            "not_included": list(NOT_INCLUDED), "notes": self.notes(), "sources": dict(self.prices.sources),
        }


def estimate(env: str, region: str, templates: Mapping[str, dict], prices: PriceTable | None = None) -> Estimate:
    """Price every resource of every stack. `templates`: stack key -> parsed template (in deploy order)."""
    prices = prices or load_prices()
    workload = derive_workload(templates, prices)
    stacks = []
    for key, template in templates.items():
        context = Context(prices, workload, key, template)
        lines: list[Line] = []
        for logical_id, resource in resources(template).items():
            kind = resource.get("Type", "")
            pricer = PRICERS.get(kind)
            if pricer is not None:
                lines += pricer(context, logical_id, resource.get("Properties", {}))
            elif not free_type(kind):
                lines.append(Line(f"{logical_id} ({kind})", 1, "resource", None,
                                  note=f"{kind} is not in the price table (perfdeploy/cost/)"))
        stacks.append(StackCost(key, _merge(lines)))
    return Estimate(env, region, prices, workload, stacks)


def estimate_rendered(rendered, prices: PriceTable | None = None) -> Estimate:
    """The estimate of a rendered environment (perfdeploy.render.Rendered)."""
    return estimate(rendered.env, rendered.region, rendered.documents(), prices)


def parse_templates(bodies: Mapping[str, str]) -> dict[str, dict]:
    """Template bodies (YAML or JSON) -> plain dicts with intrinsic functions in their long form."""
    return {key: load(body) for key, body in bodies.items()}


def derive_workload(templates: Mapping[str, dict], prices: PriceTable) -> Workload:
    """Running tasks (the service's desired count, or the auto-scaling minimum when the count is left to auto
    scaling), the requests they serve, and the availability zones the network spans."""
    tasks, zones = 0, 0
    for template in templates.values():
        found = resources(template)
        minimum = next((number(r["Properties"].get("MinCapacity"), 0) for r in found.values()
                        if r.get("Type") == "AWS::ApplicationAutoScaling::ScalableTarget"
                        and r["Properties"].get("ScalableDimension") == "ecs:service:DesiredCount"), 0)
        for r in found.values():
            if r.get("Type") == "AWS::ECS::Service":
                tasks += int(number(r.get("Properties", {}).get("DesiredCount"), minimum or 1))
        subnets = [r["Properties"] for r in found.values() if r.get("Type") == "AWS::EC2::Subnet"]
        placed = {json.dumps(p.get("AvailabilityZone") or p.get("AvailabilityZoneId"), sort_keys=True)
                  for p in subnets}
        zones = max(zones, len(placed) if len(placed) > 1 else len(subnets) // 2)
    seconds = prices.hours_per_month * SECONDS_PER_HOUR
    requests = tasks * prices.usage["requests_per_second_per_task"] * seconds
    return Workload(tasks=tasks, requests_per_month=requests, zones=max(zones, 1))


def _merge(lines: list[Line]) -> list[Line]:
    """Lines for the same item at the same price become one (three NAT gateways: one line of gateway-hours)."""
    merged: dict[tuple, Line] = {}
    for line in lines:
        key = (line.item, line.unit, line.unit_price, line.note)
        merged[key] = merged[key].plus(line.quantity) if key in merged else line
    return list(merged.values())
