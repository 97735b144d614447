"""Rollback triggers: the monitoring stack's composite alarm guards alb and ecs updates in staging/prod.

Read from the deployed monitoring stack when the run starts (it is not a graph edge): absent on a first
deploy, it is skipped with a notice; already in ALARM (a fix-forward deploy), the run is refused unless
--ignore-triggers.
"""

from __future__ import annotations

from perfdeploy.deploy.stacks import describe, stack_outputs
from perfdeploy.errors import SafetyRefusal


def read_triggers(aws, rendered, selected: list[str], ignore_alarm: bool, report) -> dict[tuple[str, str], str]:
    """(stack, output) -> alarm ARN for every trigger the selected stacks name and that is deployed."""
    wanted = sorted({(t["stack"], t["output"]) for s in rendered.stacks if s.key in selected
                     for t in s.manifest.get("rollback_triggers", [])})
    found: dict[tuple[str, str], str] = {}
    for stack_key, output in wanted:
        stack = describe(aws.client("cloudformation"), rendered.stack(stack_key).stack_name)
        arn = stack_outputs(stack).get(output) if stack else None
        if not arn:
            report.notice(f"rollback trigger {stack_key}.{output} is not deployed yet (first deploy): "
                          "alb and ecs deploy without it this time")
            continue
        found[(stack_key, output)] = arn
    alarming = _in_alarm(aws.client("cloudwatch"), list(found.values()))
    if alarming and not ignore_alarm:
        raise SafetyRefusal(f"the rollback-trigger alarm {', '.join(alarming)} is already in ALARM, so "
                            "CloudFormation would roll the update back at once; if this deploy is the fix, "
                            "run it again with --ignore-triggers")
    if alarming:
        report.notice(f"{', '.join(alarming)} is in ALARM: deploying without rollback triggers (--ignore-triggers)")
        return {}
    return found


def _in_alarm(cloudwatch, arns: list[str]) -> list[str]:
    names = [arn.split(":alarm:", 1)[1] for arn in arns if ":alarm:" in arn]
    if not names:
        return []
    response = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["CompositeAlarm", "MetricAlarm"])
    alarms = response.get("CompositeAlarms", []) + response.get("MetricAlarms", [])
    return [a["AlarmName"] for a in alarms if a.get("StateValue") == "ALARM"]
