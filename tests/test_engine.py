"""The deploy engine against a fake CloudFormation: what the emulator cannot produce."""

from __future__ import annotations

import re
import threading

import pytest
from botocore.exceptions import EndpointConnectionError, UnauthorizedSSOTokenError
from cfn_flip import load as load_template
from fakes import FakeAws, FakeCloudFormation, FakeEcr, client_error, tiny_environment

from perfdeploy.deploy.engine import Deployer, DeployOptions
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action
from perfdeploy.deploy.waiter import Backoff

FAST = Backoff(initial=0.001, factor=1.5, maximum=0.01)
DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}


def deploy(rendered, cfn: FakeCloudFormation, approve=lambda spec, changes: True, aws=None, **options):
    aws = aws or FakeAws(cfn)
    deployer = Deployer(aws, rendered, DeployOptions(yes=True, **options), Reporter(quiet=True), approve,
                        backoff=FAST)
    run = deployer.run()
    return {s.key: s for s in run.stacks}, run


def name(key: str) -> str:
    return f"dev-performance-mgmt-{key}"


@pytest.fixture
def cfn():
    fake = FakeCloudFormation()
    yield fake
    assert fake.change_sets == {}, "a run left a change set behind"


def test_every_stack_is_created_and_each_output_chained_into_its_consumers(cfn):
    results, run = deploy(tiny_environment(DIAMOND), cfn)
    assert run.ok and {r.action for r in results.values()} == {Action.CREATED}
    assert cfn.stacks[name("d")].parameters == {"Pb": f"{name('b')}:Out", "Pc": f"{name('c')}:Out"}


def test_a_second_deploy_creates_no_change_set_and_reports_unchanged(cfn):
    rendered = tiny_environment(DIAMOND)
    deploy(rendered, cfn)
    before = cfn.count("create_change_set")
    results, _ = deploy(rendered, cfn)
    assert {r.action for r in results.values()} == {Action.UNCHANGED}
    assert cfn.count("create_change_set") == before


def test_force_makes_change_sets_and_an_empty_one_is_deleted_and_reported_unchanged(cfn):
    rendered = tiny_environment(DIAMOND)
    deploy(rendered, cfn)
    results, _ = deploy(rendered, cfn, force=True)
    assert {r.action for r in results.values()} == {Action.UNCHANGED}
    assert cfn.count("delete_change_set") >= 5


def test_a_stack_in_a_failed_state_is_never_skipped(cfn):
    rendered = tiny_environment({"a": []})
    deploy(rendered, cfn)
    cfn.stacks[name("a")].status = "UPDATE_ROLLBACK_COMPLETE"
    before = cfn.count("create_change_set")
    deploy(rendered, cfn)
    assert cfn.count("create_change_set") == before + 1


def test_a_failed_stack_skips_its_dependents_while_an_independent_branch_carries_on(cfn):
    cfn.fail[name("b")] = ("Queue", "Resource handler returned message: quota exceeded")
    results, run = deploy(tiny_environment(DIAMOND), cfn)
    assert not run.ok
    assert results["b"].action is Action.FAILED
    assert results["b"].status == "ROLLBACK_COMPLETE"
    assert results["b"].reason == "Queue (AWS::Fake::Thing): Resource handler returned message: quota exceeded"
    assert results["d"].action is Action.SKIPPED and "dependency b" in results["d"].reason
    assert {results[k].action for k in "ace"} == {Action.CREATED}


def test_fail_fast_starts_nothing_new_after_a_failure(cfn):
    cfn.fail[name("a")] = ("Thing", "boom")
    results, _ = deploy(tiny_environment({"a": [], "z": ["y"], "y": []}), cfn, fail_fast=True, concurrency=1)
    assert results["a"].action is Action.FAILED
    assert results["z"].action is Action.SKIPPED


def test_a_failed_first_create_is_deleted_and_created_again(cfn):
    cfn.put(name("a"), "ROLLBACK_COMPLETE")
    results, _ = deploy(tiny_environment({"a": []}), cfn)
    assert results["a"].action is Action.CREATED
    assert cfn.count("delete_stack") == 1


