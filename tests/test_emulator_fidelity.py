"""Issue 15: the emulator does what its change sets say, as AWS does: replacements, ids, deletes, drift,
"no changes". Each test fails on plain moto 5.2.5 and on the emulator before issue 15."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from perfdeploy.cli import cli
from perfdeploy.local import Emulator

ROOT = Path(__file__).parent.parent
REGION = "us-east-1"


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as url:  # dummy credentials and the region: conftest's, for every test
        yield url


@pytest.fixture(scope="module")
def client(emulator):
    return lambda service: boto3.client(service, endpoint_url=emulator, region_name=REGION)


@pytest.fixture(scope="module")
def cf(client):
    return client("cloudformation")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def change_set(cf, stack: str, body: str, parameters: dict[str, str] | None = None) -> dict:
    kind = "CREATE"
    try:
        kind = "UPDATE" if cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] != "REVIEW_IN_PROGRESS" \
            else "CREATE"
    except ClientError:
        pass
    made = cf.create_change_set(StackName=stack, ChangeSetName=unique("cs"), TemplateBody=body, ChangeSetType=kind,
                                Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                            for k, v in (parameters or {}).items()])
    return cf.describe_change_set(ChangeSetName=made["Id"])


def deploy(cf, stack: str, body: str, parameters: dict[str, str] | None = None) -> dict:
    described = change_set(cf, stack, body, parameters)
    assert described["Status"] == "CREATE_COMPLETE", described.get("StatusReason")
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    return cf.describe_stacks(StackName=stack)["Stacks"][0]


def physical_ids(cf, stack: str) -> dict[str, str]:
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cf.describe_stack_resources(StackName=stack)["StackResources"]}


def modifies(described: dict) -> dict[str, str]:
    return {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"].get("Replacement")
            for c in described["Changes"] if c["ResourceChange"]["Action"] == "Modify"}


NETWORK = """
Parameters:
  Cidr: {Type: String, Default: 10.0.0.0/16}
  SubnetCidr: {Type: String, Default: 10.0.0.0/24}
  Team: {Type: String, Default: one}
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: !Ref Cidr, Tags: [{Key: team, Value: !Ref Team}]}}
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: app, VpcId: !Ref Vpc, Tags: [{Key: team, Value: !Ref Team}]}
  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: !Ref SubnetCidr}}
Outputs:
  VpcId: {Value: !Ref Vpc}
  SgId: {Value: !GetAtt Sg.GroupId}
"""


def test_a_tag_only_change_keeps_every_physical_id_and_output(cf, client):
    stack = unique("tags")
    before = deploy(cf, stack, NETWORK)
    ids = physical_ids(cf, stack)
    described = change_set(cf, stack, NETWORK, {"Team": "two"})
    assert modifies(described) == {"Vpc": "False", "Sg": "False"}
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    after = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert after["StackStatus"] == "UPDATE_COMPLETE", after.get("StackStatusReason")
    assert physical_ids(cf, stack) == ids
    assert after["Outputs"] == before["Outputs"]
    groups = client("ec2").describe_security_groups(GroupIds=[ids["Sg"]])["SecurityGroups"]
    assert {"Key": "team", "Value": "two"} in groups[0]["Tags"]


def test_a_cidr_change_is_planned_and_executed_as_a_replacement(cf, client):
    stack = unique("cidr")
    deploy(cf, stack, NETWORK)
    ids = physical_ids(cf, stack)
    described = change_set(cf, stack, NETWORK, {"Cidr": "10.9.0.0/16", "SubnetCidr": "10.9.0.0/24"})
    # the CidrBlocks are create-only (Static: True); the group takes the VPC's id in its create-only VpcId, a
    # value known only once the VPC is replaced (Dynamic: Conditional)
    assert modifies(described) == {"Vpc": "True", "Sg": "Conditional", "Subnet": "True"}
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    after = physical_ids(cf, stack)
    assert after["Vpc"] != ids["Vpc"] and after["Sg"] != ids["Sg"] and after["Subnet"] != ids["Subnet"]
    vpcs = client("ec2").describe_vpcs(VpcIds=[after["Vpc"]])["Vpcs"]
    assert vpcs[0]["CidrBlock"] == "10.9.0.0/16"
    with pytest.raises(ClientError):  # the old VPC went in the cleanup, as on AWS
        client("ec2").describe_vpcs(VpcIds=[ids["Vpc"]])


TABLE = """
Parameters:
  Key: {Type: String, Default: pk}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: !Ref Key, AttributeType: S}]
      KeySchema: [{AttributeName: !Ref Key, KeyType: HASH}]
