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


def test_an_upstream_modified_in_place_leaves_its_consumers_inputs_known_and_unchanged(cfn):
    deploy(data_env(1), cfn)
    stacks_before = {k: (v.template, v.parameters) for k, v in cfn.stacks.items()}
    result = plan(data_env(2), cfn)          # the table changes in place; app reads Out, the Ref of the queue
    data, app = result.stacks
    assert (data.action, app.action) == ("update", "unchanged")
    assert app.unknown_inputs == [] and app.parameters == []
    assert [(c["action"], c["logical_id"], c["replacement"]) for c in data.changes] == [("Modify", "Table", "False")]
    assert {k: (v.template, v.parameters) for k, v in cfn.stacks.items()} == stacks_before
    assert result.changed


def test_an_output_that_refs_a_replaced_resource_is_known_only_after_its_stack_deploys(cfn):
    deploy(data_env(1), cfn)
    cfn.replacement[(NAME.format(env="dev"), "Queue")] = "True"
    data, app = plan(data_env(1, queue_version=2), cfn).stacks
    assert (data.action, app.action) == ("update", "update")
    assert app.unknown_inputs == ["Pdata"]
    assert app.parameters == [{"name": "Pdata", "old": f"{NAME.format(env='dev')}:Out",
                               "new": "<known after data deploys>"}]


def getatt_env(version: int, attribute: str = "Arn"):
    from troposphere import GetAtt

    return tiny_environment({"data": [], "app": ["data"]}, version=version, out={"data": GetAtt("Thing", attribute)})


def test_an_output_that_getatts_a_resource_modified_in_place_is_unknown(cfn):
    deploy(getatt_env(1), cfn)
    data, app = plan(getatt_env(2), cfn).stacks
    assert data.changes[0]["replacement"] == "False"
    assert app.action == "update" and app.unknown_inputs == ["Pdata"]


def test_an_output_whose_own_definition_changes_is_unknown(cfn):
    deploy(getatt_env(1), cfn)
    _, app = plan(getatt_env(1, attribute="TopicName"), cfn).stacks
    assert app.action == "update" and app.unknown_inputs == ["Pdata"]


@pytest.mark.parametrize(("status", "action"), [("ROLLBACK_COMPLETE", "recreate"), ("REVIEW_IN_PROGRESS", "create")])
def test_plan_says_what_deploy_does_with_a_stack_that_cannot_be_updated(cfn, status, action):
    deploy(data_env(1), cfn)
    cfn.stacks[NAME.format(env="dev")].status = status
    data, app = plan(data_env(1), cfn).stacks
    assert data.action == action
    assert {c["logical_id"] for c in data.changes} == {"Queue", "Table"}
    assert app.unknown_inputs == ["Pdata"]


def test_plan_of_a_paused_failure_shows_the_update_that_fixes_it_forward(cfn):
    deploy(data_env(1), cfn)
    cfn.stacks[NAME.format(env="dev")].status = "UPDATE_FAILED"
    data, app = plan(data_env(2), cfn).stacks
    assert data.action == "update" and "paused by --no-rollback" in data.note
    assert [c["logical_id"] for c in data.changes] == ["Table"]


