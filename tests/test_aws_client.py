"""The AWS client as the real services answer it: which errors are worth waiting out, how long a dead
endpoint takes to say so, partitions, and retries that CloudFormation recognises as retries."""

from __future__ import annotations

import socket

import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    UnauthorizedSSOTokenError,
)
from fakes import FakeAws, FakeS3, client_error, lose_first_answer

from perfdeploy.aws import TRANSPORT_ATTEMPTS, Aws, is_transient
from perfdeploy.deploy import changeset, operations
from perfdeploy.deploy.artifacts import Artifacts
from perfdeploy.errors import ConfigError


@pytest.mark.parametrize(("error", "transient"), [
    (client_error("Throttling", "Rate exceeded"), True),
    (client_error("ThrottlingException", "Rate exceeded"), True),
    (client_error("InternalFailure", "We encountered an internal error", status=500), True),
    (client_error("ServiceUnavailable", "Service is unavailable", status=503), True),
    (EndpointConnectionError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/"), True),
    (ConnectTimeoutError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/"), True),
    (ReadTimeoutError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/"), True),
    (UnauthorizedSSOTokenError(), False),
    (NoCredentialsError(), False),
    (CredentialRetrievalError(provider="sso", error_msg="the SSO session has expired"), False),
    (client_error("ExpiredToken", "The security token included in the request is expired"), False),
    (client_error("AccessDenied", "User is not authorized to perform: cloudformation:DescribeStacks", status=403),
     False),
    (client_error("ValidationError", "Stack with id x does not exist"), False),
])
def test_only_throttling_5xx_and_connection_errors_are_transient(error, transient):
    assert is_transient(error) is transient


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_tried_a_few_times_only_and_names_the_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    aws = Aws("us-east-1", endpoint_url=endpoint)
    attempts = []
    aws.client("sts").meta.events.register("before-send.sts.GetCallerIdentity", lambda **kw: attempts.append(1))
    with pytest.raises(ConfigError, match=f"--endpoint-url: cannot connect to {endpoint}: is the local emulator "
                                          r"running \('perfdeploy local'\)\?"):
        _ = aws.account_id
    assert len(attempts) == TRANSPORT_ATTEMPTS


@pytest.mark.parametrize(("region", "partition", "url"), [
    ("us-east-1", "aws", "https://perfdeploy-123456789012-us-east-1.s3.us-east-1.amazonaws.com/k.yaml"),
    ("cn-north-1", "aws-cn", "https://perfdeploy-123456789012-cn-north-1.s3.cn-north-1.amazonaws.com.cn/k.yaml"),
    ("us-gov-west-1", "aws-us-gov",
     "https://perfdeploy-123456789012-us-gov-west-1.s3.us-gov-west-1.amazonaws.com/k.yaml"),
])
def test_template_urls_and_bucket_arns_are_built_from_the_regions_partition(region, partition, url):
    policies = []

    class PolicyS3(FakeS3):
        def put_bucket_policy(self, Bucket, Policy):
            policies.append(Policy)

    artifacts = Artifacts(FakeAws(region=region, s3=PolicyS3()))
    assert artifacts.url("k.yaml") == url
    artifacts.ensure()
    assert f'"arn:{partition}:s3:::perfdeploy-123456789012-{region}/*"' in policies[0]


def test_the_partition_of_a_real_client_comes_from_botocore():
    assert (Aws("cn-northwest-1").partition, Aws("cn-northwest-1").dns_suffix) == ("aws-cn", "amazonaws.com.cn")
    assert Aws("eu-central-1").partition == "aws"


# Idempotent retries: a lost answer is retried by botocore; CloudFormation recognises it by its token ---------

def cloudformation():
    return Aws("us-east-1", endpoint_url="https://cloudformation.invalid").client("cloudformation")


STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/dev-performance-mgmt-ecs/1"
CHANGE_SET = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/perfdeploy-1/2"


def test_a_retried_execute_change_set_is_the_same_request_not_a_second_one():
    cfn = cloudformation()
    tokens = lose_first_answer(cfn, "ExecuteChangeSet", ("ChangeSetNotFound",
                                                         f"ChangeSet [{CHANGE_SET}] does not exist"))
    changeset.execute(cfn, changeset.ChangeSet(CHANGE_SET, STACK, "UPDATE"))
    assert len(tokens) == 2 and tokens[0] is not None and tokens[0] == tokens[1]


@pytest.mark.parametrize(("operation", "call"), [
    ("CancelUpdateStack", lambda cfn: operations.cancel_update(cfn, STACK)),
    ("ContinueUpdateRollback", lambda cfn: operations.continue_update_rollback(cfn, STACK, ["Service"])),
    ("RollbackStack", lambda cfn: operations.rollback_stack(cfn, STACK)),
    ("DeleteStack", lambda cfn: operations.delete_stack(cfn, STACK)),
])
def test_every_stack_operation_survives_a_lost_answer(operation, call):
    cfn = cloudformation()
    tokens = lose_first_answer(cfn, operation, ("ValidationError",
                                                f"{operation} cannot be called from current stack status"))
    call(cfn)
    assert len(tokens) == 2 and tokens[0] == tokens[1] is not None


def test_a_call_botocore_keeps_retrying_says_so_once(monkeypatch):
    from fakes import cfn_answer

    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)   # botocore's backoff
    aws = Aws("us-east-1", endpoint_url="https://cloudformation.invalid")
    said: list[str] = []
    aws.on_retry = said.append
    cfn = aws.client("cloudformation")
    attempts = []

    def throttled_six_times(request, **kwargs):
        attempts.append(1)
        if len(attempts) <= 6:
            return cfn_answer(request, "CancelUpdateStack", 400, "Throttling", "Rate exceeded")
        return cfn_answer(request, "CancelUpdateStack")

    cfn.meta.events.register("before-send.cloudformation.CancelUpdateStack", throttled_six_times)
    operations.cancel_update(cfn, STACK)
    assert len(attempts) == 7
    assert said == ["CancelUpdateStack: retrying (Throttling: Rate exceeded), at most 12 attempts"]


def test_the_lock_is_one_put_when_the_bucket_exists_and_makes_a_hardened_bucket_when_it_does_not():
    from perfdeploy.deploy.releases import ReleaseStore

    calls = []

    class CountingS3(FakeS3):
        def head_bucket(self, Bucket):
            calls.append("HeadBucket")
            return super().head_bucket(Bucket)

        def put_bucket_policy(self, Bucket, Policy):
            calls.append("PutBucketPolicy")

    s3 = CountingS3()
    with ReleaseStore(Artifacts(FakeAws(s3=s3))).lock("dev", "deploy"):  # a new account: no bucket yet
        assert "locks/dev.json" in s3.buckets["perfdeploy-123456789012-us-east-1"]
    assert "PutBucketPolicy" in calls  # created through ensure(): encrypted, versioned, TLS only
    calls.clear()
    with ReleaseStore(Artifacts(FakeAws(s3=s3))).lock("dev", "deploy"):
        pass
    assert calls == []  # the put alone: no HeadBucket, nothing hardened again
    assert "locks/dev.json" not in s3.buckets["perfdeploy-123456789012-us-east-1"]
