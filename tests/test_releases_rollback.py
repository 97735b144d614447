"""Releases and rollback against a fake CloudFormation: every row of the state table, and the order."""

from __future__ import annotations

import pytest
from fakes import FakeAws, FakeCloudFormation, FakeEcr, tiny_environment

from perfdeploy.deploy.engine import DeployOptions
from perfdeploy.deploy.releases import ReleaseStore
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action
from perfdeploy.deploy.rollback import ROLLBACK_DECISIONS, Step, rollback_step
from perfdeploy.deploy.run import deploy_rendered, rollback
from perfdeploy.deploy.waiter import Backoff
from perfdeploy.errors import SafetyRefusal, UsageError

YES = lambda spec, changes: True  # noqa: E731


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr("perfdeploy.deploy.engine.Backoff", lambda: Backoff(0.001, 1.5, 0.01))


@pytest.fixture
def aws():
    fake = FakeAws(FakeCloudFormation(), ecr=FakeEcr(tags={"v1", "v2"}))
    yield fake
    assert fake.client("cloudformation").change_sets == {}, "a run left a change set behind"


def cfn_of(aws):
    return aws.client("cloudformation")


def name(key: str) -> str:
    return f"dev-performance-mgmt-{key}"


def app_env(tag_stack: str = "app", **kw):
    return tiny_environment({"registry": [], "app": ["registry"]}, image_stack=tag_stack, **kw)


def ship(rendered, aws, **options):
    return deploy_rendered(rendered, aws, DeployOptions(yes=True, **options), Reporter(quiet=True), YES)


def roll(aws, **kw):
    kw.setdefault("to", None)
    return rollback("dev", "us-east-1", aws, yes=True, skip_resources=kw.pop("skip", ()),
                    allow_replace=frozenset(), reporter=Reporter(quiet=True), approve=YES, **kw)


def test_every_successful_deploy_records_a_release_with_what_rollback_needs(aws):
    run1 = ship(app_env(), aws, args={"image_tag": "v1"})
    run2 = ship(app_env(), aws, args={"image_tag": "v2"})
    store = ReleaseStore.__new__(ReleaseStore)
    from perfdeploy.deploy.artifacts import Artifacts
    store.artifacts = Artifacts(aws)
    releases = store.all("dev")
    assert [r.id for r in releases] == [run1.release, run2.release]
    assert [r.image_tag for r in releases] == ["v1", "v2"]
    app = releases[0].stacks["app"]
    assert app["parameters"]["ImageTag"] == "v1" and "Resources" in app["template"]
    assert app["manifest"]["parameters"]["Pregistry"] == {"stack": "registry", "output": "Out"}


def test_a_deploy_that_changes_nothing_records_no_release(aws):
    ship(app_env(), aws, args={"image_tag": "v1"})
    assert ship(app_env(), aws, args={"image_tag": "v1"}).release is None


def test_a_failed_deploy_records_no_release(aws):
    cfn_of(aws).fail[name("app")] = ("Thing", "boom")
    run = ship(app_env(), aws, args={"image_tag": "v1"})
    assert not run.ok and run.release is None


def test_two_deploys_at_once_are_refused_naming_the_holder(aws):
    store_lock = None
    from perfdeploy.deploy.artifacts import Artifacts
    store_lock = ReleaseStore(Artifacts(aws)).lock("dev", "deploy")
    with store_lock, pytest.raises(SafetyRefusal, match=r"dev is locked by .*@.* \(pid \d+, 'deploy', since"):
        ship(app_env(), aws)
    assert ship(app_env(), aws, args={"image_tag": "v1"}).ok  # released afterwards


def test_rollback_returns_to_the_release_before_the_deployed_one_and_records_a_third(aws):
    ship(app_env(), aws, args={"image_tag": "v1"})
    ship(app_env(), aws, args={"image_tag": "v2"})
    run = roll(aws)
    results = {s.key: s for s in run.stacks}
    assert results["app"].action is Action.ROLLED_BACK
    assert results["registry"].action is Action.UNCHANGED
    assert cfn_of(aws).stacks[name("app")].parameters["ImageTag"] == "v1"
    assert run.release is not None
    from perfdeploy.deploy.artifacts import Artifacts
    kinds = [r.kind for r in ReleaseStore(Artifacts(aws)).all("dev")]
    assert kinds == ["deploy", "deploy", "rollback"]