Outputs:
  TableName: {Value: !Ref Table}
"""


def test_a_key_schema_change_replaces_the_table_and_its_data_is_gone(cf, client):
    stack = unique("table")
    old = deploy(cf, stack, TABLE)["Outputs"][0]["OutputValue"]
    dynamodb = client("dynamodb")
    dynamodb.put_item(TableName=old, Item={"pk": {"S": "kept?"}})
    described = change_set(cf, stack, TABLE, {"Key": "id"})
    assert modifies(described) == {"Table": "Conditional"}  # KeySchema: conditionalCreateOnlyProperties
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    new = cf.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert new != old
    assert dynamodb.describe_table(TableName=new)["Table"]["KeySchema"] == [{"AttributeName": "id",
                                                                             "KeyType": "HASH"}]
    assert dynamodb.scan(TableName=new)["Items"] == []
    assert old not in dynamodb.list_tables()["TableNames"]


def test_a_custom_named_resource_that_must_be_replaced_fails_as_on_aws(cf):
    stack = unique("named")
    body = TABLE.replace("BillingMode: PAY_PER_REQUEST", f"TableName: {stack}\n      BillingMode: PAY_PER_REQUEST")
    deploy(cf, stack, body)
    cf.execute_change_set(ChangeSetName=change_set(cf, stack, body, {"Key": "id"})["ChangeSetId"])
    after = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert after["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert (f"CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename "
            f"{stack} and update the stack again.") in after["StackStatusReason"]


def test_a_change_the_emulator_cannot_apply_fails_naming_the_resource_and_property(cf):
    stack = unique("cannot")
    body = TABLE
    deploy(cf, stack, body)
    changed = body.replace("BillingMode: PAY_PER_REQUEST", "BillingMode: PAY_PER_REQUEST\n      TableClass: "
                           "STANDARD_INFREQUENT_ACCESS")
    cf.execute_change_set(ChangeSetName=change_set(cf, stack, changed)["ChangeSetId"])
    after = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert after["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert "Table (AWS::DynamoDB::Table)" in after["StackStatusReason"] or "[Table]" in after["StackStatusReason"]
    assert "cannot update TableClass in place" in after["StackStatusReason"]


def test_a_failed_update_is_undone_the_replaced_resource_comes_back(cf):
    stack = unique("undo")
    deploy(cf, stack, NETWORK)
    ids = physical_ids(cf, stack)
    broken = NETWORK.replace("Outputs:", "  Broken: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, "
                                         "CidrBlock: not-a-cidr}}\nOutputs:")
    described = change_set(cf, stack, broken, {"Cidr": "10.8.0.0/16", "SubnetCidr": "10.8.0.0/24"})
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert physical_ids(cf, stack) == ids


def test_update_stack_with_nothing_changed_answers_no_updates_like_aws(cf):
    # what sceptre and the AWS CLI send: the same body, every parameter again (a list one too), or none
    with_lists = ("Parameters:\n  Zones: {Type: CommaDelimitedList, Default: 'a,b'}\n  Name: {Type: String}\n"
                  "Resources:\n  Topic: {Type: AWS::SNS::Topic, Properties: {TopicName: !Ref Name}}\n")
    bare = "Resources:\n  Topic: {Type: AWS::SNS::Topic}\n"
    cases = [(bare, []), (with_lists, [{"ParameterKey": "Name", "ParameterValue": unique("t")},
                                       {"ParameterKey": "Zones", "ParameterValue": "x,y"}])]
    for body, parameters in cases:
        stack = unique("noop")
        cf.create_stack(StackName=stack, TemplateBody=body, Parameters=parameters)
        with pytest.raises(ClientError) as caught:
            cf.update_stack(StackName=stack, TemplateBody=body, Parameters=parameters)
        assert caught.value.response["Error"]["Message"] == "No updates are to be performed."
        cf.update_stack(StackName=stack, TemplateBody=body + "Outputs:\n  Arn: {Value: !Ref Topic}\n",
                        Parameters=parameters)  # a change is an update


def test_a_resource_changed_behind_the_stacks_back_is_found_drifted(cf, client):
    stack = unique("drift")
    deploy(cf, stack, "Resources:\n  Logs: {Type: AWS::Logs::LogGroup, Properties: {RetentionInDays: 30}}\n"
                      "  Secret: {Type: AWS::SecretsManager::Secret}\n")
    ids = physical_ids(cf, stack)
    detection = cf.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    assert cf.describe_stack_drift_detection_status(StackDriftDetectionId=detection)["StackDriftStatus"] == "IN_SYNC"
    client("logs").put_retention_policy(logGroupName=ids["Logs"], retentionInDays=7)
    detection = cf.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    status = cf.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    assert (status["DetectionStatus"], status["StackDriftStatus"]) == ("DETECTION_COMPLETE", "DRIFTED")
    drifts = {d["LogicalResourceId"]: d for d in cf.describe_stack_resource_drifts(StackName=stack)
              ["StackResourceDrifts"]}
    assert drifts["Logs"]["StackResourceDriftStatus"] == "MODIFIED"
    assert drifts["Logs"]["PropertyDifferences"] == [{"PropertyPath": "/RetentionInDays", "ExpectedValue": "30",
                                                      "ActualValue": "7", "DifferenceType": "NOT_EQUAL"}]
    assert drifts["Secret"]["StackResourceDriftStatus"] == "NOT_CHECKED"  # a placeholder: nothing to read


def test_a_route_no_moto_service_has_is_an_aws_shaped_error_not_a_web_page(client):
    with pytest.raises(ClientError) as caught:
        client("backup").list_recovery_points_by_resource(ResourceArn="arn:aws:dynamodb:us-east-1:123456789012:"
                                                                      "table/t")
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "local emulator" in caught.value.response["Error"]["Message"]


# Through the CLI: dev's life on the emulator ------------------------------------------------------------

@pytest.fixture(scope="module")
def run(emulator, tmp_path_factory):
    config = tmp_path_factory.mktemp("fidelity") / "config"
    shutil.copytree(ROOT / "config", config)

    def invoke(*args: str):
        result = CliRunner().invoke(cli, [*args, "--config-dir", str(config), "--endpoint-url", emulator],
                                    catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    invoke.config = config
    return invoke


def every_physical_id(cf) -> dict[tuple[str, str], str]:
    return {(s["StackName"], r["LogicalResourceId"]): r.get("PhysicalResourceId")
            for s in cf.describe_stacks()["Stacks"] if s["StackName"].startswith("dev-")
            for r in cf.describe_stack_resources(StackName=s["StackName"])["StackResources"]}


def chained_outputs(cf) -> dict[str, list]:
    return {s["StackName"]: s.get("Outputs") for s in cf.describe_stacks()["Stacks"]
            if s["StackName"].startswith("dev-")}


def test_dev_first_deploy_names_push_image_and_push_image_registers_the_image(run):
    code, _, err = run("deploy", "dev", "--yes")
    assert code == 1 and "perfdeploy local push-image dev <tag>" in err
    code, out, err = run("local", "push-image", "dev", "v1")
    assert code == 0, err
    assert out.strip().endswith("dev-performance-mgmt-app:v1")
    code, _, err = run("deploy", "dev", "--yes", "--image-tag", "v1")
    assert code == 0, err


def test_dev_cost_center_change_keeps_every_id_and_chained_output(run, cf):
    ids, outputs = every_physical_id(cf), chained_outputs(cf)
    defaults = run.config / "defaults.yaml"
    defaults.write_text(defaults.read_text().replace("cost_center: performance-platform", "cost_center: other"))
    code, _, err = run("deploy", "dev", "--yes")
    assert code == 0, err
    assert every_physical_id(cf) == ids
    assert chained_outputs(cf) == outputs


def test_dev_drift_is_found_with_its_property(run, cf, client):
    assert run("drift", "dev")[0] == 0
    topic = physical_ids(cf, "dev-performance-mgmt-monitoring")["CriticalTopic"]
    client("sns").set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="changed")
    code, _, err = run("drift", "dev")
    assert code == 4, err
    assert "monitoring/CriticalTopic (AWS::SNS::Topic)" in err and "/DisplayName" in err
    assert "Traceback" not in err


def test_dev_destroy_after_a_pushed_image_succeeds(run, cf):
    code, _, err = run("destroy", "dev", "--yes")
    assert code == 0, err
    assert "<!doctype" not in err.lower()
    assert not [s for s in cf.describe_stacks()["Stacks"] if s["StackName"].startswith("dev-")]


def test_push_image_refuses_an_endpoint_that_is_not_the_emulator(tmp_path):
    result = CliRunner().invoke(cli, ["local", "push-image", "dev", "v1", "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "only against the local emulator" in result.stderr