# What deploy does from each row of the state table (states.DEPLOY_DECISIONS), one case per row.
FROM_STATE = {
    None: Action.CREATED, "REVIEW_IN_PROGRESS": Action.CREATED,
    "CREATE_COMPLETE": Action.UPDATED, "UPDATE_COMPLETE": Action.UPDATED, "UPDATE_ROLLBACK_COMPLETE": Action.UPDATED,
    "IMPORT_COMPLETE": Action.UPDATED, "IMPORT_ROLLBACK_COMPLETE": Action.UPDATED,
    "ROLLBACK_COMPLETE": Action.CREATED,                                      # deleted, then created again
    "CREATE_FAILED": Action.UPDATED, "UPDATE_FAILED": Action.UPDATED,        # fixed forward
    "ROLLBACK_FAILED": Action.REFUSED, "UPDATE_ROLLBACK_FAILED": Action.REFUSED, "DELETE_FAILED": Action.REFUSED,
    "IMPORT_ROLLBACK_FAILED": Action.REFUSED,
}


def test_the_state_table_has_a_case_for_every_row():
    from perfdeploy.deploy.states import DEPLOY_DECISIONS

    assert set(FROM_STATE) == set(DEPLOY_DECISIONS)


@pytest.mark.parametrize("status", list(FROM_STATE))
def test_deploy_from_each_state_does_what_its_row_says(cfn, status):
    if status is not None:
        cfn.put(name("a"), status, {"Resources": {"Thing": {"Type": "AWS::SNS::Topic", "Properties": {"V": 1}}}})
    results, _ = deploy(tiny_environment({"a": []}, version=2), cfn)
    assert results["a"].action is FROM_STATE[status], results["a"].reason
    assert (cfn.count("delete_stack") == 1) is (status == "ROLLBACK_COMPLETE")


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED", "DELETE_FAILED"])
def test_a_stuck_stack_is_refused_with_a_pointer_to_rollback(cfn, status):
    cfn.put(name("a"), status)
    results, _ = deploy(tiny_environment({"a": [], "b": ["a"]}), cfn)
    assert results["a"].action is Action.REFUSED
    assert "perfdeploy rollback" in results["a"].reason
    assert results["b"].action is Action.SKIPPED


@pytest.mark.parametrize(("failed", "created"), [("UPDATE_FAILED", False), ("CREATE_FAILED", True)])
def test_a_failure_paused_by_no_rollback_is_fixed_forward_by_the_next_deploy(cfn, failed, created):
    rendered = tiny_environment({"a": [], "b": ["a"]})
    if not created:
        deploy(rendered, cfn)
        rendered = tiny_environment({"a": [], "b": ["a"]}, version=2)
    cfn.fail[name("a")] = ("Thing", "Resource handler returned message: invalid value")
    results, _ = deploy(rendered, cfn, no_rollback=True)
    assert cfn.stacks[name("a")].status == failed
    del cfn.fail[name("a")]                                   # the fix
    fixed = tiny_environment({"a": [], "b": ["a"]}, version=3)
    results, run = deploy(fixed, cfn)
    assert results["a"].action is Action.UPDATED and results["a"].status == "UPDATE_COMPLETE"
    assert cfn.args("create_change_set")[-2]["ChangeSetType"] == "UPDATE"   # a's; the last one is b's
    assert run.ok


def test_a_paused_failure_with_nothing_new_to_deploy_stays_failed_and_says_so(cfn):
    rendered = tiny_environment({"a": []})
    deploy(rendered, cfn)
    cfn.fail[name("a")] = ("Thing", "boom")
    deploy(tiny_environment({"a": []}, version=2), cfn, no_rollback=True)
    cfn.stacks[name("a")].template = load_template(tiny_environment({"a": []}, version=2).stack("a").body)[0]
    results, _ = deploy(tiny_environment({"a": []}, version=2), cfn)
    assert results["a"].action is Action.FAILED
    assert results["a"].reason.startswith("still UPDATE_FAILED: nothing differs from the update that failed")


