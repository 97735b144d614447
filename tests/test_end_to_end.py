"""End to end through the real CLI against the local emulator on a free loopback port.

One environment's life, in order: first deploy (repository, image, everything), a no-op deploy, status and
outputs, a new image tag, plan, the guard, releases and rollback. The tests share one emulator and run in
file order; each builds on the state the previous one left.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner

from perfdeploy.cli import cli
from perfdeploy.config import load_config
from perfdeploy.deploy import changeset
from perfdeploy.local import Emulator
from perfdeploy.render import MAX_INLINE_BYTES, render_env

ROOT = Path(__file__).parent.parent
STACK = "dev-performance-mgmt-{}"


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as url:
        yield url


@pytest.fixture(scope="module")
def aws(emulator):
    def client(service):
        return boto3.client(service, endpoint_url=emulator, region_name="us-east-1")
    return client


@pytest.fixture
def run(emulator, monkeypatch):
    """Invoke the CLI against the emulator; returns (exit code, parsed --json stdout or text, stderr)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator)
    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(ROOT / ".perfdeploy" / "cache"))

    def invoke(*args: str):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        out = result.stdout
        try:
            out = json.loads(out) if out.strip().startswith("{") else out
        except ValueError:
            pass
        return result.exit_code, out, result.stderr
    return invoke


@pytest.fixture
def created_change_sets(monkeypatch):
    made: list[str] = []
    original = changeset.create

    def counting(cfn, stack_name, *args, **kwargs):
        made.append(stack_name)
        return original(cfn, stack_name, *args, **kwargs)
    monkeypatch.setattr(changeset, "create", counting)
    return made


def push_image(aws, tag: str) -> None:
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                      "digest": "sha256:" + "0" * 64}, "layers": []})
    aws("ecr").put_image(repositoryName="dev-performance-mgmt-app", imageManifest=manifest, imageTag=tag)


def stacks(aws) -> dict[str, dict]:
    found = {}
    for key in ("security", "network", "registry", "dynamodb", "msk", "elasticache", "tracing", "iam", "alb",
                "ecs", "monitoring"):
        try:
            found[key] = aws("cloudformation").describe_stacks(StackName=STACK.format(key))["Stacks"][0]
        except aws("cloudformation").exceptions.ClientError:
            pass
    return found


def test_first_deploy_stops_at_the_image_check_with_instructions(run, aws):
    code, out, err = run("deploy", "dev", "--yes", "--json", "--image-tag", "v1")
    assert code == 1
    ecs = next(s for s in out["stacks"] if s["key"] == "ecs")
    assert ecs["action"] == "failed" and "image tag 'v1' is not in the repository" in ecs["reason"]
    monitoring = next(s for s in out["stacks"] if s["key"] == "monitoring")
    assert monitoring["action"] == "skipped"
    others = {s["key"]: s["action"] for s in out["stacks"] if s["key"] not in ("ecs", "monitoring")}
    assert set(others.values()) == {"created"}, others


def test_after_the_push_every_stack_deploys_and_every_chained_parameter_is_its_upstream_output(run, aws):
    push_image(aws, "v1")
    code, out, err = run("deploy", "dev", "--yes", "--json", "--image-tag", "v1")
    assert code == 0, err
    assert out["ok"] and out["env"] == "dev" and out["release"]
    assert {s["key"]: s["action"] for s in out["stacks"]}["ecs"] == "created"
    deployed = stacks(aws)
    assert len(deployed) == 11
    assert all(s["StackStatus"].endswith("_COMPLETE") for s in deployed.values())
    manifest = render_env(load_config("dev")).manifest
    checked = 0
    for stack in manifest["stacks"]:
        params = {p["ParameterKey"]: p["ParameterValue"] for p in deployed[stack["key"]].get("Parameters", [])}
        for name, source in stack["parameters"].items():
            if isinstance(source, dict) and "stack" in source:
                outputs = {o["OutputKey"]: o["OutputValue"] for o in deployed[source["stack"]]["Outputs"]}
                assert params[name] == outputs[source["output"]], (stack["key"], name)
                checked += 1
    assert checked > 40