def test_with_only_one_release_there_is_nothing_to_roll_back_to(aws):
    ship(app_env(), aws, args={"image_tag": "v1"})
    with pytest.raises(UsageError, match="nothing older to roll back to"):
        roll(aws)


def test_an_update_in_progress_of_the_latest_release_is_cancelled_and_that_is_all(aws):
    ship(app_env(), aws, args={"image_tag": "v1"})
    cfn = cfn_of(aws)
    cfn.stacks[name("app")].status = "UPDATE_IN_PROGRESS"
    run = roll(aws)  # the deployed state is not a release: the target is the latest one
    assert {s.key: s.action for s in run.stacks}["app"] is Action.CANCELLED


def test_after_a_failed_deploy_rollback_returns_to_the_latest_release(aws):
    ship(app_env(), aws, args={"image_tag": "v1"})
    cfn = cfn_of(aws)
    cfn.stacks[name("app")].parameters["ImageTag"] = "v2"  # a deploy that did not finish well
    cfn.stacks[name("app")].status = "UPDATE_ROLLBACK_COMPLETE"
    run = roll(aws)
    assert {s.key: s.action for s in run.stacks}["app"] is Action.ROLLED_BACK
    assert cfn.stacks[name("app")].parameters["ImageTag"] == "v1"


# The state table: one test per row ---------------------------------------------------------------

def test_every_row_of_the_table_is_a_known_step():
    assert rollback_step("UPDATE_ROLLBACK_IN_PROGRESS") is Step.WAIT
    assert rollback_step("SOMETHING_NEW") is Step.MANUAL
    assert set(ROLLBACK_DECISIONS.values()) <= set(Step)


def two_releases(aws):
    """Deploy v1 then v2; the row tests roll back --to the first, so the restore step is visible."""
    first = ship(app_env(), aws, args={"image_tag": "v1"}).release
    ship(app_env(), aws, args={"image_tag": "v2"})
    aws.first_release = first
    return cfn_of(aws)


def roll_to_first(aws, **kw):
    return roll(aws, to=aws.first_release, **kw)


def test_an_update_in_progress_is_cancelled(aws):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = "UPDATE_IN_PROGRESS"
    run = roll_to_first(aws)
    assert cfn.count("cancel_update_stack") == 1
    assert {s.key: s.action for s in run.stacks}["app"] is Action.ROLLED_BACK


def test_a_create_in_progress_cannot_be_cancelled_and_says_so(aws):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = "CREATE_IN_PROGRESS"
    run = roll_to_first(aws)
    app = {s.key: s for s in run.stacks}["app"]
    assert app.action is Action.SKIPPED and "cannot be cancelled" in app.reason
    assert cfn.count("cancel_update_stack") == 0


def test_update_rollback_failed_gets_continue_update_rollback_with_the_skipped_resources(aws):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = "UPDATE_ROLLBACK_FAILED"
    cfn.failed_resources[name("app")] = {"Thing"}
    run = roll_to_first(aws, skip=("app/Thing", "registry/Other"))
    call = [(c["StackName"], c["ResourcesToSkip"]) for c in cfn.args("continue_update_rollback")]
    assert call == [(name("app"), ["Thing"])]
    assert {s.key: s.action for s in run.stacks}["app"] is Action.ROLLED_BACK


def test_a_skip_resource_that_did_not_fail_is_that_stacks_failure_and_the_rest_carry_on(aws):
    edges = {"registry": [], "app": ["registry"], "other": [], "last": ["app"]}
    ship(tiny_environment(edges, image_stack="app"), aws, args={"image_tag": "v1"})
    ship(tiny_environment(edges, image_stack="app", version=2), aws, args={"image_tag": "v1"})
    cfn = cfn_of(aws)
    cfn.stacks[name("app")].status = "UPDATE_ROLLBACK_FAILED"
    cfn.failed_resources[name("app")] = {"Thing"}
    results = {s.key: s for s in roll(aws, skip=("app/Queue",)).stacks}
    assert results["app"].action is Action.FAILED
    assert "Resource [Queue] is not in UPDATE_FAILED state" in results["app"].reason
    assert results["last"].action is Action.SKIPPED
    assert results["other"].action is results["registry"].action is Action.UNCHANGED   # already at the target


