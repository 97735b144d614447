"""Rollback triggers: the monitoring stack's composite alarm guards alb and ecs updates in staging/prod.

Read from the deployed monitoring stack when the run starts (it is not a graph edge): absent on a first
deploy, it is skipped with a notice; an alarm the output names that no longer exists is skipped too (a
missing trigger fails the whole stack operation); already in ALARM (a fix-forward deploy), the run is
refused unless --ignore-triggers. Each trigger's Type is the alarm's kind as CloudWatch reports it:
AWS::CloudWatch::CompositeAlarm or AWS::CloudWatch::Alarm (API reference, RollbackTrigger).
"""

from __future__ import annotations

from typing import NamedTuple

from perfdeploy.deploy.stacks import describe, stack_outputs
from perfdeploy.errors import SafetyRefusal

TRIGGER_TYPES = {"CompositeAlarms": "AWS::CloudWatch::CompositeAlarm", "MetricAlarms": "AWS::CloudWatch::Alarm"}


class Trigger(NamedTuple):
    arn: str
    type: str       # AWS::CloudWatch::CompositeAlarm | AWS::CloudWatch::Alarm


def read_triggers(aws, rendered, selected: list[str], ignore_alarm: bool, report) -> dict[tuple[str, str], Trigger]:
    """(stack, output) -> the alarm, for every trigger the selected stacks name that is deployed."""
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
    alarms = _alarms(aws.client("cloudwatch"), list(found.values())) if found else {}  # no client made for none
    triggers: dict[tuple[str, str], Trigger] = {}
    for key, arn in found.items():
        name = _name(arn)
        if name not in alarms:
            report.notice(f"rollback trigger {key[0]}.{key[1]} names the alarm {name}, which does not exist: "
                          "alb and ecs deploy without it this time")
            continue
        triggers[key] = Trigger(arn, alarms[name][0])
    alarming = sorted(name for name, (_, state) in alarms.items() if state == "ALARM")
    if alarming and not ignore_alarm:
        raise SafetyRefusal(f"the rollback-trigger alarm {', '.join(alarming)} is already in ALARM, so "
                            "CloudFormation would roll the update back at once; if this deploy is the fix, "
                            "run it again with --ignore-triggers")
    if alarming:
        report.notice(f"{', '.join(alarming)} is in ALARM: deploying without rollback triggers (--ignore-triggers)")
        return {}
    return triggers


def _name(arn: str) -> str:
    return arn.split(":alarm:", 1)[-1]


def _alarms(cloudwatch, arns: list[str]) -> dict[str, tuple[str, str]]:
    """alarm name -> (trigger type, state) for those of `arns` that exist."""
    if not arns:
        return {}
    response = cloudwatch.describe_alarms(AlarmNames=[_name(a) for a in arns],
                                          AlarmTypes=["CompositeAlarm", "MetricAlarm"])
    return {a["AlarmName"]: (kind, a.get("StateValue", "")) for key, kind in TRIGGER_TYPES.items()
            for a in response.get(key, [])}
