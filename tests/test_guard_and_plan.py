"""The stateful-resource guard and `plan`, against a fake CloudFormation that reports replacements."""

from __future__ import annotations

import json

import pytest
from fakes import FakeAws, FakeCloudFormation, tiny_environment
from test_engine import deploy

from perfdeploy.deploy.engine import DeployOptions
from perfdeploy.deploy.plan import make_plan
from perfdeploy.deploy.results import Action


def table(version: int) -> dict:
    return {"Type": "AWS::DynamoDB::Table", "Properties": {"Version": version}}


def data_env(version: int, env: str = "dev", with_table: bool = True, queue_version: int = 1):
    resources = {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"Version": queue_version}}}
    if with_table:
        resources["Table"] = table(version)
    return tiny_environment({"data": [], "app": ["data"]}, env=env, extra={"data": resources})


NAME = "{env}-performance-mgmt-data"


@pytest.fixture
def cfn():
    fake = FakeCloudFormation()
    yield fake
    assert fake.change_sets == {}, "a run left a change set behind"


@pytest.mark.parametrize("replacement", ["True", "Conditional"])
def test_a_replacement_of_a_table_is_refused_and_nothing_executes(cfn, replacement):
    deploy(data_env(1), cfn)
    cfn.replacement[(NAME.format(env="dev"), "Table")] = replacement
    executed = cfn.count("execute_change_set")
    results, run = deploy(data_env(2), cfn)
    assert results["data"].action is Action.REFUSED
    assert f"Table (AWS::DynamoDB::Table) would be replaced (Replacement: {replacement})" in results["data"].reason
    assert "To let it go ahead: --allow-replace data/Table" in results["data"].reason
    assert results["app"].action is Action.SKIPPED
    assert cfn.count("execute_change_set") == executed
    assert cfn.stacks[NAME.format(env="dev")].template["Resources"]["Table"]["Properties"]["Version"] == 1


def test_an_in_place_modification_of_a_table_passes(cfn):
    deploy(data_env(1), cfn)
    results, _ = deploy(data_env(2), cfn)
    assert results["data"].action is Action.UPDATED


def test_removing_a_table_is_refused(cfn):
    deploy(data_env(1), cfn)
    results, _ = deploy(data_env(1, with_table=False), cfn)
    assert results["data"].action is Action.REFUSED
    assert "Table (AWS::DynamoDB::Table) would be deleted" in results["data"].reason


def test_allow_replace_lets_exactly_the_named_resource_through(cfn):
    deploy(data_env(1), cfn)
    cfn.replacement[(NAME.format(env="dev"), "Table")] = "True"
    results, _ = deploy(data_env(2), cfn, allow_replace=frozenset({"data/Other"}))
    assert results["data"].action is Action.REFUSED
    results, _ = deploy(data_env(2), cfn, allow_replace=frozenset({"data/Table"}))
    assert results["data"].action is Action.UPDATED


def test_non_stateful_replacements_need_no_consent(cfn):
    deploy(data_env(1), cfn)
    cfn.replacement[(NAME.format(env="dev"), "Queue")] = "True"
    results, _ = deploy(data_env(1, queue_version=2), cfn)
    assert results["data"].action is Action.UPDATED


def policies(cfn: FakeCloudFormation, env: str = "prod") -> list[dict]:
    return [json.loads(body) for stack, body in cfn.policy_history if stack == NAME.format(env=env)]


def denied(policy: dict) -> list[str]:
    return [r for s in policy["Statement"] if s["Effect"] == "Deny" for r in s["Resource"]]


def test_prod_stacks_carry_a_policy_that_denies_replacing_their_data(cfn):
    deploy(data_env(1, env="prod"), cfn)
    assert denied(policies(cfn)[-1]) == ["LogicalResourceId/Table"]
    assert cfn.stacks[NAME.format(env="prod")].termination_protection is True


def test_an_allowed_replacement_in_prod_relaxes_the_policy_for_that_resource_then_restores_it(cfn):
    deploy(data_env(1, env="prod"), cfn)
    cfn.replacement[(NAME.format(env="prod"), "Table")] = "True"
    before = len(policies(cfn))
    results, _ = deploy(data_env(2, env="prod"), cfn, allow_replace=frozenset({"data/Table"}))
    assert results["data"].action is Action.UPDATED
    during, *after = policies(cfn)[before:]
    assert denied(during) == []
    assert all(denied(p) == ["LogicalResourceId/Table"] for p in after) and after


def test_the_prod_policy_is_restored_when_the_allowed_update_fails(cfn):
    deploy(data_env(1, env="prod"), cfn)
    cfn.replacement[(NAME.format(env="prod"), "Table")] = "True"
    cfn.fail[NAME.format(env="prod")] = ("Table", "boom")
    before = len(policies(cfn))
    results, _ = deploy(data_env(2, env="prod"), cfn, allow_replace=frozenset({"data/Table"}))
    assert results["data"].action is Action.FAILED
    assert [denied(p) for p in policies(cfn)[before:]] == [[], ["LogicalResourceId/Table"]]


def plan(rendered, cfn, **options):
    return make_plan(FakeAws(cfn), rendered, DeployOptions(**options))


def test_plan_of_a_new_environment_lists_every_resource_to_add(cfn):
    result = plan(data_env(1), cfn)
    assert [(s.key, s.action) for s in result.stacks] == [("data", "create"), ("app", "create")]
    assert {c["logical_id"] for c in result.stacks[0].changes} == {"Queue", "Table"}
    assert result.stacks[1].unknown_inputs == ["Pdata"]


def test_plan_marks_inputs_known_only_after_an_upstream_deploys_and_changes_nothing(cfn):
    deploy(data_env(1), cfn)
    stacks_before = {k: (v.template, v.parameters) for k, v in cfn.stacks.items()}
    result = plan(data_env(2), cfn)
    data, app = result.stacks
    assert (data.action, app.action) == ("update", "update")
    assert data.changes == [{"action": "Modify", "logical_id": "Table", "type": "AWS::DynamoDB::Table",
                             "replacement": "False"}]
    assert app.unknown_inputs == ["Pdata"]
    assert app.parameters[0]["new"] == "<known after data deploys>"
    assert {k: (v.template, v.parameters) for k, v in cfn.stacks.items()} == stacks_before
    assert result.changed


def test_plan_shows_what_the_guard_would_refuse(cfn):
    deploy(data_env(1), cfn)
    cfn.replacement[(NAME.format(env="dev"), "Table")] = "Conditional"
    data = plan(data_env(2), cfn).stacks[0]
    assert data.refused == ["Table (AWS::DynamoDB::Table) would be replaced (Replacement: Conditional)"]


def test_plan_of_an_unchanged_environment_reports_no_changes_and_makes_no_change_set(cfn):
    deploy(data_env(1), cfn)
    before = cfn.count("create_change_set")
    result = plan(data_env(1), cfn)
    assert not result.changed
    assert cfn.count("create_change_set") == before
