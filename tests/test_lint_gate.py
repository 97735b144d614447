"""The lint gate: cfn-lint plus the house rules, one output format, errors fail and notices do not."""

from __future__ import annotations

import json

import pytest

from perfdeploy.errors import LintError
from perfdeploy.lint import gate, lint_templates


def template(resources: dict, stateful: bool = True) -> str:
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Metadata": {"perfdeploy": {"env": "prod" if stateful else "dev", "stateful": stateful}},
        "Resources": resources,
    }
    if "Ref" in json.dumps(resources):
        body["Parameters"] = {"Key": {"Type": "String"}}
    return json.dumps(body, indent=1)


def rules(body: str) -> list[str]:
    return [f.rule for f in lint_templates({"t.json": body}, "us-east-1", use_cache=False)]


TABLE = {"Type": "AWS::DynamoDB::Table", "Properties": {
    "BillingMode": "PAY_PER_REQUEST",
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "Key"}},
    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}}


def test_a_prod_table_without_retention_policies_fails_the_stateful_rule():
    assert "E9101" in rules(template({"Table": TABLE}))


def test_the_same_table_retained_passes():
    retained = dict(TABLE, DeletionPolicy="RetainExceptOnCreate", UpdateReplacePolicy="Retain")
    assert "E9101" not in rules(template({"Table": retained}))


def test_dev_data_may_be_deleted():
    assert "E9101" not in rules(template({"Table": TABLE}, stateful=False))


def test_a_table_without_our_kms_key_fails_the_encryption_rule():
    plain = {"Type": "AWS::DynamoDB::Table", "Properties": {k: v for k, v in TABLE["Properties"].items()
                                                            if k != "SSESpecification"}}
    assert "E9102" in rules(template({"Table": plain}, stateful=False))


def test_a_log_group_needs_retention_and_our_key():
    found = rules(template({"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}, stateful=False))
    assert {"E9102", "E9103"} <= set(found)


def test_a_bucket_with_sse_s3_fails_unless_it_receives_alb_access_logs():
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"BucketEncryption": {"ServerSideEncryptionConfiguration": [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}}}
    assert "E9102" in rules(template({"Bucket": bucket}, stateful=False))
    alb = {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {
        "Subnets": ["subnet-1", "subnet-2"],
        "LoadBalancerAttributes": [{"Key": "access_logs.s3.bucket", "Value": {"Ref": "Bucket"}}]}}
    assert "E9102" not in rules(template({"Bucket": bucket, "Alb": alb}, stateful=False))


def role(statement: dict) -> dict:
    return {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}}]}}


@pytest.mark.parametrize("statement, fails", [
    ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}, True),
    ({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t"}, True),
    ({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}, True),
    ({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}, False),
    ({"Effect": "Allow", "Action": "dynamodb:GetItem",
      "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t"}, False),
])
def test_iam_wildcards_are_refused_outside_the_allow_list(statement, fails):
    assert ("E9104" in rules(template({"Role": role(statement)}, stateful=False))) is fails


def test_plain_http_forwarding_is_a_notice_that_does_not_fail_the_gate():
    listener = {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
        "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/a/1",
        "Port": 80, "Protocol": "HTTP",
        "DefaultActions": [{"Type": "forward",
                            "TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1"}]}}
    notices = gate({"t.json": template({"Listener": listener}, stateful=False)}, "us-east-1", use_cache=False)
    assert [n.rule for n in notices] == ["I9105"]
    assert str(notices[0]).startswith("t.json:")


def test_errors_fail_the_gate_with_file_line_rule_and_message():
    with pytest.raises(LintError, match=r"t\.json:\d+ E9103 Logs: log group has no RetentionInDays"):
        gate({"t.json": template({"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}}})}, "us-east-1",
             use_cache=False)


def test_a_clean_template_is_remembered_and_a_changed_one_linted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(tmp_path))
    retained = dict(TABLE, DeletionPolicy="RetainExceptOnCreate", UpdateReplacePolicy="Retain")
    body = template({"Table": retained})
    assert lint_templates({"t.json": body}, "us-east-1") == []
    assert (tmp_path / "lint-clean.json").exists()
    broken = template({"Table": TABLE})
    assert "E9101" in [f.rule for f in lint_templates({"t.json": broken}, "us-east-1")]