def test_a_cancel_that_lost_its_race_with_the_update_decides_again(aws):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = "UPDATE_IN_PROGRESS"
    original = cfn.cancel_update_stack

    def update_finishes_first(**kwargs):
        cfn.stacks[name("app")].status = "UPDATE_COMPLETE"
        return original(**kwargs)   # CloudFormation: "CancelUpdateStack cannot be called from current stack status"

    cfn.cancel_update_stack = update_finishes_first
    run = roll_to_first(aws)
    assert {s.key: s.action for s in run.stacks}["app"] is Action.ROLLED_BACK
    assert cfn.stacks[name("app")].parameters["ImageTag"] == "v1"


@pytest.mark.parametrize("status, action", [("UPDATE_FAILED", Action.ROLLED_BACK), ("CREATE_FAILED", Action.DELETED)])
def test_a_paused_failure_gets_rollback_stack(aws, status, action):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = status
    run = roll_to_first(aws)
    assert cfn.count("rollback_stack") == 1
    assert {s.key: s.action for s in run.stacks}["app"] is action


def test_a_failed_first_create_is_deleted(aws):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = "ROLLBACK_COMPLETE"
    run = roll_to_first(aws)
    assert {s.key: s.action for s in run.stacks}["app"] is Action.DELETED
    assert cfn.count("delete_stack") == 1


def test_rollback_failed_needs_a_hand_and_says_how(aws):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = "ROLLBACK_FAILED"
    app = {s.key: s for s in roll_to_first(aws).stacks}["app"]
    assert app.action is Action.FAILED and "--retain-resources" in app.reason


def test_a_cleanup_in_progress_is_waited_for_then_restored(aws):
    cfn = two_releases(aws)
    cfn.stacks[name("app")].status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    cfn.in_progress[name("app")] = 2
    assert {s.key: s.action for s in roll_to_first(aws).stacks}["app"] is Action.ROLLED_BACK


# Order -------------------------------------------------------------------------------------------

def producer_consumer(version: int, consumer_uses_new: bool):
    """Release 1: producer P has one output. Release 2: P adds a resource and output New; C uses it."""
    from troposphere import Output, Parameter, Ref, Template

    from perfdeploy.blueprints.base import Blueprint, Input
    from perfdeploy.config import load_config
    from perfdeploy.render import render_env

    class Producer(Blueprint):
        key, description = "producer", "p"

        def build(self, cfg):
            t = Template()
            t.resources["Old"] = _raw("Old", {"Type": "AWS::SNS::Topic", "Properties": {"V": version}})
            t.add_output(Output("Out", Value=Ref("Old")))
            if version == 2:
                t.resources["New"] = _raw("New", {"Type": "AWS::SNS::Topic", "Properties": {}})
                t.add_output(Output("New", Value=Ref("New")))
            return t

    class Consumer(Blueprint):
        key, description = "consumer", "c"

        def inputs(self, cfg):
            return {"P": Input("producer", "New" if consumer_uses_new else "Out")}

        def build(self, cfg):
            t = Template()
            t.add_parameter(Parameter("P", Type="String"))
            t.resources["Use"] = _raw("Use", {"Type": "AWS::SNS::Topic", "Properties": {"Uses": {"Ref": "P"}}})
            return t

    return render_env(load_config("dev"), {"producer": Producer(), "consumer": Consumer()})


def _raw(title, data):
    from fakes import _Raw
    return _Raw(title, data)