def test_a_second_deploy_is_all_unchanged_and_creates_no_change_set(run, created_change_sets):
    code, out, err = run("deploy", "dev", "--yes", "--json")
    assert code == 0, err
    assert {s["action"] for s in out["stacks"]} == {"unchanged"}
    assert created_change_sets == []


def test_status_and_outputs_agree_with_the_emulator(run, aws):
    code, status, _ = run("status", "dev", "--json")
    assert code == 0
    deployed = stacks(aws)
    for s in status["stacks"]:
        assert s["status"] == deployed[s["key"]]["StackStatus"]
        assert s["template_current"] is True
    code, outputs, _ = run("outputs", "dev", "--json")
    for key, values in outputs["stacks"].items():
        assert values == {o["OutputKey"]: o["OutputValue"] for o in deployed[key].get("Outputs", [])}


def test_a_template_over_the_inline_limit_went_through_the_artifacts_bucket(aws):
    big = [s.key for s in render_env(load_config("dev")).stacks if len(s.body.encode()) > MAX_INLINE_BYTES]
    assert big, "no template is large enough to exercise the bucket"
    s3 = aws("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("perfdeploy-"))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="templates/dev/")["Contents"]]
    assert {k.split("/")[2] for k in keys} >= set(big)
    assert bucket == "perfdeploy-123456789012-us-east-1"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_new_image_tag_updates_only_the_ecs_stack(run, aws):
    push_image(aws, "v2")
    code, out, err = run("deploy", "dev", "--yes", "--json", "--image-tag", "v2")
    assert code == 0, err
    actions = {s["key"]: s["action"] for s in out["stacks"]}
    assert actions.pop("ecs") == "updated"
    assert set(actions.values()) == {"unchanged"}


def test_plan_of_an_image_tag_change_names_ecs_alone_with_the_images_old_and_new(run):
    code, plan, err = run("plan", "dev", "--json", "--detailed-exitcode", "--image-tag", "v1")
    assert code == 4, err
    actions = {s["key"]: s["action"] for s in plan["stacks"]}
    assert actions.pop("ecs") == "update"
    # The service is modified in place (its TaskDefinition is replaced), as on AWS; monitoring takes the
    # service's name, which the ecs stack outputs as given, so it stays known and monitoring unchanged.
    assert set(actions.values()) == {"unchanged"}, actions
    ecs = next(s for s in plan["stacks"] if s["key"] == "ecs")
    assert ecs["unknown_inputs"] == [] and ecs["parameters"] == [{"name": "ImageTag", "old": "v2", "new": "v1"}]
    task = next(c for c in ecs["changes"] if c["type"] == "AWS::ECS::TaskDefinition")
    image = next(p for p in task["properties"] if p["path"].endswith(".Image"))
    repository = next(o["OutputValue"] for o in stacks_outputs(run, "registry") if o["OutputKey"] == "RepositoryUri")
    assert (image["old"], image["new"]) == (f"{repository}:v2", f"{repository}:v1")
    assert f"{task['logical_id']}.{image['path']}: {repository}:v2 -> {repository}:v1" in err


def stacks_outputs(run, key: str) -> list[dict]:
    code, outputs, _ = run("outputs", "dev", "--json")
    return [{"OutputKey": k, "OutputValue": v} for k, v in outputs["stacks"][key].items()]


def test_no_change_set_is_left_behind(aws):
    cfn = aws("cloudformation")
    for key in stacks(aws):
        assert cfn.list_change_sets(StackName=STACK.format(key))["Summaries"] == []


def edited_config(tmp_path: Path, edit) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config" / "dev.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path / "config"


def test_plan_names_the_stack_a_change_touches_and_changes_nothing(run, tmp_path, aws):
    config = edited_config(tmp_path, lambda d: d.setdefault("ecs", {}).update(health_check_grace_seconds=300))
    code, plan, err = run("--config-dir", str(config), "plan", "dev", "--json", "--detailed-exitcode")
    assert code == 4, err
    actions = {s["key"]: s["action"] for s in plan["stacks"]}
    assert actions["ecs"] == "update"
    assert actions["network"] == actions["dynamodb"] == "unchanged"
    ecs = next(s for s in plan["stacks"] if s["key"] == "ecs")
    assert any(c["logical_id"] == "Service" for c in ecs["changes"])
    code, _, _ = run("plan", "dev", "--detailed-exitcode")
    assert code == 0


def test_removing_a_table_is_refused_and_the_table_stays(run, tmp_path, aws):
    def drop_goals(d):
        defaults = yaml.safe_load((ROOT / "config" / "defaults.yaml").read_text())
        d["dynamodb"]["tables"] = [t for t in defaults["dynamodb"]["tables"] if t["name"] != "Goals"]
    config = edited_config(tmp_path, drop_goals)
    code, out, err = run("--config-dir", str(config), "deploy", "dev", "--yes", "--json")
    assert code == 3, err
    dynamodb = next(s for s in out["stacks"] if s["key"] == "dynamodb")
    assert dynamodb["action"] == "refused"
    assert "GoalsTable (AWS::DynamoDB::Table) would be deleted" in dynamodb["reason"]
    assert aws("dynamodb").describe_table(TableName="dev-Goals")["Table"]["TableStatus"] == "ACTIVE"
    assert stacks(aws)["dynamodb"]["StackStatus"].endswith("_COMPLETE")


def test_releases_list_the_deploys_and_rollback_returns_ecs_to_the_first_image(run, aws):
    code, listed, _ = run("releases", "dev", "--json")
    assert code == 0
    assert [r["image_tag"] for r in listed["releases"]] == ["v1", "v2"]  # failed, no-op, refused: none
    first = listed["releases"][0]
    assert len(first["stacks"]) == 11 and first["time"] and "commit" in first
    code, out, err = run("rollback", "dev", "--yes", "--json")
    assert code == 0, err
    actions = {s["key"]: s["action"] for s in out["stacks"]}
    assert actions.pop("ecs") == "rolled_back"
    assert set(actions.values()) == {"unchanged"}
    ecs = stacks(aws)["ecs"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in ecs["Parameters"]}["ImageTag"] == "v1"
    code, listed, _ = run("releases", "dev", "--json")
    assert [r["kind"] for r in listed["releases"]] == ["deploy", "deploy", "rollback"]
    assert listed["releases"][-1]["id"] == out["release"]


def test_switching_dev_to_canary_adds_the_green_side_and_says_the_deployment_is_not_followed(run, tmp_path, aws):
    def canary(d):
        d["deployment"] = {"strategy": "canary", "canary": {"percent": 10, "bake_minutes": 5},
                           "test_listener": {"port": 8443, "cidrs": ["192.0.2.0/24"]}}
    config = edited_config(tmp_path, canary)
    code, out, err = run("--config-dir", str(config), "deploy", "dev", "--yes", "--json")
    assert code == 0, err
    actions = {s["key"]: s["action"] for s in out["stacks"]}
    assert {k for k, a in actions.items() if a == "updated"} == {"alb", "iam", "ecs"}, actions
    ecs = next(s for s in out["stacks"] if s["key"] == "ecs")
    assert ecs["deployment"]["state"] == "not_followed"
    assert "The local emulator (moto) does not implement ecs ListServiceDeployments" in ecs["deployment"]["reason"]
    assert "ECS deployment not followed" in err and "Traceback" not in err

    alb = {o["OutputKey"]: o["OutputValue"] for o in stacks(aws)["alb"]["Outputs"]}
    elbv2 = aws("elbv2")
    [rule] = [r for r in elbv2.describe_rules(ListenerArn=alb["ListenerArn"])["Rules"] if not r["IsDefault"]]
    assert rule["RuleArn"] == alb["ProductionListenerRuleArn"]
    weights = {t["TargetGroupArn"]: t["Weight"] for t in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {alb["TargetGroupArn"]: 100, alb["AlternateTargetGroupArn"]: 0}
    network = {o["OutputKey"]: o["OutputValue"] for o in stacks(aws)["network"]["Outputs"]}
    [group] = aws("ec2").describe_security_groups(GroupNames=["dev-performance-mgmt-alb-test-sg"])["SecurityGroups"]
    sources = {r["CidrIp"] for p in group["IpPermissions"] if p["FromPort"] == 8443 for r in p["IpRanges"]}
    assert sources == {f"{network['NatPublicIps']}/32", "192.0.2.0/24"}  # dev has one NAT gateway
