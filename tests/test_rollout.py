"""Following the ECS deployment an ecs stack update starts (perfdeploy/deploy/rollout.py), against a fake
CloudFormation and a fake ECS: what the run shows and returns when ECS completes, rolls back, or cannot be
read."""

from __future__ import annotations

import io
import json
import threading

import pytest
from fakes import FakeAws, FakeCloudFormation, FakeEcs, tiny_environment
from rich.console import Console

from perfdeploy.cli.shared import finish
from perfdeploy.deploy.engine import Deployer, DeployOptions
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action
from perfdeploy.deploy.waiter import Backoff
from perfdeploy.errors import FAILED

FAST = Backoff(initial=0.001, factor=1.5, maximum=0.01)
ECS_STACK = "dev-performance-mgmt-ecs"
EDGES = {"alb": [], "ecs": ["alb"], "monitoring": ["ecs"]}
ROLLOUT = {"cluster": "dev-performance-mgmt-cluster", "service": "dev-performance-mgmt-service",
           "strategy": "canary", "bake_time_minutes": 15}
ALARM = "dev-performance-mgmt-service-unhealthy"


def environment(version: int, other: int = 1):
    """alb -> ecs (an ECS service, followed) -> monitoring; `version` changes the service, `other` a
    resource beside it."""
    rendered = tiny_environment(EDGES, version=version, extra={"ecs": {
        "Service": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": f"app:{version}"}},
        "Scaling": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {"Target": other}},
    }})
    rendered.stack("ecs").manifest["rollout"] = dict(ROLLOUT)
    return rendered


def stage(status: str, stage_: str = "", production: float | None = None, **more) -> dict:
    target = {"arn": "arn:aws:ecs:us-east-1:123456789012:service-revision/c/s/2"}
    if production is not None:
        target["requestedProductionTrafficWeight"] = production
    return {"status": status, "lifecycleStage": stage_, "targetServiceRevision": target,
            "deploymentConfiguration": {"strategy": "CANARY", "bakeTimeInMinutes": 15}, **more}


