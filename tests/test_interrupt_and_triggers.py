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


NO_TRIGGERS = {"RollbackTriggers": []}   # given explicitly: the only way to detach saved triggers


@pytest.mark.parametrize(("kind", "trigger_type"), [("composite", "AWS::CloudWatch::CompositeAlarm"),
                                                    ("metric", "AWS::CloudWatch::Alarm")])
def test_triggers_are_attached_only_where_configured_and_skipped_on_a_first_deploy(kind, trigger_type):
    cfn = FakeCloudFormation()
    aws = FakeAws(cfn)
    run_staging(cfn, staging(), aws=aws)
    assert rollback_configs(cfn, "app") == [NO_TRIGGERS]  # monitoring was not deployed yet
    arn = cfn.stacks[name("monitoring", "staging")].outputs["ServiceUnhealthyAlarmArn"]
    aws.client("cloudwatch").kinds[arn.split(":alarm:")[1]] = kind
    run_staging(cfn, staging(version=2), aws=aws)
    assert rollback_configs(cfn, "app")[-1] == {
        "RollbackTriggers": [{"Arn": arn, "Type": trigger_type}], "MonitoringTimeInMinutes": 10}
    assert all(c == NO_TRIGGERS for c in rollback_configs(cfn, "monitoring"))


def guarded_by_a_saved_trigger():
    """staging deployed twice: the app stack now has the monitoring alarm saved as its rollback trigger."""
    cfn = FakeCloudFormation()
    aws = FakeAws(cfn)
    run_staging(cfn, staging(), aws=aws)
    run_staging(cfn, staging(version=2), aws=aws)
    assert cfn.stacks[name("app", "staging")].rollback_configuration["RollbackTriggers"]
    return cfn, aws, f"{name('monitoring', 'staging')}-ServiceUnhealthyAlarmArn"


def test_ignore_triggers_detaches_the_triggers_saved_on_the_stack():
    cfn, aws, alarm = guarded_by_a_saved_trigger()
    aws.client("cloudwatch").states[alarm] = "ALARM"
    run = run_staging(cfn, staging(version=3), aws=aws, ignore_triggers=True)
    assert {s.key: s.action for s in run.stacks}["app"] is Action.UPDATED, [s.reason for s in run.stacks]
    assert cfn.stacks[name("app", "staging")].rollback_configuration == NO_TRIGGERS


def test_a_deleted_alarm_is_no_longer_attached_and_the_update_goes_through():
    cfn, aws, alarm = guarded_by_a_saved_trigger()
    del aws.client("cloudwatch").states[alarm]
    notes: list[str] = []
    reporter = Reporter(quiet=True)
    reporter.notice = notes.append
    run = Deployer(aws, staging(version=3), DeployOptions(yes=True), reporter, lambda s, c: True,
                   backoff=FAST).run()
    assert {s.key: s.action for s in run.stacks}["app"] is Action.UPDATED, [s.reason for s in run.stacks]
    assert any(f"names the alarm {alarm}, which does not exist" in n for n in notes)


def test_rollback_of_a_guarded_stack_is_not_undone_by_its_firing_alarm(monkeypatch):
    from perfdeploy.deploy.run import deploy_rendered, rollback
    from perfdeploy.deploy.waiter import Backoff

    monkeypatch.setattr("perfdeploy.deploy.engine.Backoff", lambda: Backoff(0.001, 1.5, 0.01))
    cfn = FakeCloudFormation()
    aws = FakeAws(cfn)
    for version in (1, 2, 3):   # the third deploy runs under the trigger the second one saved
        deploy_rendered(staging(version), aws, DeployOptions(yes=True), Reporter(quiet=True), lambda s, c: True)
    aws.client("cloudwatch").states[f"{name('monitoring', 'staging')}-ServiceUnhealthyAlarmArn"] = "ALARM"
    run = rollback("staging", "us-east-1", aws, to=None, yes=True, skip_resources=(), allow_replace=frozenset(),
                   reporter=Reporter(quiet=True), approve=lambda s, c: True)
    assert {s.key: s.action for s in run.stacks}["app"] is Action.ROLLED_BACK, [s.reason for s in run.stacks]
    assert cfn.stacks[name("app", "staging")].rollback_configuration == NO_TRIGGERS


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
    assert rollback_configs(cfn, "app")[-1] == NO_TRIGGERS


# Ctrl-C at any point: exit 130 with every stack's result ---------------------------------------------------

def exit_code(run) -> int:
    from perfdeploy.cli.shared import finish

    with pytest.raises(SystemExit) as caught:
        finish(run, as_json=False, verb="deploy")
    return caught.value.code


