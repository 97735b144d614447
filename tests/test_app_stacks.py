"""The application stacks (registry, iam, alb, ecs): the properties issue 4 asks for, per environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfdeploy.blueprints import alb, ecs, iam, network, registry
from perfdeploy.config import DeploymentConfig, load_config
from perfdeploy.iam_allowlist import granted_only_on_every_resource
from perfdeploy.lint import lint_templates

CONFIG = Path(__file__).resolve().parents[1] / "config"
ENVS = ("dev", "staging", "prod")
APP_BLUEPRINTS = {"registry": registry.BLUEPRINT, "iam": iam.BLUEPRINT, "alb": alb.BLUEPRINT,
                  "ecs": ecs.BLUEPRINT}

# The sizing table of the issue (cpu, memory, min, max), independent of config/*.yaml.
SIZES = {
    "dev": (1024, 2048, 1, 4),
    "staging": (1024, 2048, 2, 8),
    "prod": (2048, 4096, 3, 12),
}


@pytest.fixture(scope="module")
def configs():
    return {env: load_config(env, CONFIG) for env in ENVS}


@pytest.fixture(scope="module")
def templates(configs):
    """(env, key) -> the built troposphere Template, each built once."""
    built = {(env, key): bp.build(configs[env]) for env in ENVS for key, bp in APP_BLUEPRINTS.items()}
    for env in ENVS:
        built[(env, "network")] = network.BLUEPRINT.build(configs[env])
    return built


@pytest.fixture(scope="module")
def docs(templates):
    """(env, key) -> the template as a plain dict (what CloudFormation receives)."""
    return {k: t.to_dict() for k, t in templates.items()}


def resources_of(doc: dict, rtype: str) -> dict[str, dict]:
    return {lid: r for lid, r in doc["Resources"].items() if r["Type"] == rtype}


def one(doc: dict, rtype: str) -> dict:
    found = list(resources_of(doc, rtype).values())
    assert len(found) == 1, f"expected one {rtype}, found {len(found)}"
    return found[0]["Properties"]


def app_container(doc: dict) -> dict:
    containers = one(doc, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    return next(c for c in containers if c["Name"] == ecs.APP)


# ecs ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_task_and_service_sizes_follow_the_config_table(env, docs):
    cpu, memory, low, high = SIZES[env]
    doc = docs[(env, "ecs")]
    task = one(doc, "AWS::ECS::TaskDefinition")
    assert (task["Cpu"], task["Memory"]) == (str(cpu), str(memory))
    target = one(doc, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (low, high)


@pytest.mark.parametrize("env", ENVS)
def test_a_rolling_service_rolls_back_a_failed_deployment_and_keeps_full_capacity(env, configs):
    # staging and prod deploy canary (issue 18, tests/test_progressive_delivery.py); rolling keeps this.
    cfg = configs[env].model_copy(update={"deployment": DeploymentConfig(strategy="rolling")})
    deployment = one(ecs.BLUEPRINT.build(cfg).to_dict(), "AWS::ECS::Service")["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (100, 200)


@pytest.mark.parametrize("env", ENVS)
def test_tasks_run_in_private_subnets_without_public_ip_behind_the_target_group(env, docs, configs):
    svc = one(docs[(env, "ecs")], "AWS::ECS::Service")
    vpc = svc["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert vpc["AssignPublicIp"] == "DISABLED"
    assert vpc["Subnets"] == {"Ref": "PrivateSubnetIds"}
    assert vpc["SecurityGroups"] == [{"Ref": "TaskSecurityGroupId"}]
    [target] = svc["LoadBalancers"]  # (blue/green, canary, linear add AdvancedConfiguration: issue 18)
    assert {k: v for k, v in target.items() if k != "AdvancedConfiguration"} == {
        "ContainerName": "app", "ContainerPort": 8080, "TargetGroupArn": {"Ref": "TargetGroupArn"}}
    assert svc["HealthCheckGracePeriodSeconds"] == configs[env].ecs.health_check_grace_seconds
    assert svc["ServiceName"] == f"{env}-performance-mgmt-service"
    assert svc.get("LaunchType") is None  # the capacity provider strategy decides
    depends = _listify(docs[(env, "ecs")]["Resources"]["Service"].get("DependsOn", []))
    assert set(depends) <= set(docs[(env, "ecs")]["Resources"]), "DependsOn may only name this stack's resources"


@pytest.mark.parametrize("env", ENVS)
def test_auto_scaling_tracks_cpu_70_and_memory_80_and_scales_out_after_60s(env, docs):
    doc = docs[(env, "ecs")]
    target = one(doc, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert "RoleARN" not in target  # the service-linked role
    assert target["ResourceId"] == {"Fn::Sub": "service/${Cluster}/${Service.Name}"}
    policies = {r["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
                ["PredefinedMetricType"]: r["Properties"]["TargetTrackingScalingPolicyConfiguration"]
                for r in resources_of(doc, "AWS::ApplicationAutoScaling::ScalingPolicy").values()}
    assert {m: p["TargetValue"] for m, p in policies.items()} == {
        "ECSServiceAverageCPUUtilization": 70, "ECSServiceAverageMemoryUtilization": 80}
    assert all(p["ScaleOutCooldown"] == 60 for p in policies.values())


@pytest.mark.parametrize("env", ENVS)
def test_cluster_has_container_insights_and_spot_only_where_configured(env, docs):
    doc = docs[(env, "ecs")]
    assert one(doc, "AWS::ECS::Cluster")["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]
    providers = one(doc, "AWS::ECS::ClusterCapacityProviderAssociations")["CapacityProviders"]
    assert providers == (["FARGATE", "FARGATE_SPOT"] if env == "dev" else ["FARGATE"])


@pytest.mark.parametrize("env", ENVS)
def test_image_is_the_repository_uri_at_the_deploy_time_image_tag(env, docs, configs):
    doc = docs[(env, "ecs")]
    assert app_container(doc)["Image"] == {"Fn::Sub": "${RepositoryUri}:${ImageTag}"}
    assert "Default" not in doc["Parameters"]["ImageTag"]  # no mutable default: a new stack needs --image-tag
    assert ecs.BLUEPRINT.args(configs[env])["ImageTag"].name == "image_tag"


@pytest.mark.parametrize("env", ENVS)
def test_app_container_runs_as_non_root_on_a_read_only_root_file_system(env, docs):
    container = app_container(docs[(env, "ecs")])
    assert container["User"].split(":")[0] not in ("", "0", "root")
    assert container["ReadonlyRootFilesystem"] is True
    assert container["PortMappings"][0]["ContainerPort"] == 8080
    assert "/actuator/health" in container["HealthCheck"]["Command"][1]


@pytest.mark.parametrize("env", ENVS)
def test_app_container_logs_to_the_tracing_log_group_and_reads_secrets_by_arn(env, docs):
    container = app_container(docs[(env, "ecs")])
    options = container["LogConfiguration"]["Options"]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert options["awslogs-group"] == {"Ref": "AppLogGroupName"}
    assert {s["Name"]: s["ValueFrom"] for s in container["Secrets"]} == {"APP_SECRETS": {"Ref": "AppSecretArn"}}
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["ENVIRONMENT"] == env
    assert environment["DYNAMODB_TABLE_REVIEW_CYCLES"] == {"Ref": "ReviewCyclesTableName"}
    assert environment["KAFKA_CLUSTER_ARN"] == {"Ref": "ClusterArn"}
    assert environment["REDIS_HOST"] == {"Ref": "PrimaryEndpointAddress"}
    assert (environment["REDIS_AUTH"], environment["REDIS_USER"]) == ("iam", {"Ref": "CacheUserId"})


def test_xray_sidecar_is_pinned_to_a_version(docs):
    containers = one(docs[("prod", "ecs")], "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    image = next(c["Image"] for c in containers if c["Name"] == ecs.XRAY)
    repo, _, tag = image.rpartition(":")
    assert repo == "public.ecr.aws/xray/aws-xray-daemon"
    assert tag[:1].isdigit(), f"the X-Ray daemon must be pinned to a version, not {tag!r}"


# registry -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_repository_scans_on_push_with_immutable_tags_and_our_data_key(env, docs, configs):
    doc = docs[(env, "registry")]
    repo = resources_of(doc, "AWS::ECR::Repository")["Repository"]
    props = repo["Properties"]
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["EncryptionConfiguration"] == {"EncryptionType": "KMS", "KmsKey": {"Ref": "DataKeyArn"}}
    retained = (repo.get("DeletionPolicy"), repo.get("UpdateReplacePolicy")) == ("RetainExceptOnCreate", "Retain")
    assert retained == (env != "dev")


# alb ------------------------------------------------------------------------------------------------------

def listeners(doc: dict) -> dict[str, dict]:
    return {lid: r["Properties"] for lid, r in resources_of(doc, "AWS::ElasticLoadBalancingV2::Listener").items()}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_https_uses_the_tls13_policy_and_http_redirects_to_it(env, docs):
    found = listeners(docs[(env, "alb")])
    https = found["HttpsListener"]
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}]
    http = found["HttpListener"]["DefaultActions"][0]
    assert http["Type"] == "redirect"
    assert (http["RedirectConfig"]["Protocol"], http["RedirectConfig"]["StatusCode"]) == ("HTTPS", "HTTP_301")
    assert docs[(env, "alb")]["Outputs"]["ListenerArn"]["Value"] == {"Ref": "HttpsListener"}


def test_dev_forwards_plain_http_reported_only_as_the_i9105_notice(docs, templates):
    doc = docs[("dev", "alb")]
    assert set(listeners(doc)) == {"HttpListener"}
    assert listeners(doc)["HttpListener"]["DefaultActions"][0]["Type"] == "forward"
    assert doc["Outputs"]["ListenerArn"]["Value"] == {"Ref": "HttpListener"}
    findings = lint_templates({"dev/alb.yaml": templates[("dev", "alb")].to_yaml()}, "us-east-1", use_cache=False)
    assert [(f.rule, f.severity) for f in findings] == [("I9105", "informational")]


@pytest.mark.parametrize("env", ENVS)
def test_waf_protects_the_load_balancer_in_staging_and_prod(env, docs):
    doc = docs[(env, "alb")]
    acls = resources_of(doc, "AWS::WAFv2::WebACL")
    if env == "dev":
        assert not acls and not resources_of(doc, "AWS::WAFv2::WebACLAssociation")
        return
    acl = acls["WebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL"
    groups = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"]
              if "ManagedRuleGroupStatement" in r["Statement"]}
    assert groups == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    assert any("RateBasedStatement" in r["Statement"] and r["Action"] == {"Block": {}} for r in acl["Rules"])
    association = one(doc, "AWS::WAFv2::WebACLAssociation")
    assert association["ResourceArn"] == {"Ref": "LoadBalancer"}


@pytest.mark.parametrize("env", ENVS)
def test_load_balancer_logs_to_an_sse_s3_bucket_drops_bad_headers_and_is_protected_in_prod(env, docs, configs):
    doc = docs[(env, "alb")]
    lb = one(doc, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in lb["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.bucket"] == {"Ref": "AccessLogBucket"}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["deletion_protection.enabled"] == ("true" if env == "prod" else "false")
    assert (lb["Scheme"], lb["Subnets"]) == ("internet-facing", {"Ref": "PublicSubnetIds"})

    bucket = doc["Resources"]["AccessLogBucket"]
    props = bucket["Properties"]
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == configs[env].alb.access_log_expiry_days
    assert (bucket["DeletionPolicy"] == "RetainExceptOnCreate") == (env != "dev")

    statements = one(doc, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"]
    delivery = next(s for s in statements if s["Effect"] == "Allow")
    assert delivery["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::127311923021:root"}}
    assert delivery["Action"] == ["s3:PutObject"]
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("env", ENVS)
def test_target_group_routes_to_task_ips_on_8080_with_the_health_check(env, docs):
    tg = docs[(env, "alb")]["Resources"]["TargetGroup"]["Properties"]
    assert (tg["TargetType"], tg["Port"], tg["HealthCheckPath"]) == ("ip", 8080, "/actuator/health")
    delay = {a["Key"]: int(a["Value"]) for a in tg["TargetGroupAttributes"]}["deregistration_delay.timeout_seconds"]
    assert delay <= 60


def test_alb_and_ecs_updates_are_guarded_by_the_rollback_trigger():
    assert alb.BLUEPRINT.guarded_by_rollback_trigger and ecs.BLUEPRINT.guarded_by_rollback_trigger


# iam ------------------------------------------------------------------------------------------------------

def _listify(value):
    return value if isinstance(value, list) else [value]


def wildcard_problems(statement: dict) -> list[str]:
    """Why an Allow statement is too broad: a wildcard action, or Resource '*' for an action AWS scopes."""
    if statement.get("Effect") != "Allow":
        return []
    actions = [a for a in _listify(statement.get("Action", [])) if isinstance(a, str)]
    problems = [f"wildcard action {a!r}" for a in actions if "*" in a]
    if "*" in _listify(statement.get("Resource", [])):
        outside = sorted(a for a in set(actions) if not granted_only_on_every_resource(a))
        if outside:
            problems.append(f"Resource '*' for {', '.join(outside)}")
    return problems


def role_statements(doc: dict):
    """(role, statement) for every statement of every role: trust policy and inline policies."""
    for lid, role in resources_of(doc, "AWS::IAM::Role").items():
        props = role["Properties"]
        for st in props["AssumeRolePolicyDocument"]["Statement"]:
            yield lid, st
        for policy in props.get("Policies", []):
            for st in _listify(policy["PolicyDocument"]["Statement"]):
                yield f"{lid}/{policy['PolicyName']}", st


def test_the_wildcard_check_catches_what_it_should():
    assert wildcard_problems({"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": ["arn:x"]})
    assert wildcard_problems({"Effect": "Allow", "Action": "ecr:Batch*", "Resource": "arn:x"})
    assert wildcard_problems({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})
    assert not wildcard_problems({"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]})


@pytest.mark.parametrize("env", ENVS)
def test_no_role_statement_uses_a_wildcard_outside_the_allow_list(env, docs):
    walked, problems = 0, []
    for key in ("iam", "network", *APP_BLUEPRINTS):
        for where, statement in role_statements(docs[(env, key)]):
            walked += 1
            problems += [f"{key}/{where}: {p}" for p in wildcard_problems(statement)]
    assert walked >= 15, "the walk found too few statements: is it reading the templates?"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ENVS)
def test_roles_use_inline_policies_only(env, docs):
    for key in APP_BLUEPRINTS:
        doc = docs[(env, key)]
        assert not resources_of(doc, "AWS::IAM::ManagedPolicy")
        assert all("ManagedPolicyArns" not in r["Properties"] for r in resources_of(doc, "AWS::IAM::Role").values())


def statements_of(doc: dict, role: str) -> dict[str, dict]:
    props = doc["Resources"][role]["Properties"]
    return {st["Sid"]: st for policy in props["Policies"] for st in policy["PolicyDocument"]["Statement"]}


def test_task_role_reaches_our_tables_and_indexes_only(docs):
    st = statements_of(docs[("prod", "iam")], "TaskRole")
    assert st["OurTables"]["Resource"] == [{"Ref": f"{t}TableArn"} for t in ("ReviewCycles", "Reviews", "Goals")]
    assert st["OurTableIndexes"]["Resource"] == [
        {"Fn::Sub": f"${{{t}TableArn}}/index/*"} for t in ("ReviewCycles", "Reviews", "Goals")]
    assert st["UseTheDataKey"]["Resource"] == [{"Ref": "DataKeyArn"}]


def test_task_role_uses_msk_iam_auth_on_our_cluster_topics_and_groups(docs):
    st = statements_of(docs[("prod", "iam")], "TaskRole")
    assert st["ConnectToOurCluster"]["Resource"] == [{"Ref": "ClusterArn"}]
    assert "kafka-cluster:Connect" in st["ConnectToOurCluster"]["Action"]
    assert st["BootstrapBrokersOfOurCluster"] == {
        "Sid": "BootstrapBrokersOfOurCluster", "Effect": "Allow", "Action": ["kafka:GetBootstrapBrokers"],
        "Resource": [{"Ref": "ClusterArn"}]}
    prefix = "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}"
    assert st["UseOurTopics"]["Resource"] == [{"Fn::Sub": f"{prefix}:topic/${{ClusterName}}/*"}]
    assert st["UseOurConsumerGroups"]["Resource"] == [{"Fn::Sub": f"{prefix}:group/${{ClusterName}}/*"}]


def test_task_role_puts_metrics_only_in_our_namespace(docs):
    st = statements_of(docs[("prod", "iam")], "TaskRole")["MetricsInOurNamespace"]
    assert st["Action"] == ["cloudwatch:PutMetricData"]
    assert st["Condition"] == {"StringEquals": {"cloudwatch:namespace": {"Ref": "MetricNamespace"}}}


def test_execution_role_pulls_our_image_reads_our_secrets_and_writes_our_logs(docs):
    st = statements_of(docs[("prod", "iam")], "TaskExecutionRole")
    assert st["PullFromOurRepository"]["Resource"] == [{"Ref": "RepositoryArn"}]
    assert st["ReadOurSecrets"]["Resource"] == [{"Ref": "AppSecretArn"}]
    assert st["DecryptSecretsViaSecretsManager"]["Resource"] == [{"Ref": "SecretsKeyArn"}]
    assert st["WriteToOurLogGroup"]["Resource"] == [{"Ref": "AppLogGroupArn"}]


def test_deploy_role_trusts_only_the_configured_ci_subject(docs, configs):
    trust = docs[("prod", "iam")]["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Federated": configs["prod"].deploy.ci_oidc_provider_arn}
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["Condition"] == {"StringEquals": {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:example-org/performance-mgmt:environment:prod"}}


def test_a_configured_permissions_boundary_applies_to_every_role(configs):
    boundary = "arn:aws:iam::123456789012:policy/perf-boundary"
    base = configs["staging"]
    cfg = base.model_copy(update={"deploy": base.deploy.model_copy(update={"permissions_boundary_arn": boundary})})
    roles = resources_of(iam.BLUEPRINT.build(cfg).to_dict(), "AWS::IAM::Role")
    # task execution, task, deploy; one CloudFormation execution role per stack; (staging deploys canary)
    # the ECS load balancer role
    assert len(roles) == 3 + 11 + 1
    assert all(r["Properties"]["PermissionsBoundary"] == boundary for r in roles.values())


def test_without_a_boundary_no_role_carries_one(docs):
    roles = resources_of(docs[("prod", "iam")], "AWS::IAM::Role")
    assert all("PermissionsBoundary" not in r["Properties"] for r in roles.values())


# chaining and the lint gate -------------------------------------------------------------------------------

def test_inputs_chain_from_the_stacks_the_contract_names(configs):
    cfg = configs["prod"]
    upstream = {key: {i.stack for i in bp.inputs(cfg).values()} for key, bp in APP_BLUEPRINTS.items()}
    assert upstream == {
        "registry": {"security"},
        # alb: the ECS load balancer role of a canary deployment is scoped to its target groups and rules.
        "iam": {"security", "registry", "dynamodb", "msk", "elasticache", "tracing", "alb"},
        "alb": {"network", "security"},  # security: the logs key of the WAF's log group
        "ecs": {"network", "security", "registry", "dynamodb", "msk", "elasticache", "tracing", "iam", "alb"},
    }
    assert iam.BLUEPRINT.inputs(cfg)["ReviewsTableArn"].output == "ReviewsTableArn"
    assert ecs.BLUEPRINT.inputs(cfg)["PrivateSubnetIds"].type == "List<AWS::EC2::Subnet::Id>"


@pytest.mark.parametrize("env", ENVS)
def test_app_templates_pass_the_lint_gate(env, templates):
    bodies = {f"{env}/{key}.yaml": templates[(env, key)].to_yaml() for key in APP_BLUEPRINTS}
    failing = [str(f) for f in lint_templates(bodies, "us-east-1", use_cache=False) if f.fails]
    assert not failing, "\n".join(failing)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_app_learns_its_tracing_name_and_the_kafka_topics_it_must_create(env):
    from perfdeploy.blueprints.ecs import BLUEPRINT
    from perfdeploy.config import load_config

    cfg = load_config(env)
    container = BLUEPRINT.build(cfg).to_dict()["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    values = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert values["AWS_XRAY_TRACING_NAME"] == f"{env}-performance-mgmt"
    assert values["KAFKA_TOPICS"] == ",".join(f"{t.name}:{t.partitions}" for t in cfg.kafka.topics)


# Issue 13: what real AWS needs of the app stacks, in every environment -----------------------------------

def containers_of(doc: dict) -> dict[str, dict]:
    return {c["Name"]: c for c in one(doc, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]}


@pytest.mark.parametrize("env", ENVS)
def test_the_non_root_app_can_write_tmp_because_an_init_container_hands_it_over_first(env, docs):
    containers = containers_of(docs[(env, "ecs")])
    app, init = containers["app"], containers[ecs.VOLUMES_INIT]
    writable = {m["SourceVolume"] for m in app["MountPoints"] if not m.get("ReadOnly")}
    assert writable == {"tmp"} and app["User"] == "1000:1000"
    # Fargate makes a bind mount root-owned 0755: the init container (root, once) chmods and chowns it.
    assert {"ContainerName": ecs.VOLUMES_INIT, "Condition": "SUCCESS"} in app["DependsOn"]
    assert init["Essential"] is False and init["User"] == "0" and not init.get("PortMappings")
    assert {m["SourceVolume"] for m in init["MountPoints"] if not m.get("ReadOnly")} == writable
    assert init["Command"] == ["chmod 1777 /tmp && chown 1000:1000 /tmp"]
    assert "CHOWN" not in init["LinuxParameters"]["Capabilities"]["Drop"]
    assert init["ReadonlyRootFilesystem"] is True and ":" in init["Image"] and not init["Image"].endswith(":latest")


@pytest.mark.parametrize("env", ENVS)
def test_no_container_but_the_init_container_runs_as_root(env, docs):
    users = {name: c.get("User", "") for name, c in containers_of(docs[(env, "ecs")]).items()}
    assert users == {"app": "1000:1000", ecs.XRAY: "65534:65534", ecs.VOLUMES_INIT: "0"}


@pytest.mark.parametrize("env", ENVS)
def test_the_task_count_is_left_to_auto_scaling_with_the_config_minimum(env, docs, configs):
    doc = docs[(env, "ecs")]
    assert "DesiredCount" not in one(doc, "AWS::ECS::Service")  # an update keeps what auto scaling chose
    assert one(doc, "AWS::ApplicationAutoScaling::ScalableTarget")["MinCapacity"] == configs[env].ecs.min


@pytest.mark.parametrize("env", ENVS)
def test_the_image_lifecycle_expires_untagged_images_only(env, docs):
    import json

    props = docs[(env, "registry")]["Resources"]["Repository"]["Properties"]
    rules = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged"]  # no release loses its image
    assert props["ImageTagMutability"] == "IMMUTABLE"


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_trusts_its_own_ci_subject_only(env, docs):
    [statement] = docs[(env, "iam")]["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert "StringLike" not in statement["Condition"]
    subject = statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subject == f"repo:example-org/performance-mgmt:environment:{env}"


@pytest.mark.parametrize("env", ENVS)
def test_ci_deploys_only_through_change_sets_run_as_each_stacks_execution_role(env, docs):
    doc = docs[(env, "iam")]
    statements = [st for policy in doc["Resources"]["DeployRole"]["Properties"]["Policies"]
                  for st in policy["PolicyDocument"]["Statement"]]
    actions = {a for st in statements for a in _listify(st["Action"])}
    assert not {a for a in actions if a.split(":")[0] in ("lambda", "ec2", "dynamodb", "kms")}
    # ECS: only reading the deployments a stack update starts (deploy follows them), on our service only
    assert {a for a in actions if a.startswith("ecs:")} == {"ecs:ListServiceDeployments",
                                                            "ecs:DescribeServiceDeployments"}
    follow = next(st for st in statements if st["Sid"] == "FollowOurServiceDeployments")
    assert [r["Fn::Sub"].split(":ecs:")[1] for r in follow["Resource"]] == [
        f"${{AWS::Region}}:${{AWS::AccountId}}:service/{env}-performance-mgmt-cluster/{env}-performance-mgmt-service",
        f"${{AWS::Region}}:${{AWS::AccountId}}:service-deployment/{env}-performance-mgmt-cluster/"
        f"{env}-performance-mgmt-service/*"]
    change_sets = [st for st in statements if "cloudformation:CreateChangeSet" in _listify(st["Action"])]
    assert len(change_sets) == 11  # one per stack, each only as that stack's execution role
    for st in change_sets:
        [stack] = st["Resource"]
        role = st["Condition"]["StringEquals"]["cloudformation:RoleArn"]["Fn::Sub"]
        key = stack["Fn::Sub"].split(f"stack/{env}-performance-mgmt-")[1].removesuffix("/*")
        assert role.endswith(f":role/{env}-performance-mgmt-{key}-cfn")
    pass_role = next(st for st in statements if st["Action"] == ["iam:PassRole"])
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    artifacts = [r["Fn::Sub"] for st in statements if st["Sid"].startswith("Artifacts") for r in st["Resource"]]
    assert artifacts == ["arn:${AWS::Partition}:s3:::perfdeploy-${AWS::AccountId}-${AWS::Region}",
                         "arn:${AWS::Partition}:s3:::perfdeploy-${AWS::AccountId}-${AWS::Region}/*"]


@pytest.mark.parametrize("env", ENVS)
def test_the_iam_stacks_own_execution_role_is_deleted_last_within_it(env, docs):
    resources = docs[(env, "iam")]["Resources"]
    assert "DependsOn" not in resources["IamExecutionRole"]
    assert all(r.get("DependsOn") == ["IamExecutionRole"] for lid, r in resources.items() if lid != "IamExecutionRole")


@pytest.mark.parametrize("env", ENVS)
def test_each_execution_role_is_assumed_by_cloudformation_and_grants_what_its_stack_types_need(env, docs, configs):
    from perfdeploy import iam_permissions

    doc = docs[(env, "iam")]
    types = iam.stack_resource_types(configs[env])
    assert set(types) == set(iam.stack_keys())
    for key, stack_types in types.items():
        role = doc["Resources"][f"{iam._sid(key)}ExecutionRole"]["Properties"]
        assert role["RoleName"] == f"{env}-performance-mgmt-{key}-cfn"
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
        granted = {a for st in role["Policies"][0]["PolicyDocument"]["Statement"] for a in st["Action"]}
        assert granted == set(iam_permissions.actions_for(stack_types)), key
    ecs_role = doc["Resources"]["EcsExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert not any(a.startswith(("kafka:", "dynamodb:", "kms:Create")) for st in ecs_role for a in st["Action"])


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_web_acl_logs_to_its_own_group_with_credentials_redacted(env, docs):
    doc = docs[(env, "alb")]
    logging = one(doc, "AWS::WAFv2::LoggingConfiguration")
    assert logging["ResourceArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    group = doc["Resources"]["WafLogGroup"]["Properties"]
    assert group["LogGroupName"] == f"aws-waf-logs-{env}-performance-mgmt-waf"
    assert logging["LogDestinationConfigs"][0]["Fn::Sub"].endswith(f"log-group:{group['LogGroupName']}")
    assert {f["SingleHeader"]["Name"] for f in logging["RedactedFields"]} == {"authorization", "cookie"}


@pytest.mark.parametrize("env", ENVS)
def test_the_access_log_bucket_is_versioned_and_old_versions_expire(env, docs):
    props = docs[(env, "alb")]["Resources"]["AccessLogBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = props["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


@pytest.mark.parametrize("env", ENVS)
def test_the_load_balancer_sends_traffic_to_the_tasks_group_only(env, docs):
    alb_group = docs[(env, "network")]["Resources"]["AlbSecurityGroup"]["Properties"]
    assert alb_group["SecurityGroupEgress"] == [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                                                 "DestinationSecurityGroupId": {"Ref": "TaskSecurityGroup"},
                                                 "Description": "To the service tasks"}]