CANARY_THAT_SUCCEEDS = [
    stage("IN_PROGRESS", "SCALE_UP", 0.0),
    stage("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 10.0),
    stage("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 100.0),
    stage("IN_PROGRESS", "BAKE_TIME", 100.0),
    stage("SUCCESSFUL", "CLEAN_UP", 100.0, statusReason="Service deployment completed successfully."),
]
CANARY_AN_ALARM_ROLLS_BACK = [
    stage("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 10.0),
    stage("ROLLBACK_IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 10.0,
          alarms={"status": "TRIGGERED", "alarmNames": [ALARM], "triggeredAlarmNames": [ALARM]}),
    stage("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0.0,
          alarms={"status": "TRIGGERED", "alarmNames": [ALARM], "triggeredAlarmNames": [ALARM]},
          rollback={"reason": "Rolled back: a deployment alarm went to ALARM"}),
]


class Deploy:
    """A fake CloudFormation and ECS; the ecs stack already deployed (version 1), so the next run updates."""

    def __init__(self, script=(), api: bool = True):
        self.cfn = FakeCloudFormation()
        self.aws = FakeAws(self.cfn, ecs=FakeEcs(self.cfn, ECS_STACK, [stage("SUCCESSFUL", "CLEAN_UP", 100.0)]))
        self.out = io.StringIO()
        assert self.run(environment(1)).ok
        # The service exists; its next deployment goes through `script`.
        self.cfn.calls.clear()
        self.ecs = self.aws.clients["ecs"] = FakeEcs(self.cfn, ECS_STACK, script, api=api)
        self.out.seek(0)
        self.out.truncate()

    def run(self, rendered):
        reporter = Reporter(console=Console(file=self.out, width=200, force_terminal=False))
        deployer = Deployer(self.aws, rendered, DeployOptions(yes=True), reporter, lambda spec, changes: True,
                            backoff=FAST)
        return deployer.run()

    @property
    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


def by_key(run) -> dict:
    return {s.key: s for s in run.stacks}


def test_a_deployment_ecs_rolls_back_is_rolled_back_and_the_deploy_fails_with_exit_1(capsys):
    deploy = Deploy(CANARY_AN_ALARM_ROLLS_BACK)
    # ECS rolled back, so CloudFormation's update of the service failed and the stack rolled back too.
    deploy.cfn.fail[ECS_STACK] = ("Service", "ECS Deployment Alarms triggered: dev-performance-mgmt-service-unhealthy")
    run = deploy.run(environment(2))
    results = by_key(run)

    ecs = results["ecs"]
    assert ecs.action is Action.ROLLED_BACK and not run.ok
    assert ecs.reason == f"ECS rolled the new deployment back: alarm {ALARM} went to ALARM; " \
                         "Rolled back: a deployment alarm went to ALARM"
    assert ecs.deployment["state"] == "ROLLBACK_SUCCESSFUL" and ecs.deployment["rolled_back"]
    assert ecs.deployment["strategy"] == "canary" and ecs.deployment["seconds"] == 95.0
    assert ecs.deployment["arn"] == deploy.ecs.new_arn  # not one of the service's earlier deployments
    assert results["monitoring"].action is Action.SKIPPED
    assert results["monitoring"].reason == "dependency ecs has rolled_back"

    with pytest.raises(SystemExit) as exited:
        finish(run, True, "deploy")
    assert exited.value.code == FAILED == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] is False
    stack = next(s for s in printed["stacks"] if s["key"] == "ecs")
    assert stack["action"] == "rolled_back"
    assert {k: stack["deployment"][k] for k in ("strategy", "state", "seconds")} == {
        "strategy": "canary", "state": "ROLLBACK_SUCCESSFUL", "seconds": 95.0}


def test_a_deploy_ecs_rolled_back_is_red_in_the_output_a_rollback_command_green():
    from perfdeploy.deploy.report import style
    from perfdeploy.deploy.results import StackResult

    undone = StackResult("ecs", ECS_STACK, Action.ROLLED_BACK, "UPDATE_ROLLBACK_COMPLETE",
                         deployment={"rolled_back": True})
    assert style(undone) == "red"  # a failed deploy does not look like a success
    assert style(StackResult("ecs", ECS_STACK, Action.ROLLED_BACK, "UPDATE_COMPLETE")) == "green"  # `rollback`
    console = Console(file=io.StringIO(), width=200, color_system="standard", record=True)
    Reporter(console=console).finished(undone)
    assert console.export_text(styles=True).startswith("\x1b[31mecs          rolled_back")  # red, as printed


def test_a_canary_is_followed_phase_by_phase_while_the_stack_update_runs():
    deploy = Deploy(CANARY_THAT_SUCCEEDS)
    gate = deploy.cfn.gates[ECS_STACK] = threading.Event()
    watcher = threading.Thread(target=lambda: _release_when(deploy.ecs, len(CANARY_THAT_SUCCEEDS), gate))
    watcher.start()
    run = deploy.run(environment(2))
    watcher.join()

    ecs = by_key(run)["ecs"]
    assert ecs.action is Action.UPDATED and run.ok
    assert ecs.deployment["state"] == "SUCCESSFUL" and not ecs.deployment["rolled_back"]
    shown = [line for line in deploy.lines if line.startswith("ecs          deployment ")]
    assert any("stage PRODUCTION_TRAFFIC_SHIFT; production traffic 10% on the new revision" in s for s in shown)
    assert any("stage BAKE_TIME; production traffic 100% on the new revision; bake time 14 min left" in s
               for s in shown)
    assert shown[-1].endswith("successful after 95s: Service deployment completed successfully.")


def _release_when(ecs: FakeEcs, describes: int, gate: threading.Event) -> None:
    """Keep the stack update in progress until the follower has read every step of the script."""
    for _ in range(2000):
        if ecs.describes >= describes:
            break
        threading.Event().wait(0.005)
    gate.set()


def test_without_the_deployments_api_the_deploy_says_not_followed_and_carries_on():
    deploy = Deploy(CANARY_THAT_SUCCEEDS, api=False)
    run = deploy.run(environment(2))
    ecs = by_key(run)["ecs"]
    assert ecs.action is Action.UPDATED and run.ok
    assert ecs.deployment == {"strategy": "canary", "state": "not_followed", "seconds": 0.0, "rolled_back": False,
                              "arn": "", "reason": "the endpoint has no ECS ListServiceDeployments "
                                                   "(The endpoint does not implement ListServiceDeployments)"}
    notices = [line for line in deploy.lines if line.startswith("note: ecs: ECS deployment not followed")]
    assert len(notices) == 1
    assert deploy.ecs.calls == ["ListServiceDeployments"]  # asked once, then left alone


def test_an_update_that_does_not_touch_the_service_follows_no_deployment():
    deploy = Deploy(CANARY_THAT_SUCCEEDS)
    run = deploy.run(environment(1, other=2))
    ecs = by_key(run)["ecs"]
    assert ecs.action is Action.UPDATED and ecs.deployment is None
    assert deploy.ecs.calls == []
    assert "deployment" not in ecs.to_json()


def test_a_deployment_ecs_completes_is_recorded_as_the_stack_update():
    deploy = Deploy(CANARY_THAT_SUCCEEDS[-1:])
    run = deploy.run(environment(2))
    ecs = by_key(run)["ecs"]
    assert (ecs.action, ecs.status) == (Action.UPDATED, "UPDATE_COMPLETE")
    assert ecs.to_json()["deployment"]["state"] == "SUCCESSFUL"
    assert run.release is None and run.ok  # (releases are recorded by deploy_rendered, around this run)
