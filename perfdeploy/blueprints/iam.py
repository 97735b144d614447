"""iam: the ECS task execution role, the task role and the CI/CD deploy role (and, for blue/green, canary
and linear deployments, the role ECS shifts load balancer traffic with).

Every statement names our resources (chained from upstream stacks) or, for the ECS service that comes later
in the graph, its deterministic name; ``Resource: "*"`` only for the actions listed in
perfdeploy/iam_allowlist.py. Inline policies only: a role with attached managed policies cannot be deleted by
the local emulator, and the AWS-managed execution role policy grants more than this service needs.
"""

from __future__ import annotations

from awacs import cloudwatch, dynamodb, ecr, ecs, iam, kms, logs, secretsmanager, sts, xray
from awacs import elasticloadbalancing as elb
from awacs import kafka as msk
from awacs import kafka_cluster as kafka
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals, StringLike
from troposphere import AccountId, GetAtt, Sub, Template
from troposphere.iam import Policy, Role

from perfdeploy.blueprints.base import Blueprint, Input, output, param, tags
from perfdeploy.config import EnvConfig

ECS_TASKS = "ecs-tasks.amazonaws.com"
ECS = "ecs.amazonaws.com"
# The audience an OIDC provider puts in tokens meant for STS, where the provider documents one.
OIDC_AUDIENCES = {"token.actions.githubusercontent.com": "sts.amazonaws.com"}

PULL_ACTIONS = [ecr.BatchCheckLayerAvailability, ecr.GetDownloadUrlForLayer, ecr.BatchGetImage]
PUSH_ACTIONS = [ecr.BatchCheckLayerAvailability, ecr.InitiateLayerUpload, ecr.UploadLayerPart,
                ecr.CompleteLayerUpload, ecr.PutImage, ecr.BatchGetImage, ecr.GetDownloadUrlForLayer,
                ecr.DescribeImages, ecr.DescribeRepositories]
TABLE_ACTIONS = [dynamodb.GetItem, dynamodb.BatchGetItem, dynamodb.Query, dynamodb.Scan, dynamodb.PutItem,
                 dynamodb.UpdateItem, dynamodb.DeleteItem, dynamodb.BatchWriteItem,
                 dynamodb.ConditionCheckItem, dynamodb.DescribeTable]
INDEX_ACTIONS = [dynamodb.Query, dynamodb.Scan]
XRAY_ACTIONS = [xray.PutTraceSegments, xray.PutTelemetryRecords, xray.GetSamplingRules,
                xray.GetSamplingTargets, xray.GetSamplingStatisticSummaries]


def _document(*statements: Statement) -> PolicyDocument:
    return PolicyDocument(Version="2012-10-17", Statement=list(statements))


def _policy(name: str, *statements: Statement) -> Policy:
    return Policy(PolicyName=name, PolicyDocument=_document(*statements))


def _role(cfg: EnvConfig, title: str, kind: str, trust: PolicyDocument, policies: list[Policy],
          description: str) -> Role:
    role = Role(
        title,
        RoleName=cfg.resource_name(kind),
        Description=description,
        AssumeRolePolicyDocument=trust,
        Policies=policies,
        Tags=tags(cfg, cfg.resource_name(kind)),
    )
    if cfg.deploy.permissions_boundary_arn:
        role.PermissionsBoundary = cfg.deploy.permissions_boundary_arn
    return role


def ecs_tasks_trust() -> PolicyDocument:
    """Only ECS tasks of this account assume the task roles (confused-deputy guard)."""
    return _document(Statement(
        Effect=Allow,
        Principal=Principal("Service", ECS_TASKS),
        Action=[sts.AssumeRole],
        Condition=Condition(StringEquals("aws:SourceAccount", AccountId)),
    ))


def task_execution_role(cfg: EnvConfig) -> Role:
    """What ECS itself needs to start a task: pull the image, write its logs, inject its secrets."""
    return _role(cfg, "TaskExecutionRole", "task-execution-role", ecs_tasks_trust(), [
        _policy(
            "pull-image",
            Statement(Sid="RegistryToken", Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]),
            Statement(Sid="PullFromOurRepository", Effect=Allow, Action=PULL_ACTIONS,
                      Resource=[param("RepositoryArn")]),
        ),
        _policy(
            "write-logs",
            # The tracing stack's AppLogGroupArn ends in ":*": it covers the group's log streams.
            Statement(Sid="WriteToOurLogGroup", Effect=Allow, Action=[logs.CreateLogStream, logs.PutLogEvents],
                      Resource=[param("AppLogGroupArn")]),
        ),
        _policy(
            "read-secrets",
            Statement(Sid="ReadOurSecrets", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                      Resource=[param("AppSecretArn"), param("RedisAuthSecretArn")]),
            Statement(Sid="DecryptSecretsViaSecretsManager", Effect=Allow, Action=[kms.Decrypt],
                      Resource=[param("SecretsKeyArn")],
                      Condition=Condition(StringEquals("kms:ViaService",
                                                       Sub("secretsmanager.${AWS::Region}.amazonaws.com")))),
        ),
    ], f"ECS task execution role of {cfg.service} in {cfg.env}: image pull, logs, secrets")


