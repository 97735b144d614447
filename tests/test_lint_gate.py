"""The lint gate: cfn-lint plus the house rules, one output format, errors fail and notices do not."""

from __future__ import annotations

import json
from pathlib import Path

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


PLAIN_HTTP_LISTENER = {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
    "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/a/1",
    "Port": 80, "Protocol": "HTTP",
    "DefaultActions": [{"Type": "forward",
                        "TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1"}]}}


def test_plain_http_forwarding_is_a_notice_that_does_not_fail_the_gate():
    notices = gate({"t.json": template({"Listener": PLAIN_HTTP_LISTENER}, stateful=False)}, "us-east-1",
                   use_cache=False)
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


def test_a_template_that_passed_with_a_notice_is_remembered_with_its_notice(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(tmp_path))
    body = template({"Listener": PLAIN_HTTP_LISTENER}, stateful=False)
    first = lint_templates({"dev/alb.yaml": body}, "us-east-1")
    monkeypatch.setattr("perfdeploy.lint._lint_one", lambda *args: pytest.fail("linted again"))
    again = lint_templates({"staging/alb.yaml": body}, "us-east-1")
    assert [(f.rule, f.line) for f in again] == [(f.rule, f.line) for f in first] == [("I9105", first[0].line)]
    assert again[0].file == "staging/alb.yaml"


def test_a_failing_template_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(tmp_path))
    broken = template({"Table": TABLE})
    lint_templates({"t.json": broken}, "us-east-1")
    assert "E9101" in [f.rule for f in lint_templates({"t.json": broken}, "us-east-1")]


def test_cfn_lint_is_imported_only_when_a_template_must_be_linted(tmp_path):
    script = f"""
import os, sys
os.environ["PERFDEPLOY_CACHE_DIR"] = {str(tmp_path)!r}
from perfdeploy.lint import lint_templates
body = {template({"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, stateful=False)!r}
lint_templates({{"t.json": body}}, "us-east-1")
print("after a lint:", "cfnlint" in sys.modules)
"""
    import subprocess
    import sys

    def run():
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert run().strip() == "after a lint: True"
    assert run().strip() == "after a lint: False"  # the same template, cached: nothing of cfn-lint imported


