"""How long deploying dev takes on AWS: the real engine (ready pool, change sets, polling with its backoff)
against a simulated CloudFormation in which each stack provisions for its typical AWS time, scaled down
(SCALE seconds per minute; the engine's poll delays are scaled the same, so polling costs what it would).
Compared with the graph's critical path (the lower bound), level by level (sceptre/stacker) and sequential.
A second run changes only ecs (a new image tag): nothing upstream should be waited for.

The simulation is tests/fakes.py's FakeCloudFormation with provisioning times; the ECS rollout follower is
left out (it watches the service while the stack update runs, and adds nothing to the stack's time).

Prints figures and merges them into bench/results.json; asserts nothing.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import replace
from graphlib import TopologicalSorter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import fakes  # noqa: E402
from fakes import FakeAws, FakeCloudFormation  # noqa: E402
from results import update  # noqa: E402

from perfdeploy.config import load_config  # noqa: E402
from perfdeploy.deploy import engine  # noqa: E402
from perfdeploy.deploy.engine import DeployOptions  # noqa: E402
from perfdeploy.deploy.report import Reporter  # noqa: E402
from perfdeploy.deploy.run import deploy_rendered  # noqa: E402
from perfdeploy.deploy.waiter import Backoff  # noqa: E402
from perfdeploy.render import render_env  # noqa: E402

SCALE = 1.0  # seconds per simulated minute; the engine's own CPU time is not scaled, so it stays small beside it
# Typical create times on AWS, minutes (issue 17: MSK ~25, Redis ~8, ALB ~3, NAT ~2, ECS service ~6; seconds
# for the rest). An update of the ECS service (a new task definition rolled out) takes about as long.
MINUTES = {
    "security": 0.5, "network": 2, "registry": 0.2, "dynamodb": 0.5, "msk": 25, "elasticache": 8,
    "tracing": 0.2, "iam": 0.5, "alb": 3, "ecs": 6, "monitoring": 0.5,
}
REAL = Backoff()  # the engine's polling on AWS, in seconds; scaled below to simulated time


class ProvisioningCloudFormation(FakeCloudFormation):
    """Change sets take their stack's provisioning time to execute; templates given by URL are read from S3."""

    def __init__(self, s3, minutes_of):
        super().__init__()
        self.s3, self.minutes_of = s3, minutes_of

    def create_change_set(self, StackName, *args, TemplateURL=None, **kwargs):
        if TemplateURL:
            key = TemplateURL.split(".amazonaws.com/", 1)[1]
            kwargs["TemplateBody"] = next(objects[key] for objects in self.s3.buckets.values() if key in objects)
            kwargs["TemplateBody"] = kwargs["TemplateBody"].decode()
        return super().create_change_set(StackName, *args, **kwargs)

    def _finish(self, stack, cs, creating, disable_rollback):
        time.sleep(self.minutes_of(stack.name) * SCALE)
        super()._finish(stack, cs, creating, disable_rollback)


def scaled(backoff: Backoff) -> Backoff:
    per_second = SCALE / 60
    return replace(backoff, initial=backoff.initial * per_second, maximum=backoff.maximum * per_second)


def critical_path(deps: dict[str, set[str]], minutes: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    for key in TopologicalSorter(deps).static_order():
        finish[key] = minutes[key] + max((finish[d] for d in deps[key]), default=0)
    return max(finish.values())


def levels(deps: dict[str, set[str]]) -> list[list[str]]:
    sorter = TopologicalSorter(deps)
    sorter.prepare()
    out = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        out.append(ready)
        sorter.done(*ready)
    return out


def deploy(aws, rendered, **options) -> float:
    start = time.perf_counter()
    run = deploy_rendered(rendered, aws, DeployOptions(yes=True, concurrency=8, skip_image_check=True, **options),
                          Reporter(quiet=True), lambda spec, changes: True)
    assert run.ok, [(s.key, s.action, s.reason) for s in run.stacks]
    return (time.perf_counter() - start) / SCALE


def main() -> None:
    # The simulation's own parsing of templates is no part of AWS's time: once per body.
    fakes.load_template = functools.cache(fakes.load_template)  # parsed once per body, as given
    engine.Backoff = lambda: scaled(REAL)  # the engine's default polling, in simulated time
    rendered = render_env(load_config("dev"))
    stacks = tuple(replace(s, manifest={k: v for k, v in s.manifest.items() if k != "rollout"})
                   for s in rendered.stacks)
    rendered = replace(rendered, stacks=stacks)
    for spec in stacks:  # parsed before the clock starts
        fakes.load_template(spec.body)
    keys = {s.stack_name: s.key for s in stacks}
    deps = {s.key: set(s.manifest["depends_on"]) for s in stacks}
    aws = FakeAws()
    aws.clients["cloudformation"] = cfn = ProvisioningCloudFormation(aws.clients["s3"], lambda n: MINUTES[keys[n]])
    cfn.alarms = aws.clients["cloudwatch"]
    makespan = deploy(aws, rendered, args={"image_tag": "v1"})
    ecs_only = deploy(aws, rendered, args={"image_tag": "v2"})
    critical = critical_path(deps, MINUTES)
    by_level = sum(max(MINUTES[k] for k in level) for level in levels(deps))
    sequential = sum(MINUTES.values())
    figures = {
        "critical_path_min": round(critical, 2), "makespan_min": round(makespan, 2),
        "makespan_over_critical_path": round(makespan / critical, 3),
        "level_by_level_over_critical_path": round(by_level / critical, 3),
        "sequential_over_critical_path": round(sequential / critical, 3),
        "ecs_only_makespan_min": round(ecs_only, 2), "ecs_only_over_ecs_update": round(ecs_only / MINUTES["ecs"], 3),
    }
    update(figures)
    print(f"dev on simulated AWS (1 min = {SCALE * 1000:.0f} ms; polling scaled alike), real engine")
    print(f"  critical path (lower bound)   : {critical:5.1f} min")
    print(f"  perfdeploy (measured)         : {makespan:5.1f} min  ({makespan / critical:.3f} x critical path)")
    print(f"  level by level (computed)     : {by_level:5.1f} min  ({by_level / critical:.3f} x)")
    print(f"  sequential (computed)         : {sequential:5.1f} min  ({sequential / critical:.3f} x)")
    print(f"  only ecs changed (measured)   : {ecs_only:5.1f} min  (its own update takes {MINUTES['ecs']} min)")
    print(f"  levels: {' | '.join(','.join(level) for level in levels(deps))}")


if __name__ == "__main__":
    main()