def kafka_statements() -> list[Statement]:
    """MSK: find our cluster's brokers; IAM auth to connect, use its topics and consumer groups (the topic
    and group ARNs carry the cluster's UUID after its name, which ``<ClusterName>/*`` covers)."""
    topics = Sub("arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:topic/${ClusterName}/*")
    groups = Sub("arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:group/${ClusterName}/*")
    return [
        # No template can know the broker list (see docs/data-stacks.md): the application asks at start-up.
        Statement(Sid="BootstrapBrokersOfOurCluster", Effect=Allow, Action=[msk.GetBootstrapBrokers],
                  Resource=[param("ClusterArn")]),
        Statement(Sid="ConnectToOurCluster", Effect=Allow,
                  Action=[kafka.Connect, kafka.DescribeCluster, kafka.WriteDataIdempotently],
                  Resource=[param("ClusterArn")]),
        Statement(Sid="UseOurTopics", Effect=Allow,
                  Action=[kafka.CreateTopic, kafka.DescribeTopic, kafka.DescribeTopicDynamicConfiguration,
                          kafka.ReadData, kafka.WriteData],
                  Resource=[topics]),
        Statement(Sid="UseOurConsumerGroups", Effect=Allow, Action=[kafka.AlterGroup, kafka.DescribeGroup],
                  Resource=[groups]),
    ]


def task_role(cfg: EnvConfig) -> Role:
    """What the application does at run time: its tables, its Kafka cluster, traces and metrics."""
    names = [table.name for table in cfg.dynamodb.tables]
    tables = [param(f"{name}TableArn") for name in names]
    indexes = [Sub(f"${{{name}TableArn}}/index/*") for name in names]
    return _role(cfg, "TaskRole", "task-role", ecs_tasks_trust(), [
        _policy(
            "dynamodb",
            Statement(Sid="OurTables", Effect=Allow, Action=TABLE_ACTIONS, Resource=tables),
            Statement(Sid="OurTableIndexes", Effect=Allow, Action=INDEX_ACTIONS, Resource=indexes),
            Statement(Sid="UseTheDataKey", Effect=Allow,
                      Action=[kms.Decrypt, kms.Encrypt, kms.GenerateDataKey, kms.DescribeKey],
                      Resource=[param("DataKeyArn")]),
        ),
        _policy("kafka", *kafka_statements()),
        _policy(
            "telemetry",
            Statement(Sid="XRayTraces", Effect=Allow, Action=XRAY_ACTIONS, Resource=["*"]),
            Statement(Sid="MetricsInOurNamespace", Effect=Allow, Action=[cloudwatch.PutMetricData],
                      Resource=["*"],
                      Condition=Condition(StringEquals("cloudwatch:namespace", param("MetricNamespace")))),
        ),
    ], f"ECS task role of {cfg.service} in {cfg.env}: tables, Kafka, traces, metrics")


def oidc_trust(cfg: EnvConfig) -> PolicyDocument:
    """Federated trust: only tokens from the configured OIDC provider for the configured subject."""
    provider = cfg.deploy.ci_oidc_provider_arn
    host = provider.split(":oidc-provider/", 1)[1]
    conditions = [StringLike(f"{host}:sub", cfg.deploy.ci_subject)]
    if host in OIDC_AUDIENCES:
        conditions.insert(0, StringEquals(f"{host}:aud", OIDC_AUDIENCES[host]))
    return _document(Statement(
        Effect=Allow,
        Principal=Principal("Federated", provider),
        Action=[sts.AssumeRoleWithWebIdentity],
        Condition=Condition(conditions),
    ))


def service_arn(cfg: EnvConfig) -> Sub:
    """The ECS service by its deterministic name: the ecs stack comes after this one in the graph."""
    return Sub(f"arn:${{AWS::Partition}}:ecs:${{AWS::Region}}:${{AWS::AccountId}}:service/"
               f"{cfg.resource_name('cluster')}/{cfg.resource_name('service')}")