def test_a_consumer_stops_using_a_new_resource_before_its_producer_removes_it(aws):
    ship(producer_consumer(1, consumer_uses_new=False), aws)
    ship(producer_consumer(2, consumer_uses_new=True), aws)
    cfn = cfn_of(aws)
    executed_before = len([c for op, c in cfn.calls if op == "create_change_set"])
    run = roll(aws)
    assert run.ok
    order = [c["StackName"] for op, c in cfn.calls if op == "create_change_set"][executed_before:]
    assert order == [name("consumer"), name("producer")]
    assert cfn.stacks[name("consumer")].parameters["P"] == f"{name('producer')}:Out"
    assert "New" not in cfn.stacks[name("producer")].template["Resources"]


def test_a_consumer_is_pointed_at_the_producers_id_after_the_producer_rolled_back(aws):
    cfn = cfn_of(aws)
    ship(producer_consumer(1, consumer_uses_new=False), aws)
    first_id = cfn.stacks[name("producer")].outputs["Out"]
    cfn.replacement[(name("producer"), "Old")] = "True"   # release 2 replaces Old: a new id
    ship(producer_consumer(2, consumer_uses_new=False), aws)
    run = roll(aws)  # replacing back gives Old yet another id, not the one release 1 recorded
    assert run.ok
    live = cfn.stacks[name("producer")].outputs["Out"]
    assert live != first_id
    assert cfn.stacks[name("consumer")].parameters["P"] == live


# A no-op after a release: a describe per stack, templates read only for stacks updated since ------------------

def test_a_no_op_after_a_release_reads_no_deployed_template(aws):
    ship(app_env(), aws, args={"image_tag": "v1"})
    cfn = cfn_of(aws)
    templates, describes = cfn.count("get_template"), cfn.count("describe_stacks")
    run = ship(app_env(), aws, args={"image_tag": "v1"})
    assert {s.action for s in run.stacks} == {Action.UNCHANGED}
    assert cfn.count("get_template") == templates
    assert cfn.count("describe_stacks") - describes == 2  # one per stack


def test_a_stack_updated_outside_perfdeploy_since_the_release_is_still_detected(aws):
    ship(app_env(), aws, args={"image_tag": "v1"})
    cfn = cfn_of(aws)
    registry = cfn.stacks[name("registry")]
    registry.template = {**registry.template, "Resources": {"Thing": {"Type": "AWS::SNS::Topic",
                                                                      "Properties": {"V": 99}}}}
    registry.touch()  # an update made in the console: LastUpdatedTime moves, whoever updates
    templates = cfn.count("get_template")
    run = ship(app_env(), aws, args={"image_tag": "v1"})
    actions = {s.key: s.action for s in run.stacks}
    assert actions == {"registry": Action.UPDATED, "app": Action.UNCHANGED}
    assert cfn.count("get_template") - templates == 1  # the registry's, and only it
    assert registry.template["Resources"]["Thing"]["Properties"]["V"] == 1  # back to what perfdeploy deploys


def test_a_recreated_stack_of_the_same_name_is_not_taken_for_the_recorded_one(aws):
    rendered = app_env()
    ship(rendered, aws, args={"image_tag": "v1"})
    cfn = cfn_of(aws)
    old = cfn.stacks[name("registry")]
    cfn.put(name("registry"), "CREATE_COMPLETE", {**old.template, "Resources": {}}, parameters=old.parameters,
            tags=old.tags, outputs=old.outputs)  # deleted and created again outside perfdeploy: a new stack id
    run = ship(rendered, aws, args={"image_tag": "v1"})
    assert {s.key: s.action for s in run.stacks}["registry"] is Action.UPDATED


def test_a_plan_with_nothing_changed_since_the_release_reads_and_parses_no_template(aws, monkeypatch):
    from perfdeploy.deploy.plan import make_plan

    ship(app_env(), aws, args={"image_tag": "v1"})
    cfn = cfn_of(aws)
    templates = cfn.count("get_template")
    monkeypatch.setattr("perfdeploy.deploy.plan.load", lambda body: pytest.fail("parsed a template"))
    plan = make_plan(aws, app_env(), DeployOptions(args={"image_tag": "v1"}))
    assert [s.action for s in plan.stacks] == ["unchanged", "unchanged"]
    assert cfn.count("get_template") == templates
