"""How long a first deploy of an environment takes on AWS, by schedule: sequential, level by level
(sceptre/stacker), and perfdeploy's ready pool. Uses the real dependency graph and the real executor;
each stack 'provisions' for its typical AWS create time, scaled (1 minute = 20 ms).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import time
from graphlib import TopologicalSorter

from perfdeploy.blueprints import all_blueprints
from perfdeploy.config import load_config
from perfdeploy.deploy.executor import run_pool
from perfdeploy.deploy.results import Action, StackResult
from perfdeploy.graph import dependencies

SCALE = 0.02  # seconds per minute
MINUTES = {  # typical create times on AWS (brief: MSK 15-40, Redis 6-10, ALB ~3, NAT ~2, ECS service 5-10)
    "security": 1.5, "network": 3, "registry": 0.5, "dynamodb": 1.5, "msk": 25, "elasticache": 8,
    "tracing": 0.5, "iam": 1, "alb": 3, "ecs": 7, "monitoring": 1,
}


def levels(deps: dict[str, set[str]]) -> list[list[str]]:
    sorter = TopologicalSorter(deps)
    sorter.prepare()
    out = []
    while sorter.is_active():
        ready = list(sorter.get_ready())
        out.append(ready)
        sorter.done(*ready)
    return out


def main() -> None:
    deps = dependencies(all_blueprints(), load_config("dev"))

    def work(key: str) -> StackResult:
        time.sleep(MINUTES[key] * SCALE)
        return StackResult(key, key, Action.CREATED)

    start = time.perf_counter()
    run_pool(deps, work, lambda k, a, r: StackResult(k, k, a, reason=r), concurrency=8)
    pool = (time.perf_counter() - start) / SCALE

    sequential = sum(MINUTES.values())
    by_level = sum(max(MINUTES[k] for k in level) for level in levels(deps))

    def finish(key: str, memo: dict = {}) -> float:  # noqa: B006 - a memo for the recursion
        if key not in memo:
            memo[key] = MINUTES[key] + max((finish(d) for d in deps[key]), default=0)
        return memo[key]
    critical = max(finish(k) for k in deps)

    print(f"critical path (lower bound)     : {critical:5.1f} min")
    print(f"ready pool (measured, scaled)    : {pool:5.1f} min")
    print(f"level by level                   : {by_level:5.1f} min")
    print(f"sequential                       : {sequential:5.1f} min")
    print(f"levels: {' | '.join(','.join(sorted(level)) for level in levels(deps))}")


if __name__ == "__main__":
    main()
