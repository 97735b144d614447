"""`perfdeploy destroy` and `perfdeploy drift` against fakes (the emulator has no drift detection, and cannot
make a delete fail or take time)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from click.testing import CliRunner
from fakes import FakeAws, tiny_environment
from fakes_ops import FakeBackup, FakeElastiCache, OpsCloudFormation, VersionedS3, resource_drift

from perfdeploy.cli import cli
from perfdeploy.config import load_config
from perfdeploy.deploy import destroy as destroy_module
from perfdeploy.deploy import drift as drift_module
from perfdeploy.deploy.destroy import DestroyOptions, destroy
from perfdeploy.deploy.drift import detect_drift
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action
from perfdeploy.deploy.waiter import Backoff
from perfdeploy.errors import DeployError, SafetyRefusal

FAST = Backoff(initial=0.001, factor=1.5, maximum=0.01)
DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
TOPIC = {"Type": "AWS::SNS::Topic", "Properties": {}}
ROOT_CACHE = Path(__file__).parent.parent / ".perfdeploy" / "cache"  # the lint cache the other CLI tests share


def name(key: str, env: str = "dev") -> str:
    return f"{env}-performance-mgmt-{key}"


@pytest.fixture
def cfn():
    return OpsCloudFormation()


def deploy_all(cfn: OpsCloudFormation, edges: dict, env: str = "dev", resources: dict | None = None, **kwargs):
    for key in edges:
        cfn.deployed(name(key, env), (resources or {}).get(key) or {"Thing": TOPIC}, **kwargs)


def run_destroy(cfn, edges, env="dev", aws=None, **options):
    options.setdefault("yes", True)
    run = destroy(load_config(env), aws or FakeAws(cfn), DestroyOptions(**options), Reporter(quiet=True),
                  rendered=tiny_environment(edges, env=env), backoff=FAST)
    return {s.key: s for s in run.stacks}, run


# destroy -----------------------------------------------------------------------------------------------------

def test_consumers_are_deleted_before_their_producers_and_siblings_at_once(cfn):
    deploy_all(cfn, DIAMOND)
    # b's delete completes only once c's has: b and c must be deleting at the same time.
    cfn.delete_gates[name("b")] = gate_b = threading.Event()
    threading.Thread(target=lambda: _when(lambda: ("done", name("c")) in cfn.timeline, gate_b.set),
                     daemon=True).start()
    results, run = run_destroy(cfn, DIAMOND)
    assert run.ok and {r.action for r in results.values()} == {Action.DELETED}
    order = cfn.timeline
    assert order.index(("done", name("d"))) < order.index(("start", name("b")))
    assert order.index(("done", name("d"))) < order.index(("start", name("c")))
    assert order.index(("start", name("b"))) < order.index(("done", name("c")))
    assert order.index(("done", name("b"))) < order.index(("start", name("a")))
    assert order.index(("done", name("c"))) < order.index(("start", name("a")))
    assert not any(n == name(k) for n in cfn.stacks for k in DIAMOND)


def test_the_stack_holding_the_execution_roles_is_deleted_after_every_stack_that_runs_as_one(cfn):
    # deploy --execution-roles: each stack keeps its role (RoleARN) and CloudFormation assumes it to delete
    edges = {"network": [], "iam": ["network"], "ecs": ["iam", "network"]}
    roles = {f"{key.capitalize()}ExecutionRole": {"Type": "AWS::IAM::Role",
                                                  "Properties": {"RoleName": f"{name(key)}-cfn"}} for key in edges}
    for key in edges:
        cfn.deployed(name(key), roles if key == "iam" else {"Thing": TOPIC},
                     role_arn=f"arn:aws:iam::123456789012:role/{name(key)}-cfn")
    results, run = run_destroy(cfn, edges)
    assert run.ok, {k: r.reason for k, r in results.items()}
    order = [n for event, n in cfn.timeline if event == "done"]
    assert order[-1] == name("iam") and set(order) == {name(k) for k in edges}  # network too, before iam


def test_without_execution_roles_producers_still_wait_for_their_consumers(cfn):
    edges = {"network": [], "iam": ["network"], "ecs": ["iam"]}
    deploy_all(cfn, edges)
    results, run = run_destroy(cfn, edges)
    assert run.ok
    assert [n for event, n in cfn.timeline if event == "done"] == [name("ecs"), name("iam"), name("network")]


def _when(condition, then, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    then()


def test_prod_is_refused_without_force_prod_and_nothing_is_deleted(cfn):
    deploy_all(cfn, {"a": []}, env="prod", termination_protection=True)
    with pytest.raises(SafetyRefusal, match="--force-prod"):
        run_destroy(cfn, {"a": []}, env="prod")
    assert cfn.count("delete_stack") == 0
    assert cfn.stacks[name("a", "prod")].status == "CREATE_COMPLETE"


def test_destroy_is_refused_while_a_deploy_holds_the_environments_lock(cfn):
    from perfdeploy.deploy.artifacts import Artifacts
    from perfdeploy.deploy.releases import ReleaseStore

    deploy_all(cfn, {"a": []})
    aws = FakeAws(cfn)
    with ReleaseStore(Artifacts(aws)).lock("dev", "deploy"), pytest.raises(SafetyRefusal, match="dev is locked"):
        run_destroy(cfn, {"a": []}, aws=aws)
    assert cfn.count("delete_stack") == 0
    assert run_destroy(cfn, {"a": []}, aws=aws)[1].ok  # and the lock it took is released again


def test_force_prod_lifts_termination_protection_and_deletes(cfn):
    deploy_all(cfn, {"a": [], "b": ["a"]}, env="prod", termination_protection=True)
    results, run = run_destroy(cfn, {"a": [], "b": ["a"]}, env="prod", force_prod=True)
    assert run.ok, [r.reason for r in results.values()]
    assert {r.action for r in results.values()} == {Action.DELETED}
    assert name("a", "prod") not in cfn.stacks and name("b", "prod") not in cfn.stacks


STAGING_DATA = {
    "Table": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "RetainExceptOnCreate",
              "Properties": {"DeletionProtectionEnabled": True}},
    "Redis": {"Type": "AWS::ElastiCache::ReplicationGroup", "DeletionPolicy": "Snapshot", "Properties": {}},
    "Logs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {}},
    "Topic": TOPIC,
}


def test_retained_resources_and_snapshots_are_listed_with_their_physical_ids(cfn):
    deploy_all(cfn, {"data": []}, env="staging", resources={"data": STAGING_DATA})
    aws = FakeAws(cfn, elasticache=FakeElastiCache({name("data", "staging") + "-Redis": ["final-redis-snap"]}))
    results, run = run_destroy(cfn, {"data": []}, env="staging", aws=aws)
    assert results["data"].action is Action.DELETED
    retained = {r["logical_id"]: r for r in run.to_json()["retained"]}
    assert set(retained) == {"Table", "Redis", "Logs"}  # the topic was deleted: nothing to say about it
    assert retained["Table"] == {"stack": "data", "logical_id": "Table", "type": "AWS::DynamoDB::Table",
                                 "physical_id": name("data", "staging") + "-Table",
                                 "policy": "RetainExceptOnCreate", "deletion_protected": True, "snapshots": []}
    assert retained["Redis"]["policy"] == "Snapshot" and retained["Redis"]["snapshots"] == ["final-redis-snap"]
    assert retained["Logs"]["policy"] == "Retain"


def test_a_deletion_protected_resource_stays_and_its_stack_is_still_deleted(cfn):
    alb = {"LoadBalancer": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {
        "LoadBalancerAttributes": [{"Key": "deletion_protection.enabled", "Value": "true"}]}}}
    deploy_all(cfn, {"alb": []}, env="prod", resources={"alb": alb})
    cfn.undeletable[name("alb", "prod")] = {"LoadBalancer": "Load balancer has deletion protection enabled"}
    results, run = run_destroy(cfn, {"alb": []}, env="prod", force_prod=True)
    assert results["alb"].action is Action.DELETED
    assert [c["RetainResources"] for op, c in cfn.calls if op == "delete_stack"] == [[], ["LoadBalancer"]]
    assert [(r.logical_id, r.policy) for r in run.retained] == [("LoadBalancer", "DeletionProtection")]


def test_a_delete_failure_fails_the_stack_and_its_producers_are_not_deleted(cfn):
    deploy_all(cfn, {"a": [], "b": ["a"], "z": []})
    cfn.undeletable[name("b")] = {"Thing": "resource is in use"}
    results, run = run_destroy(cfn, {"a": [], "b": ["a"], "z": []})
    assert not run.ok
    assert results["b"].action is Action.FAILED and results["b"].status == "DELETE_FAILED"
    assert results["b"].reason == "Thing (AWS::Fake::Thing): resource is in use"
    assert results["a"].action is Action.SKIPPED and "dependency b" in results["a"].reason
    assert results["z"].action is Action.DELETED
    assert cfn.stacks[name("a")].status == "CREATE_COMPLETE"


def test_stacks_not_deployed_are_skipped_without_failing_the_run(cfn):
    deploy_all(cfn, {"a": []})  # b (a's consumer) was never deployed
    results, run = run_destroy(cfn, {"a": [], "b": ["a"]})
    assert results["b"].action is Action.SKIPPED and results["b"].reason == "not deployed"
    assert results["a"].action is Action.DELETED
    assert run.ok and run.to_json()["ok"] is True


BUCKET_AND_VAULT = {"Logs": {"Type": "AWS::S3::Bucket", "Properties": {}},
                    "Vault": {"Type": "AWS::Backup::BackupVault", "Properties": {}}}


@pytest.mark.parametrize(("env", "emptied"), [("dev", True), ("staging", False)])
def test_buckets_and_backup_vaults_are_emptied_first_only_where_no_data_is_kept(cfn, env, emptied):
    deploy_all(cfn, {"alb": []}, env=env, resources={"alb": BUCKET_AND_VAULT})
    bucket, vault = name("alb", env) + "-Logs", name("alb", env) + "-Vault"
    s3 = VersionedS3({bucket: [{"Key": "log1", "VersionId": "v1"}, {"Key": "log1", "VersionId": "v2", "marker": True},
                          {"Key": "log2", "VersionId": "v3"}]})
    backup = FakeBackup({vault: ["arn:recovery-point-1"]})
    results, _ = run_destroy(cfn, {"alb": []}, env=env, aws=FakeAws(cfn, s3=s3, backup=backup))
    assert results["alb"].action is Action.DELETED
    assert (s3.versions[bucket] == []) is emptied
    assert (backup.deleted == ["arn:recovery-point-1"]) is emptied


def test_a_dev_bucket_that_filled_again_during_the_delete_is_emptied_and_the_delete_retried(cfn):
    deploy_all(cfn, {"alb": []}, resources={"alb": {"Logs": {"Type": "AWS::S3::Bucket", "Properties": {}}}})
    cfn.undeletable[name("alb")] = {"Logs": "The bucket you tried to delete is not empty"}
    s3 = VersionedS3({name("alb") + "-Logs": []})
    original = cfn.delete_stack

    def delete_then_deliver_a_log(StackName, RetainResources=(), ClientRequestToken=None):
        s3.versions[name("alb") + "-Logs"].append({"Key": "late-log", "VersionId": "v9"})
        if cfn.count("delete_stack"):
            cfn.undeletable.pop(name("alb"))  # emptied again: now the bucket can go
        original(StackName=StackName, RetainResources=RetainResources, ClientRequestToken=ClientRequestToken)

    cfn.delete_stack = delete_then_deliver_a_log
    results, _ = run_destroy(cfn, {"alb": []}, aws=FakeAws(cfn, s3=s3))
    assert results["alb"].action is Action.DELETED
    assert cfn.count("delete_stack") == 2


def test_an_unexpected_error_deleting_one_stack_fails_it_alone(cfn):
    deploy_all(cfn, {"a": [], "b": ["a"], "z": []})
    cfn.errors["delete_stack"] = [EndpointConnectionError(endpoint_url="https://cloudformation.invalid/")]
    results, run = run_destroy(cfn, {"a": [], "b": ["a"], "z": []}, concurrency=1)   # b is deleted first
    assert results["b"].action is Action.FAILED
    assert results["b"].reason == 'Could not connect to the endpoint URL: "https://cloudformation.invalid/"'
    assert results["a"].action is Action.SKIPPED and cfn.stacks[name("a")].status == "CREATE_COMPLETE"
    assert results["z"].action is Action.DELETED


def test_objects_s3_will_not_delete_are_named_instead_of_listed_forever():
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_response("list_object_versions", {
            "Versions": [{"Key": "AWSLogs/log1.gz", "VersionId": "v1"}, {"Key": "AWSLogs/log2.gz", "VersionId": "v2"}],
            "DeleteMarkers": []}, {"Bucket": "dev-logs", "MaxKeys": 1000})
        stub.add_response("delete_objects", {"Errors": [   # HTTP 200: quiet mode lists only what failed
            {"Key": "AWSLogs/log2.gz", "VersionId": "v2", "Code": "AccessDenied",
             "Message": "Access Denied because object protected by object lock."}]})
        with pytest.raises(DeployError, match=r"1 objects could not be deleted from dev-logs: AWSLogs/log2.gz "
                                              r"\(version v2\): AccessDenied: Access Denied because object "
                                              r"protected by object lock\."):
            destroy_module.empty_bucket(s3, "dev-logs")


def test_a_bucket_that_cannot_be_emptied_is_said_and_left_to_the_stacks_delete(cfn):
    deploy_all(cfn, {"alb": []}, resources={"alb": {"Logs": {"Type": "AWS::S3::Bucket", "Properties": {}}}})
    bucket = name("alb") + "-Logs"
    s3 = VersionedS3({bucket: [{"Key": "log1", "VersionId": "v1"}]})
    s3.locked[("log1", "v1")] = ("AccessDenied", "Access Denied")
    cfn.undeletable[name("alb")] = {"Logs": "The bucket you tried to delete is not empty"}
    notices = []
    reporter = Reporter(quiet=True)
    reporter.notice = notices.append
    run = destroy(load_config("dev"), FakeAws(cfn, s3=s3), DestroyOptions(yes=True), reporter,
                  rendered=tiny_environment({"alb": []}), backoff=FAST)
    assert run.stacks[0].action is Action.FAILED
    assert any(f"could not empty {bucket} (1 objects could not be deleted from {bucket}: log1 (version v1): "
               "AccessDenied: Access Denied)" in n for n in notices), notices


def test_a_vault_that_cannot_be_emptied_is_said_and_left_to_the_stacks_delete(cfn):
    deploy_all(cfn, {"dynamodb": []}, resources={"dynamodb": {"Vault": BUCKET_AND_VAULT["Vault"]}})
    notices = []
    reporter = Reporter(quiet=True)
    reporter.notice = notices.append
    run = destroy(load_config("dev"), FakeAws(cfn, backup=FakeBackup(unlistable=True)), DestroyOptions(yes=True),
                  reporter, rendered=tiny_environment({"dynamodb": []}), backoff=FAST)
    assert run.stacks[0].action is Action.DELETED
    assert any("could not empty" in n and "-Vault" in n for n in notices)


@pytest.mark.parametrize(("typed", "deleted"), [("dev", True), ("prod", False), ("", False)])
def test_on_a_terminal_only_the_environments_name_confirms(cfn, monkeypatch, typed, deleted):
    class Terminal:
        @staticmethod
        def isatty():
            return True

    monkeypatch.setattr(destroy_module.sys, "stdin", Terminal())
    monkeypatch.setattr(destroy_module.click, "prompt", lambda *args, **kwargs: typed)
    deploy_all(cfn, {"a": []})
    if deleted:
        assert run_destroy(cfn, {"a": []}, yes=False)[1].ok
    else:
        with pytest.raises(SafetyRefusal, match="nothing was deleted"):
            run_destroy(cfn, {"a": []}, yes=False)
    assert cfn.count("delete_stack") == int(deleted)


# the destroy command ---------------------------------------------------------------------------------------

def test_destroy_without_a_terminal_or_yes_is_a_usage_error_and_reads_nothing():
    result = CliRunner().invoke(cli, ["--endpoint-url", "http://127.0.0.1:9", "destroy", "dev"])
    assert result.exit_code == 2, result.output
    assert "--yes" in result.output


def test_destroying_prod_without_force_prod_exits_3():
    result = CliRunner().invoke(cli, ["--endpoint-url", "http://127.0.0.1:9", "destroy", "prod", "--yes"])
    assert result.exit_code == 3, result.output
    assert "--force-prod" in result.output


def test_destroy_json_is_deploys_shape_with_the_retained_list(cfn, monkeypatch):
    monkeypatch.setattr("perfdeploy.cli.operating.aws_for", lambda ctx, cfg: FakeAws(cfn))
    monkeypatch.setattr(destroy_module, "BACKOFF", FAST)
    cfn.deployed(name("dynamodb"), {"Table": TOPIC})
    result = CliRunner().invoke(cli, ["destroy", "dev", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"env", "release", "region", "ok", "seconds", "stacks", "retained"}
    actions = {s["key"]: s["action"] for s in data["stacks"]}
    assert actions.pop("dynamodb") == "deleted"
    assert set(actions.values()) == {"skipped"}
    assert data["retained"] == []


# drift -------------------------------------------------------------------------------------------------------

def drift_of(cfn, edges, aws=None):
    return detect_drift(tiny_environment(edges), aws or FakeAws(cfn), Reporter(quiet=True), backoff=FAST)


DIFFERENCE = ("Properties.DeletionProtectionEnabled", "true", "false", "NOT_EQUAL")


def test_drifted_resources_are_reported_with_their_property_differences(cfn):
    deploy_all(cfn, {"a": [], "b": ["a"]})
    cfn.drift[name("b")] = [resource_drift("Table", "AWS::DynamoDB::Table", differences=[DIFFERENCE]),
                            resource_drift("Rule", "AWS::Events::Rule", status="DELETED")]
    report = drift_of(cfn, {"a": [], "b": ["a"], "c": []})
    stacks = {s["key"]: s for s in report.to_json()["stacks"]}
    assert report.drifted and not report.errors
    assert stacks["a"]["status"] == "IN_SYNC" and stacks["a"]["drifted"] == []
    assert stacks["c"]["status"] == "NOT_DEPLOYED"
    assert stacks["b"]["status"] == "DRIFTED"
    assert [(d["logical_id"], d["status"]) for d in stacks["b"]["drifted"]] == [("Rule", "DELETED"),
                                                                                ("Table", "MODIFIED")]
    assert stacks["b"]["drifted"][1]["differences"] == [{
        "property_path": "Properties.DeletionProtectionEnabled", "expected_value": "true",
        "actual_value": "false", "difference_type": "NOT_EQUAL"}]


def test_throttling_during_the_drift_wait_is_survived(cfn):
    deploy_all(cfn, {"a": []})
    cfn.drift[name("a")] = [resource_drift("Thing", "AWS::SNS::Topic", differences=[DIFFERENCE])]
    cfn.throttle_drift_status = 5
    report = drift_of(cfn, {"a": []})
    assert report.stacks[0].status == "DRIFTED" and not report.errors
    assert cfn.throttle_drift_status == 0


def test_a_stack_whose_drift_cannot_be_detected_is_an_error(cfn):
    deploy_all(cfn, {"a": []})
    cfn.stacks[name("a")].status = "ROLLBACK_COMPLETE"
    report = drift_of(cfn, {"a": []})
    assert [s.key for s in report.errors] == ["a"]
    assert "ROLLBACK_COMPLETE" in report.stacks[0].reason
    assert cfn.count("detect_stack_drift") == 0


@pytest.fixture
def drift_cli(cfn, monkeypatch):
    monkeypatch.setattr("perfdeploy.cli.operating.aws_for", lambda ctx, cfg: FakeAws(cfn))
    monkeypatch.setattr(drift_module, "BACKOFF", FAST)
    cfn.deployed(name("security"), {"DataKey": {"Type": "AWS::KMS::Key", "Properties": {}}})
    return lambda *args: CliRunner().invoke(cli, ["drift", "dev", *args])


def test_drift_exits_4_and_prints_the_differences_when_anything_drifted(cfn, drift_cli):
    cfn.drift[name("security")] = [resource_drift("DataKey", "AWS::KMS::Key", differences=[
        ("Properties.EnableKeyRotation", "true", "false", "NOT_EQUAL")])]
    result = drift_cli()
    assert result.exit_code == 4, result.output
    assert "Properties.EnableKeyRotation" in result.stderr
    result = drift_cli("--json")
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    security = next(s for s in data["stacks"] if s["key"] == "security")
    assert security["drifted"][0]["differences"][0]["actual_value"] == "false"


def test_drift_exits_0_when_nothing_drifted(drift_cli):
    result = drift_cli("--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drifted"] is False


# end to end, through the CLI against the local emulator ----------------------------------------------------

def test_destroy_dev_against_the_emulator_leaves_no_stack_and_deletes_the_tables(monkeypatch, tmp_path):
    import boto3

    from perfdeploy.local import Emulator

    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(ROOT_CACHE))
    with Emulator() as url:
        def perfdeploy(*args):
            return CliRunner().invoke(cli, ["--endpoint-url", url, *args], catch_exceptions=False)

        deployed = perfdeploy("deploy", "dev", "--yes", "--skip-image-check", "--image-tag", "v1")
        assert deployed.exit_code == 0, deployed.stderr[-2000:]
        dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
        assert dynamodb.list_tables()["TableNames"]

        refused = perfdeploy("destroy", "prod", "--yes")
        assert refused.exit_code == 3

        result = perfdeploy("destroy", "dev", "--yes", "--json")
        assert result.exit_code == 0, result.stderr[-2000:]
        data = json.loads(result.stdout)
        assert {s["action"] for s in data["stacks"]} == {"deleted"} and data["retained"] == []
        cfn = boto3.client("cloudformation", endpoint_url=url, region_name="us-east-1")
        live = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
        assert live == []
        assert dynamodb.list_tables()["TableNames"] == []