def image_env():
    task = {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [
        {"Name": "app", "Image": {"Fn::Sub": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:${ImageTag}"}}]}}
    service = {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": "Task"}}}
    return tiny_environment({"registry": [], "app": ["registry"]}, image_stack="app",
                            extra={"app": {"Task": task, "Service": service}})


def test_plan_shows_each_changed_property_old_and_new_with_why_and_whether_it_recreates(cfn):
    from fakes import FakeEcr
    aws = FakeAws(cfn, ecr=FakeEcr(tags={"v1", "v2"}))
    deploy(image_env(), cfn, aws=aws, args={"image_tag": "v1"})
    cfn.replacement[("dev-performance-mgmt-app", "Task")] = "True"   # ContainerDefinitions is create-only
    app = make_plan(aws, image_env(), DeployOptions(args={"image_tag": "v2"})).stacks[1]
    changes = {c["logical_id"]: c for c in app.changes}
    assert changes["Task"]["properties"] == [{
        "path": "ContainerDefinitions[0].Image", "old": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1",
        "new": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2", "recreation": "Always",
        "cause": "ParameterReference ImageTag"}]
    assert changes["Service"]["properties"] == [{
        "path": "TaskDefinition", "old": "!Ref Task", "new": "<known after this deploy>", "recreation": "Never",
        "cause": "ResourceReference Task"}]
    assert app.parameters == [{"name": "ImageTag", "old": "v1", "new": "v2"}]


def test_plan_text_and_json_show_the_property_changes_and_the_stack_tag_changes(cfn, capsys):
    from rich.console import Console

    from perfdeploy.deploy.report import plan_tables

    deploy(data_env(1), cfn)
    cfn.stacks[NAME.format(env="dev")].tags["CostCenter"] = "old-center"
    result = plan(data_env(2), cfn)
    data = result.to_json()["stacks"][0]
    assert data["tags"] == [{"key": "CostCenter", "old": "old-center", "new": data_env(2).stack("data")
                             .manifest["tags"]["CostCenter"]}]
    assert data["changes"][0]["properties"][0] == {"path": "Version", "old": 1, "new": 2, "recreation": "Never",
                                                   "cause": "DirectModification"}
    console = Console(file=None, width=200, record=True)
    plan_tables(result, console)
    text = console.export_text()
    assert "Table.Version: 1 -> 2" in text
    assert "tag CostCenter: old-center -> " in text


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


# The property diff itself --------------------------------------------------------------------------------

def sides(old_props: dict, new_props: dict, rtype: str = "AWS::ElastiCache::ReplicationGroup",
          old_params=None, new_params=None, parameters=None):
    from perfdeploy.deploy.diff import Side

    def template(props):
        return {"Parameters": parameters or {}, "Resources": {"R": {"Type": rtype, "Properties": props}}}
    return Side(template(old_props), old_params or {}), Side(template(new_props), new_params or {})


def test_noecho_parameters_and_secret_properties_are_masked_but_dynamic_references_shown():
    from perfdeploy.deploy.diff import parameter_changes, resource_diff

    old, new = sides({"AuthToken": "old-token-value", "Description": {"Ref": "Password"}},
                     {"AuthToken": "{{resolve:secretsmanager:redis-auth}}", "Description": {"Ref": "Password"}},
                     old_params={"Password": "hunter2"}, new_params={"Password": "hunter3"},
                     parameters={"Password": {"Type": "String", "NoEcho": True}})
    diff = {e["path"]: (e["old"], e["new"]) for e in resource_diff("R", old, new, [])}
    assert diff == {"AuthToken": ("****", "{{resolve:secretsmanager:redis-auth}}")}  # ****: unchanged to the eye
    assert parameter_changes(old, new) == [{"name": "Password", "old": "****", "new": "****"}]


def test_a_secrets_string_is_masked():
    from perfdeploy.deploy.diff import resource_diff

    old, new = sides({"SecretString": "a"}, {"SecretString": "b"}, rtype="AWS::SecretsManager::Secret")
    assert [(e["old"], e["new"]) for e in resource_diff("R", old, new, [])] == [("****", "****")]


def test_resource_tags_are_compared_by_key_and_lists_item_by_item():
    from perfdeploy.deploy.diff import resource_diff

    old, new = sides({"Tags": [{"Key": "Team", "Value": "a"}, {"Key": "Old", "Value": "x"}], "Ports": [1, 2]},
                     {"Tags": [{"Key": "Team", "Value": "b"}], "Ports": [1, 3]}, rtype="AWS::SNS::Topic")
    diff = {e["path"]: (e["old"], e["new"]) for e in resource_diff("R", old, new, [])}
    assert diff == {"Tags.Team": ("a", "b"), "Tags.Old": ("x", None), "Ports[1]": (2, 3)}


def test_a_json_document_in_a_string_is_compared_as_data():
    from perfdeploy.deploy.diff import resource_diff

    old, new = sides({"DashboardBody": '{"widgets": [{"title": "Latency", "period": 60}]}'},
                     {"DashboardBody": {"Fn::Sub": '{"widgets": [{"title": "Latency", "period": 300}]}'}},
                     rtype="AWS::CloudWatch::Dashboard")
    assert [(e["path"], e["old"], e["new"]) for e in resource_diff("R", old, new, [])] == [
        ("DashboardBody.widgets[0].period", 60, 300)]


def test_a_change_of_tags_alone_leaves_the_outputs_that_getatt_the_resource_known():
    from perfdeploy.deploy.diff import changing_outputs

    old, new = sides({"Tags": [{"Key": "CostCenter", "Value": "a"}]}, {"Tags": [{"Key": "CostCenter", "Value": "b"}]},
                     rtype="AWS::KMS::Key")
    for side in (old, new):
        side.template["Outputs"] = {"KeyArn": {"Value": {"Fn::GetAtt": ["R", "Arn"]}}}
    tags = {"Action": "Modify", "LogicalResourceId": "R", "Replacement": "False", "Scope": ["Tags"]}
    assert changing_outputs(old, new, [tags]) == set()
    in_template = {**tags, "Scope": ["Properties"]}   # how the local emulator reports a Tags property change
    assert changing_outputs(old, new, [in_template]) == set()
    properties = {**tags, "Scope": ["Properties"], "Details": [{"Target": {"Attribute": "Properties",
                                                                           "Name": "Description"}}]}
    assert changing_outputs(old, new, [properties]) == {"KeyArn"}