def deploy_role(cfg: EnvConfig) -> Role:
    """CI/CD: push images, register the task definition with our two roles, roll the service."""
    return _role(cfg, "DeployRole", "deploy-role", oidc_trust(cfg), [
        _policy(
            "push-image",
            Statement(Sid="RegistryToken", Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]),
            Statement(Sid="PushToOurRepository", Effect=Allow, Action=PUSH_ACTIONS,
                      Resource=[param("RepositoryArn")]),
        ),
        _policy(
            "roll-service",
            Statement(Sid="TaskDefinitions", Effect=Allow,
                      Action=[ecs.RegisterTaskDefinition, ecs.DescribeTaskDefinition], Resource=["*"]),
            Statement(Sid="UpdateOurService", Effect=Allow, Action=[ecs.UpdateService, ecs.DescribeServices],
                      Resource=[service_arn(cfg)]),
            Statement(Sid="PassOurTaskRoles", Effect=Allow, Action=[iam.PassRole],
                      Resource=[GetAtt("TaskExecutionRole", "Arn"), GetAtt("TaskRole", "Arn")],
                      Condition=Condition(StringEquals("iam:PassedToService", ECS_TASKS))),
        ),
    ], f"CI/CD deploy role of {cfg.service} in {cfg.env}: push images, update the service")


# The alb outputs the load balancer role acts on (chained: alb does not depend on this stack).
LOAD_BALANCER_INPUTS = ("TargetGroupArn", "AlternateTargetGroupArn", "ListenerArn", "TestListenerArn",
                        "ProductionListenerRuleArn", "TestListenerRuleArn")


def ecs_load_balancer_role(cfg: EnvConfig) -> Role:
    """The "Amazon ECS infrastructure IAM role for load balancers"
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AmazonECSInfrastructureRolePolicyForLoadBalancers.html):
    what the AWS-managed AmazonECSInfrastructureRolePolicyForLoadBalancers grants, narrowed from every target
    group, listener and rule in the account to this environment's two target groups, two listeners and two
    rules. The trust policy is the one that page documents (ECS as the principal)."""
    trust = _document(Statement(Effect=Allow, Principal=Principal("Service", ECS), Action=[sts.AssumeRole]))
    return _role(cfg, "EcsLoadBalancerRole", "ecs-load-balancer-role", trust, [
        _policy(
            "shift-traffic",
            # Elastic Load Balancing has no resource-level permissions for its Describe actions.
            Statement(Sid="ReadLoadBalancing", Effect=Allow,
                      Action=[elb.DescribeListeners, elb.DescribeRules, elb.DescribeTargetGroups,
                              elb.DescribeTargetHealth], Resource=["*"]),
            Statement(Sid="RegisterTasksInOurTargetGroups", Effect=Allow,
                      Action=[elb.RegisterTargets, elb.DeregisterTargets],
                      Resource=[param("TargetGroupArn"), param("AlternateTargetGroupArn")]),
            Statement(Sid="ShiftOurListenerRules", Effect=Allow, Action=[elb.ModifyRule],
                      Resource=[param("ProductionListenerRuleArn"), param("TestListenerRuleArn")]),
            Statement(Sid="ShiftOurListeners", Effect=Allow, Action=[elb.ModifyListener],
                      Resource=[param("ListenerArn"), param("TestListenerArn")]),
        ),
    ], f"ECS role of {cfg.service} in {cfg.env}: shift traffic between its two target groups during deployments")


class IamBlueprint(Blueprint):
    key = "iam"
    description = "ECS task execution role, task role and CI/CD deploy role"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        found = {name: Input("security", name)
                 for name in ("SecretsKeyArn", "DataKeyArn", "AppSecretArn", "RedisAuthSecretArn")}
        found["RepositoryArn"] = Input("registry", "RepositoryArn")
        for table in cfg.dynamodb.tables:
            found[f"{table.name}TableArn"] = Input("dynamodb", f"{table.name}TableArn")
        found["ClusterArn"] = Input("msk", "ClusterArn")
        found["ClusterName"] = Input("msk", "ClusterName")
        found["AppLogGroupArn"] = Input("tracing", "AppLogGroupArn")
        found["MetricNamespace"] = Input("tracing", "MetricNamespace")
        if cfg.deployment.progressive:
            found.update({name: Input("alb", name) for name in LOAD_BALANCER_INPUTS})
        return found

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(task_execution_role(cfg))
        t.add_resource(task_role(cfg))
        t.add_resource(deploy_role(cfg))
        output(t, "TaskExecutionRoleArn", GetAtt("TaskExecutionRole", "Arn"), "ECS task execution role ARN")
        output(t, "TaskRoleArn", GetAtt("TaskRole", "Arn"), "ECS task role ARN")
        output(t, "DeployRoleArn", GetAtt("DeployRole", "Arn"), "CI/CD deploy role ARN")
        if cfg.deployment.progressive:
            t.add_resource(ecs_load_balancer_role(cfg))
            output(t, "EcsLoadBalancerRoleArn", GetAtt("EcsLoadBalancerRole", "Arn"),
                   "Role ECS shifts load balancer traffic with (blue/green, canary, linear)")
        return t


BLUEPRINT = IamBlueprint()