def test_a_stack_with_an_operation_in_progress_is_waited_for(cfn):
    rendered = tiny_environment({"a": []})
    deploy(rendered, cfn)
    cfn.stacks[name("a")].status = "UPDATE_IN_PROGRESS"
    cfn.in_progress[name("a")] = 3
    results, _ = deploy(rendered, cfn)
    assert results["a"].action is Action.UNCHANGED
    assert cfn.stacks[name("a")].status == "UPDATE_COMPLETE"


def test_a_busy_stack_is_decided_with_what_the_operation_it_waited_for_left(cfn):
    rendered = tiny_environment({"registry": [], "app": ["registry"]}, image_stack="app")
    aws = FakeAws(cfn, ecr=FakeEcr(tags={"v1", "v2"}))
    deploy(rendered, cfn, aws=aws, args={"image_tag": "v1"})
    app = cfn.stacks[name("app")]
    app.status = "UPDATE_IN_PROGRESS"          # someone else's deploy of v2 is running
    cfn.in_progress[name("app")] = 3
    cfn.on_settle[name("app")] = lambda stack: stack.parameters.update(ImageTag="v2")
    results, _ = deploy(rendered, cfn, aws=aws)  # no --image-tag: keep what is deployed, once it is
    assert results["app"].action is Action.UNCHANGED
    assert app.parameters["ImageTag"] == "v2"


def test_throttling_during_waits_does_not_fail_the_deploy(cfn):
    rendered = tiny_environment({"a": [], "b": ["a"]})
    original = cfn.execute_change_set

    def execute_then_throttle(**kwargs):
        original(**kwargs)
        cfn.throttle_describes = 3

    cfn.execute_change_set = execute_then_throttle
    results, run = deploy(rendered, cfn)
    assert run.ok, [r.reason for r in results.values()]


def test_throttling_that_does_not_end_fails_the_stack_after_the_bound_and_says_it_is_retrying(cfn):
    notes: list[str] = []
    reporter = Reporter(quiet=True)
    reporter.notice = notes.append
    original = cfn.execute_change_set

    def execute_then_throttle_forever(**kwargs):
        original(**kwargs)
        cfn.errors["describe_stacks"] = [client_error("Throttling", "Rate exceeded", "DescribeStacks")] * 10**6

    cfn.execute_change_set = execute_then_throttle_forever
    patient = Backoff(initial=0.001, factor=1.5, maximum=0.005, patience=0.2, announce_after=0.05)
    run = Deployer(FakeAws(cfn), tiny_environment({"a": []}), DeployOptions(yes=True), reporter,
                   lambda s, c: True, backoff=patient).run()
    assert run.stacks[0].action is Action.FAILED
    assert re.match(r"gave up after \d+s of retries: An error occurred \(Throttling\)", run.stacks[0].reason)
    assert any(n.startswith("a: retrying (An error occurred (Throttling)") for n in notes)


@pytest.mark.parametrize("error", [
    UnauthorizedSSOTokenError(),
    client_error("ExpiredToken", "The security token included in the request is expired", "DescribeStacks"),
])
def test_an_expired_token_during_a_wait_ends_the_stack_in_its_own_words(cfn, error):
    original = cfn.execute_change_set

    def execute_then_expire(**kwargs):
        original(**kwargs)
        cfn.errors["describe_stacks"] = [error] * 50

    cfn.execute_change_set = execute_then_expire
    results, run = deploy(tiny_environment({"a": [], "b": ["a"]}), cfn)
    assert results["a"].action is Action.FAILED and results["a"].reason == str(error)
    assert results["b"].action is Action.SKIPPED