def test_ctrl_c_before_any_stack_started_reports_every_stack_interrupted(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("perfdeploy.deploy.engine.read_triggers", interrupted)
    cfn = FakeCloudFormation()
    run = Deployer(FakeAws(cfn), tiny_environment({"a": [], "b": ["a"]}), DeployOptions(yes=True),
                   Reporter(quiet=True), lambda s, c: True, backoff=FAST).run()
    assert [(s.key, s.action) for s in run.stacks] == [("a", Action.INTERRUPTED), ("b", Action.INTERRUPTED)]
    assert cfn.count("create_change_set") == 0
    assert exit_code(run) == INTERRUPTED


class Terminal:
    """A terminal nobody types on (until `type` is called)."""

    def __init__(self):
        import os
        self.read_end, self.write_end = os.pipe()
        self.file = os.fdopen(self.read_end)

    def isatty(self):
        return True

    def fileno(self):
        return self.read_end

    def readline(self):
        return self.file.readline()

    def type(self, text: str):
        import os
        os.write(self.write_end, text.encode())


def test_ctrl_c_while_a_change_set_waits_for_approval_gives_up_the_prompt(monkeypatch):
    from perfdeploy.deploy import run as run_module
    from perfdeploy.deploy.run import approver, deploy_rendered

    terminal = Terminal()
    monkeypatch.setattr(run_module.sys, "stdin", terminal)
    asked = threading.Event()
    real_select = run_module.select.select

    def select_and_tell(*args):
        asked.set()
        return real_select(*args)

    monkeypatch.setattr(run_module.select, "select", select_and_tell)
    real_wait = concurrent.futures.wait
    calls = {"n": 0}

    def ctrl_c_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            assert asked.wait(5)
            raise KeyboardInterrupt
        return real_wait(*args, **kwargs)

    monkeypatch.setattr("perfdeploy.deploy.executor.wait", ctrl_c_once)
    nobody = threading.Timer(5, lambda: terminal.type("n\n"))   # old code read the prompt until Enter
    nobody.start()
    cfn = FakeCloudFormation()
    stop = threading.Event()
    reporter = Reporter(quiet=True)
    try:
        run = deploy_rendered(tiny_environment({"a": []}), FakeAws(cfn), DeployOptions(), reporter,
                              approver(False, reporter, stop), stop)
    finally:
        nobody.cancel()
    assert run.stacks[0].action is Action.INTERRUPTED
    assert cfn.change_sets == {} and cfn.count("execute_change_set") == 0
    assert exit_code(run) == INTERRUPTED


def test_ctrl_c_while_the_release_is_recorded_keeps_the_results(monkeypatch):
    from perfdeploy.deploy.releases import ReleaseStore
    from perfdeploy.deploy.run import deploy_rendered

    def interrupted(self, release):
        raise KeyboardInterrupt
    monkeypatch.setattr(ReleaseStore, "record", interrupted)
    run = deploy_rendered(tiny_environment({"a": []}), FakeAws(FakeCloudFormation()), DeployOptions(yes=True),
                          Reporter(quiet=True), lambda s, c: True)
    assert run.stacks[0].action is Action.CREATED and run.release is None
    assert exit_code(run) == INTERRUPTED


def test_a_second_ctrl_c_stops_waiting_for_the_stacks_still_winding_down(monkeypatch):
    cfn = FakeCloudFormation()
    gate = threading.Event()
    cfn.gates[name("a")] = gate
    executing = threading.Event()
    original = cfn.execute_change_set

    def execute(**kwargs):
        original(**kwargs)
        executing.set()

    cfn.execute_change_set = execute
    stop = threading.Event()
    real_result = concurrent.futures.Future.result

    def ctrl_c(*args, **kwargs):
        assert executing.wait(5)
        raise KeyboardInterrupt

    def second_ctrl_c(self, timeout=None):
        if stop.is_set() and threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt
        return real_result(self, timeout)

    monkeypatch.setattr("perfdeploy.deploy.executor.wait", ctrl_c)
    monkeypatch.setattr(concurrent.futures.Future, "result", second_ctrl_c)
    try:
        run = Deployer(FakeAws(cfn), tiny_environment({"a": [], "b": ["a"]}), DeployOptions(yes=True),
                       Reporter(quiet=True), lambda s, c: True, backoff=FAST, stop=stop,
                       cancel_on_interrupt=lambda keys: False).run()
    finally:
        gate.set()
        monkeypatch.setattr(concurrent.futures.Future, "result", real_result)
    assert [(s.key, s.action) for s in run.stacks] == [("a", Action.INTERRUPTED), ("b", Action.SKIPPED)]
