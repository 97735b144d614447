"""Ctrl-C during a deploy, and rollback triggers, against a fake CloudFormation."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest
from fakes import FakeAws, FakeCloudFormation, tiny_environment
from test_engine import FAST

from perfdeploy.deploy.engine import Deployer, DeployOptions
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action, RunResult
from perfdeploy.errors import INTERRUPTED, SafetyRefusal


def name(key: str, env: str = "dev") -> str:
    return f"{env}-performance-mgmt-{key}"


def interrupted_deploy(monkeypatch, cfn, rendered, cancel: bool):
    """Deploy a (executing, held by a gate) and b (its change set waiting for approval), then Ctrl-C."""
    gate = threading.Event()
    cfn.gates[name("a")] = gate
    executing, asking = threading.Event(), threading.Event()
    stop = threading.Event()
    original_execute = cfn.execute_change_set

    def execute(**kwargs):
        original_execute(**kwargs)
        executing.set()

    def approve(spec, changes):
        if spec.key == "b":
            asking.set()
            stop.wait(5)  # the prompt is open when Ctrl-C comes
        return True

    calls = {"n": 0}
    real_wait = concurrent.futures.wait

    def ctrl_c_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            assert executing.wait(5) and asking.wait(5)
            raise KeyboardInterrupt
        return real_wait(*args, **kwargs)

    cfn.execute_change_set = execute
    monkeypatch.setattr("perfdeploy.deploy.executor.wait", ctrl_c_once)
    deployer = Deployer(FakeAws(cfn), rendered, DeployOptions(yes=True, concurrency=2), Reporter(quiet=True),
                        approve, backoff=FAST, stop=stop, cancel_on_interrupt=lambda keys: cancel)
    try:
        run = deployer.run()
    finally:
        gate.set()
    return {s.key: s for s in run.stacks}, run


def test_ctrl_c_deletes_unexecuted_change_sets_and_marks_stacks_interrupted(monkeypatch):
    cfn = FakeCloudFormation()
    results, run = interrupted_deploy(monkeypatch, cfn, tiny_environment({"a": [], "b": [], "c": ["a"]}), False)
    assert results["b"].action is Action.INTERRUPTED
    assert results["a"].action is Action.INTERRUPTED and results["a"].status == "CREATE_IN_PROGRESS"
    assert results["c"].action is Action.SKIPPED and "interrupted" in results["c"].reason
    assert cfn.change_sets == {}
    assert name("b") not in cfn.stacks  # its empty review stack went with the change set
    assert cfn.count("cancel_update_stack") == 0  # a create cannot be cancelled


def test_ctrl_c_during_an_update_offers_to_cancel_it(monkeypatch):
    cfn = FakeCloudFormation()
    edges = {"a": [], "b": []}
    Deployer(FakeAws(cfn), tiny_environment(edges), DeployOptions(yes=True), Reporter(quiet=True),
             lambda s, c: True, backoff=FAST).run()
    results, _ = interrupted_deploy(monkeypatch, cfn, tiny_environment(edges, version=2), cancel=True)
    assert results["a"].action is Action.CANCELLED
    assert cfn.count("cancel_update_stack") == 1
    assert cfn.change_sets == {}


def test_an_interrupted_run_exits_130():
    from perfdeploy.cli.shared import finish
    from perfdeploy.deploy.results import StackResult

    run = RunResult("dev", "us-east-1", [StackResult("a", "s", Action.INTERRUPTED)])
    with pytest.raises(SystemExit) as caught:
        finish(run, as_json=False, verb="deploy")
    assert caught.value.code == INTERRUPTED


# Rollback triggers ---------------------------------------------------------------------------------

GUARDED = {"monitoring": [], "app": []}


def staging(version: int = 1):
    return tiny_environment(GUARDED, env="staging", guarded=("app",), version=version,
                            outputs={"monitoring": ["ServiceUnhealthyAlarmArn"]})


def run_staging(cfn, rendered, aws=None, **options):
    aws = aws or FakeAws(cfn)
    return Deployer(aws, rendered, DeployOptions(yes=True, **options), Reporter(quiet=True), lambda s, c: True,
                    backoff=FAST).run()


def rollback_configs(cfn, key):
    return [c["RollbackConfiguration"] for op, c in cfn.calls
            if op == "create_change_set" and c["StackName"] == name(key, "staging")]


def test_triggers_are_attached_only_where_configured_and_skipped_on_a_first_deploy():
    cfn = FakeCloudFormation()
    run_staging(cfn, staging())
    assert rollback_configs(cfn, "app") == [None]  # monitoring was not deployed yet
    run_staging(cfn, staging(version=2))
    arn = cfn.stacks[name("monitoring", "staging")].outputs["ServiceUnhealthyAlarmArn"]
    assert rollback_configs(cfn, "app")[-1] == {
        "RollbackTriggers": [{"Arn": arn, "Type": "AWS::CloudWatch::Alarm"}], "MonitoringTimeInMinutes": 10}
    assert all(c is None for c in rollback_configs(cfn, "monitoring"))


def test_dev_has_no_triggers():
    rendered = tiny_environment(GUARDED, env="dev", guarded=("app",),
                                outputs={"monitoring": ["ServiceUnhealthyAlarmArn"]})
    assert all(not s.manifest["rollback_triggers"] for s in rendered.stacks)


def test_a_trigger_already_in_alarm_refuses_the_deploy_unless_ignored():
    cfn = FakeCloudFormation()
    aws = FakeAws(cfn)
    run_staging(cfn, staging(), aws=aws)
    alarm = f"{name('monitoring', 'staging')}-ServiceUnhealthyAlarmArn"
    aws.client("cloudwatch").states[alarm] = "ALARM"
    before = cfn.count("create_change_set")
    with pytest.raises(SafetyRefusal, match="already in ALARM.*--ignore-triggers"):
        run_staging(cfn, staging(version=2), aws=aws)
    assert cfn.count("create_change_set") == before
    run = run_staging(cfn, staging(version=2), aws=aws, ignore_triggers=True)
    assert {s.key: s.action for s in run.stacks}["app"] is Action.UPDATED
    assert rollback_configs(cfn, "app")[-1] is None