def test_templates_linted_across_cores_keep_their_own_findings(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    named = {"a/ok.json": template({"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, stateful=False),
             "b/broken.json": template({"Table": TABLE}),
             "c/http.json": template({"Listener": PLAIN_HTTP_LISTENER}, stateful=False)}
    findings = lint_templates(named, "us-east-1", use_cache=False)
    assert {f.file for f in findings} == {"b/broken.json", "c/http.json"}
    assert "E9101" in [f.rule for f in findings if f.file == "b/broken.json"]
    assert [f.rule for f in findings if f.file == "c/http.json"] == ["I9105"]


# Issue 13: the house rules that keep templates real AWS accepts --------------------------------------------

BEFORE = Path(__file__).parent / "fixtures" / "before_issue13"

# rule -> a template of the pre-issue-13 render it fails on (each mistake the issue names).
RULE_FAILS_ON_THE_OLD_TEMPLATE = {
    "E9106": "dev/msk.yaml",             # Kafka 3.5.1, past MSK's end of support (2025-10-23)
    "E9108": "dev/ecs.yaml",             # a user-1000 app writing a root-owned /tmp bind mount
    "E9109": "dev/ecs.yaml",             # the X-Ray daemon as root
    "E9110": "dev/network.yaml",         # subnets by zone name (Fn::GetAZs)
    "E9111": "dev/ecs.yaml",             # DesiredCount beside auto scaling
    "E9112": "dev/registry.yaml",        # a count-based lifecycle rule on tagged images
    "E9113": "dev/iam.yaml",             # one StringLike subject for every environment
    "E9114": "staging/dynamodb.yaml",    # the vault on the tables' key; a policy that can be deleted
    "E9115": "dev/iam.yaml",             # CI allowed ecs:UpdateService
    "E9116": "dev/monitoring.yaml",      # composite children paging too; OK to every topic
    "E9117": "dev/security.yaml",        # logs.${AWS::Region}.amazonaws.com
    "E9118": "prod/alb.yaml",            # a web ACL without logging
    "E9119": "dev/network.yaml",         # the ALB's egress to the whole VPC
    "E9120": "dev/security.yaml",        # the logs key for log-group:*
    "E9121": "prod/alb.yaml",            # the access-log bucket unversioned
    "E9122": "prod/tracing.yaml",        # prod application logs kept 30 days
    "E9123": "dev/elasticache.yaml",     # a static Redis AUTH token
}


@pytest.mark.parametrize("rule, file", RULE_FAILS_ON_THE_OLD_TEMPLATE.items(), ids=list(RULE_FAILS_ON_THE_OLD_TEMPLATE))
def test_each_issue_13_rule_fails_the_template_it_was_written_against(rule, file):
    assert rule in rules((BEFORE / file).read_text())


@pytest.fixture(scope="module")
def rendered_now():
    from perfdeploy.config import load_config
    from perfdeploy.render import render_env

    bodies = {}
    for env in ("dev", "staging", "prod"):
        bodies.update(render_env(load_config(env)).templates())
    return bodies


def test_the_rendered_templates_of_every_environment_pass_every_house_rule(rendered_now):
    failing = [str(f) for f in lint_templates(rendered_now, "us-east-1", use_cache=False) if f.fails]
    assert not failing, "\n".join(failing)


def msk_cluster(version: str) -> str:
    return template({"Kafka": {"Type": "AWS::MSK::Cluster", "Properties": {
        "ClusterName": "c", "KafkaVersion": version, "NumberOfBrokerNodes": 3,
        "BrokerNodeGroupInfo": {"InstanceType": "kafka.m5.large",
                                "ClientSubnets": ["subnet-1", "subnet-2", "subnet-3"]},
        "EncryptionInfo": {"EncryptionAtRest": {"DataVolumeKMSKeyId": {"Ref": "Key"}}}}}}, stateful=False)


@pytest.mark.parametrize("today, version, expected", [
    ("2026-12-02", "3.8.x", set()),                # supported, no end date
    ("2026-04-01", "3.6.0", {"I9107"}),            # ends 2026-06-01: 61 days left, a notice
    ("2026-03-01", "3.6.0", set()),                # 92 days left: quiet
    ("2026-06-02", "3.6.0", {"E9106"}),            # the day after: the gate fails
    ("2026-12-02", "3.5.1", {"E9106"}),
    ("2026-12-02", "9.9.9", {"E9106"}),            # not in the table at all
])
def test_kafka_versions_are_judged_against_the_dated_table_on_the_given_day(monkeypatch, today, version, expected):
    monkeypatch.setenv("PERFDEPLOY_TODAY", today)
    assert set(rules(msk_cluster(version))) & {"E9106", "I9107"} == expected


@pytest.mark.parametrize("today, engine, version, expected", [
    ("2026-12-02", "redis", "6.2", {"I9107"}),     # standard support ends 2027-01-31
    ("2027-02-01", "redis", "6.2", {"E9106"}),
    ("2026-12-02", "redis", "5.0.6", {"E9106"}),   # ended 2026-01-31 (Extended Support, billed)
    ("2026-12-02", "valkey", "8.1", set()),
])
def test_cache_engine_versions_are_judged_against_the_dated_table(monkeypatch, today, engine, version, expected):
    monkeypatch.setenv("PERFDEPLOY_TODAY", today)
    group = template({"Cache": {"Type": "AWS::ElastiCache::ReplicationGroup", "Properties": {
        "ReplicationGroupDescription": "r", "Engine": engine, "EngineVersion": version,
        "CacheNodeType": "cache.t3.small", "NumCacheClusters": 1}}}, stateful=False)
    assert set(rules(group)) & {"E9106", "I9107"} == expected


def test_a_version_ending_soon_is_a_notice_that_does_not_fail_the_gate(monkeypatch):
    monkeypatch.setenv("PERFDEPLOY_TODAY", "2026-04-01")
    notices = gate({"t.json": msk_cluster("3.6.0")}, "us-east-1", use_cache=False)
    assert [n.rule for n in notices] == ["I9107"]
    assert "2026-06-01, in 61 days" in notices[0].message


def test_a_template_cached_clean_fails_once_its_version_is_past_support(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PERFDEPLOY_TODAY", "2026-03-01")
    assert lint_templates({"t.json": msk_cluster("3.6.0")}, "us-east-1") == []
    monkeypatch.setenv("PERFDEPLOY_TODAY", "2026-06-02")
    assert "E9106" in [f.rule for f in lint_templates({"t.json": msk_cluster("3.6.0")}, "us-east-1")]


def test_a_bad_today_override_names_the_variable(monkeypatch):
    from perfdeploy.errors import ConfigError

    monkeypatch.setenv("PERFDEPLOY_TODAY", "tomorrow")
    with pytest.raises(ConfigError, match="PERFDEPLOY_TODAY: 'tomorrow' is not an ISO date"):
        lint_templates({"t.json": msk_cluster("3.8.x")}, "us-east-1", use_cache=False)