def test_an_unexpected_error_is_that_stacks_failure_and_the_rest_carry_on(cfn):
    cfn.errors["execute_change_set"] = [EndpointConnectionError(endpoint_url="https://cloudformation.invalid/")]
    results, run = deploy(tiny_environment({"a": [], "b": ["a"], "z": []}), cfn, concurrency=1)
    assert results["a"].action is Action.FAILED
    assert results["a"].reason == 'Could not connect to the endpoint URL: "https://cloudformation.invalid/"'
    assert results["b"].action is Action.SKIPPED and "dependency a" in results["b"].reason
    assert results["z"].action is Action.CREATED


def test_termination_protection_alone_is_applied_although_the_change_set_has_no_changes(cfn):
    rendered = tiny_environment({"a": []}, env="prod")
    deploy(rendered, cfn)
    stack = cfn.stacks["prod-performance-mgmt-a"]
    stack.termination_protection = False     # e.g. deployed before prod turned it on
    results, _ = deploy(rendered, cfn)
    assert stack.termination_protection is True
    assert results["a"].action is Action.UPDATED and results["a"].reason == "termination protection enabled"


def test_a_missing_stack_policy_is_set_although_nothing_else_differs(cfn):
    rendered = tiny_environment({"a": []}, env="prod", extra={"a": {"Table": {
        "Type": "AWS::DynamoDB::Table", "Properties": {"V": 1}}}})
    deploy(rendered, cfn)
    stack = cfn.stacks["prod-performance-mgmt-a"]
    stack.policy = None
    before = cfn.count("create_change_set")
    results, _ = deploy(rendered, cfn)
    assert stack.policy is not None and "LogicalResourceId/Table" in stack.policy
    assert results["a"].reason == "stack policy set"
    assert cfn.count("create_change_set") == before   # nothing else differed: no change set
    sets = cfn.count("set_stack_policy")
    results, _ = deploy(rendered, cfn)
    assert results["a"].action is Action.UNCHANGED and cfn.count("set_stack_policy") == sets  # equal: left alone


def test_no_rollback_passes_disable_rollback_and_keeps_the_failure_in_place(cfn):
    cfn.fail[name("a")] = ("Thing", "boom")
    results, _ = deploy(tiny_environment({"a": []}), cfn, no_rollback=True)
    assert results["a"].status == "CREATE_FAILED"
    assert [c for op, c in cfn.calls if op == "execute_change_set"][0]["DisableRollback"] is True


def test_at_most_concurrency_stacks_run_at_once(cfn):
    edges = {k: [] for k in "abcdef"}
    gates = {name(k): threading.Event() for k in edges}
    cfn.gates.update(gates)
    releaser = threading.Timer(0.3, lambda: [g.set() for g in gates.values()])
    releaser.start()
    results, run = deploy(tiny_environment(edges), cfn, concurrency=2)
    assert run.ok
    assert cfn.max_running == 2


def test_a_stack_starts_as_soon_as_its_own_inputs_are_ready_not_level_by_level(cfn):
    # a is slow; b's consumer c must start (and finish) while a is still running.
    edges = {"a": [], "b": [], "c": ["b"], "d": ["a"]}
    gate_a = threading.Event()
    cfn.gates[name("a")] = gate_a
    started: list[str] = []
    original = cfn.create_change_set

    def record(**kwargs):
        started.append(kwargs["StackName"].rsplit("-", 1)[1])
        if kwargs["StackName"] == name("c"):
            gate_a.set()  # a finishes only once c has started: completion order, not timing
        return original(**kwargs)

    cfn.create_change_set = record
    results, run = deploy(tiny_environment(edges), cfn, concurrency=4)
    assert run.ok
    assert started.index("c") < started.index("d")


def test_an_unapproved_change_set_is_deleted_and_the_stack_skipped(cfn):
    results, _ = deploy(tiny_environment({"a": [], "b": ["a"]}), cfn, approve=lambda spec, changes: False)
    assert results["a"].action is Action.SKIPPED and results["a"].reason == "not approved"
    assert name("a") not in cfn.stacks  # the empty REVIEW_IN_PROGRESS stack is gone too


def test_the_image_tag_must_exist_before_the_ecs_like_stack_deploys(cfn):
    rendered = tiny_environment({"registry": [], "app": ["registry"]}, image_stack="app")
    aws = FakeAws(cfn, ecr=FakeEcr(tags={"v1"}))
    results, run = deploy(rendered, cfn, aws=aws, args={"image_tag": "v2"})
    assert results["app"].action is Action.FAILED
    assert results["app"].reason.startswith("image tag 'v2' is not in the repository dev-performance-mgmt-")
    assert "--skip-image-check" in results["app"].reason
    results, _ = deploy(rendered, cfn, aws=aws, args={"image_tag": "v2"}, skip_image_check=True)
    assert results["app"].action is Action.CREATED


def test_a_new_image_tag_updates_only_the_stack_that_takes_it(cfn):
    rendered = tiny_environment({"registry": [], "app": ["registry"], "other": []}, image_stack="app")
    aws = FakeAws(cfn, ecr=FakeEcr(tags={"v1", "v2"}))
    deploy(rendered, cfn, aws=aws, args={"image_tag": "v1"})
    results, _ = deploy(rendered, cfn, aws=aws, args={"image_tag": "v2"})
    assert results["app"].action is Action.UPDATED
    assert results["registry"].action is results["other"].action is Action.UNCHANGED
    assert cfn.stacks[name("app")].parameters["ImageTag"] == "v2"


def test_stack_selection_reads_inputs_from_deployed_upstreams(cfn):
    rendered = tiny_environment(DIAMOND)
    deploy(rendered, cfn)
    cfn.stacks[name("b")].outputs["Out"] = "new-b"
    results, _ = deploy(rendered, cfn, only=("d",))
    assert set(results) == {"d"}
    assert results["d"].action is Action.UPDATED
    assert cfn.stacks[name("d")].parameters["Pb"] == "new-b"


def test_stack_selection_with_an_undeployed_upstream_is_a_clear_error(cfn):
    from perfdeploy.errors import ConfigError

    with pytest.raises(ConfigError, match="the b stack .* is not deployed"):
        deploy(tiny_environment(DIAMOND), cfn, only=("d",))


def test_a_deploy_without_an_image_tag_keeps_the_deployed_one(cfn):
    rendered = tiny_environment({"registry": [], "app": ["registry"]}, image_stack="app")
    aws = FakeAws(cfn, ecr=FakeEcr(tags={"v7"}))
    deploy(rendered, cfn, aws=aws, args={"image_tag": "v7"})
    results, _ = deploy(rendered, cfn, aws=aws)
    assert results["app"].action is Action.UNCHANGED
    assert cfn.stacks[name("app")].parameters["ImageTag"] == "v7"


def test_deploying_one_stack_names_the_deployed_dependents_left_with_stale_inputs(cfn):
    rendered = tiny_environment({"a": [], "b": ["a"], "c": ["a"]})
    deploy(rendered, cfn, only=("a", "b"))
    notes: list[str] = []
    reporter = Reporter(quiet=True)
    reporter.notice = notes.append
    Deployer(FakeAws(cfn), tiny_environment({"a": [], "b": ["a"], "c": ["a"]}, version=2),
             DeployOptions(yes=True, only=("a",)), reporter, lambda s, c: True, backoff=FAST).run()
    assert notes == ["deployed dependents that may now have stale inputs: b (deploy them next)"]


def test_a_deploy_of_rendered_templates_imports_neither_troposphere_nor_cfn_lint():
    """A no-op deploy renders and lints from their caches: the modules the deploy path imports must not pull
    in the blueprints' library (troposphere, ~30 ms) or cfn-lint (~0.3 s) for type hints alone."""
    import subprocess
    import sys

    code = ("import sys, perfdeploy.cli, perfdeploy.deploy.run, perfdeploy.deploy.engine, perfdeploy.deploy.preflight; "
            "print(sorted(m for m in ('troposphere', 'cfnlint', 'perfdeploy.blueprints') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
