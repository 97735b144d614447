"""iam: the ECS task execution role, the task role, the CI/CD deploy role, one CloudFormation execution
role per stack (and, for blue/green, canary and linear deployments, the role ECS shifts load balancer traffic
with).

Every statement names our resources (chained from upstream stacks) or, for what comes later in the graph,
its deterministic name; ``Resource: "*"`` only for actions AWS grants no other way (perfdeploy/iam_allowlist.py).
Inline policies only: a role with attached managed policies cannot be deleted by the local emulator, and the
AWS-managed execution role policy grants more than this service needs.

CI deploys through CloudFormation, never around it: the deploy role may run change sets on this
environment's stacks only, and only change sets that CloudFormation executes as that stack's execution role
(``perfdeploy deploy ENV --execution-roles``). Each execution role may call exactly the actions CloudFormation
needs for the resource types of its stack (perfdeploy/iam_permissions.py, from the schemas AWS publishes).
"""

from __future__ import annotations

from awacs import cloudformation as cfn
from awacs import cloudwatch, dynamodb, ecr, ecs, elasticache, iam, kms, logs, s3, secretsmanager, sts, xray
from awacs import elasticloadbalancing as elb
from awacs import kafka as msk
from awacs import kafka_cluster as kafka
from awacs.aws import Action, Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from troposphere import AccountId, GetAtt, Sub, Template
from troposphere.iam import Policy, Role

from perfdeploy import iam_permissions
from perfdeploy.blueprints.base import Blueprint, Input, execution_role_name, output, param, tags
from perfdeploy.config import EnvConfig

ECS_TASKS = "ecs-tasks.amazonaws.com"
ECS = "ecs.amazonaws.com"
CLOUDFORMATION = "cloudformation.amazonaws.com"
# The audience an OIDC provider puts in tokens meant for STS, where the provider documents one.
OIDC_AUDIENCES = {"token.actions.githubusercontent.com": "sts.amazonaws.com"}

PULL_ACTIONS = [ecr.BatchCheckLayerAvailability, ecr.GetDownloadUrlForLayer, ecr.BatchGetImage]
PUSH_ACTIONS = [ecr.BatchCheckLayerAvailability, ecr.InitiateLayerUpload, ecr.UploadLayerPart,
                ecr.CompleteLayerUpload, ecr.PutImage, ecr.BatchGetImage, ecr.GetDownloadUrlForLayer,
                ecr.DescribeImages, ecr.DescribeRepositories]
# What perfdeploy deploy, plan and rollback call on a stack (perfdeploy/deploy/); CreateChangeSet apart.
STACK_ACTIONS = [cfn.DescribeStacks, cfn.DescribeStackEvents, cfn.DescribeChangeSet, cfn.ExecuteChangeSet,
                 cfn.DeleteChangeSet, cfn.ListChangeSets, cfn.GetTemplate, cfn.ListStackResources,
                 cfn.GetStackPolicy, cfn.SetStackPolicy, cfn.UpdateTerminationProtection, cfn.CancelUpdateStack,
                 cfn.ContinueUpdateRollback, cfn.RollbackStack, cfn.DeleteStack, cfn.TagResource]
ARTIFACT_OBJECT_ACTIONS = [s3.GetObject, s3.GetObjectVersion, s3.PutObject, s3.DeleteObject]
ARTIFACT_BUCKET_ACTIONS = [s3.ListBucket, s3.ListBucketVersions, s3.GetBucketLocation]
# IAM actions an execution role may call only with the configured permissions boundary on the role.
BOUNDED_IAM_ACTIONS = ("iam:CreateRole", "iam:PutRolePermissionsBoundary")
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
                      Resource=[param("AppSecretArn")]),
            Statement(Sid="DecryptSecretsViaSecretsManager", Effect=Allow, Action=[kms.Decrypt],
                      Resource=[param("SecretsKeyArn")],
                      Condition=Condition(StringEquals(
                          "kms:ViaService", Sub("secretsmanager.${AWS::Region}.${AWS::URLSuffix}")))),
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
            "cache",
            # IAM authentication: a token signed by this role admits the app user to our replication group.
            Statement(Sid="ConnectToOurCacheAsTheAppUser", Effect=Allow, Action=[elasticache.Connect],
                      Resource=[Sub("arn:${AWS::Partition}:elasticache:${AWS::Region}:${AWS::AccountId}:"
                                    "replicationgroup:${ReplicationGroupId}"), param("CacheUserArn")]),
        ),
        _policy(
            "telemetry",
            Statement(Sid="XRayTraces", Effect=Allow, Action=XRAY_ACTIONS, Resource=["*"]),
            Statement(Sid="MetricsInOurNamespace", Effect=Allow, Action=[cloudwatch.PutMetricData],
                      Resource=["*"],
                      Condition=Condition(StringEquals("cloudwatch:namespace", param("MetricNamespace")))),
        ),
    ], f"ECS task role of {cfg.service} in {cfg.env}: tables, Kafka, cache, traces, metrics")


def oidc_trust(cfg: EnvConfig) -> PolicyDocument:
    """Federated trust: only tokens from the configured OIDC provider for this environment's one subject
    (StringEquals: config refuses wildcards, so no other branch or environment matches)."""
    provider = cfg.deploy.ci_oidc_provider_arn
    host = provider.split(":oidc-provider/", 1)[1]
    conditions = {f"{host}:sub": cfg.deploy.ci_subject}
    if host in OIDC_AUDIENCES:
        conditions = {f"{host}:aud": OIDC_AUDIENCES[host], **conditions}
    return _document(Statement(
        Effect=Allow,
        Principal=Principal("Federated", provider),
        Action=[sts.AssumeRoleWithWebIdentity],
        Condition=Condition(StringEquals(conditions)),
    ))


def _arn(service: str, resource: str, region: bool = True, account: bool = True) -> Sub:
    where = ("${AWS::Region}" if region else "") + ":" + ("${AWS::AccountId}" if account else "")
    return Sub(f"arn:${{AWS::Partition}}:{service}:{where}:{resource}")


def stack_keys() -> list[str]:
    from perfdeploy.blueprints import all_blueprints  # the package imports this module

    return list(all_blueprints())


def execution_role_arn(cfg: EnvConfig, key: str) -> Sub:
    return _arn("iam", f"role/{execution_role_name(cfg, key)}", region=False)


def deploy_role(cfg: EnvConfig) -> Role:
    """CI/CD through CloudFormation: change sets on this environment's stacks, each executed by its stack's
    execution role (never CI's own permissions); the artifacts bucket; pushing images. No ECS or other
    service action: a rollout CloudFormation did not make would be reverted by the next deploy. Reading the
    service's deployments is allowed: `deploy --image-tag` follows the one the stack update starts (rollout.py;
    ListServiceDeployments is scoped to the service, DescribeServiceDeployments to its deployments, per the
    Service Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/
    list_amazonelasticcontainerservice.html, as cfn-lint's Policies.json has it; a deployment's ARN is
    service-deployment/CLUSTER/SERVICE/ID, per the AWS CLI reference's describe-service-deployments example)."""
    cluster, service = cfg.resource_name("cluster"), cfg.resource_name("service")
    stacks = _arn("cloudformation", f"stack/{cfg.stack_name('*')}/*")
    change_sets = _arn("cloudformation", "changeSet/perfdeploy-*/*")
    bucket = "perfdeploy-${AWS::AccountId}-${AWS::Region}"
    change_set_statements = [
        Statement(Sid=f"ChangeSetsOn{key.capitalize()}AsItsExecutionRole", Effect=Allow, Action=[cfn.CreateChangeSet],
                  Resource=[_arn("cloudformation", f"stack/{cfg.stack_name(key)}/*")],
                  Condition=Condition(StringEquals("cloudformation:RoleArn", execution_role_arn(cfg, key))))
        for key in stack_keys()
    ]
    return _role(cfg, "DeployRole", "deploy-role", oidc_trust(cfg), [
        _policy("change-sets", *change_set_statements),
        _policy(
            "operate-stacks",
            Statement(Sid="OurStacksAndTheirChangeSets", Effect=Allow, Action=STACK_ACTIONS,
                      Resource=[stacks, change_sets]),
            Statement(Sid="PassOurExecutionRoles", Effect=Allow, Action=[iam.PassRole],
                      Resource=[execution_role_arn(cfg, key) for key in stack_keys()],
                      Condition=Condition(StringEquals("iam:PassedToService", CLOUDFORMATION))),
            Statement(Sid="ReadTheRollbackTrigger", Effect=Allow, Action=[cloudwatch.DescribeAlarms],
                      Resource=[_arn("cloudwatch", f"alarm:{cfg.resource_name('*')}")]),
            Statement(Sid="FollowOurServiceDeployments", Effect=Allow,
                      Action=[ecs.ListServiceDeployments, ecs.DescribeServiceDeployments],
                      Resource=[_arn("ecs", f"service/{cluster}/{service}"),
                                _arn("ecs", f"service-deployment/{cluster}/{service}/*")]),
        ),
        _policy(
            "artifacts",
            # perfdeploy-{account}-{region} (perfdeploy/deploy/artifacts.py): large templates, releases, the lock.
            Statement(Sid="ArtifactsBucket", Effect=Allow, Action=ARTIFACT_BUCKET_ACTIONS,
                      Resource=[_arn("s3", bucket, region=False, account=False)]),
            Statement(Sid="ArtifactsObjects", Effect=Allow, Action=ARTIFACT_OBJECT_ACTIONS,
                      Resource=[_arn("s3", f"{bucket}/*", region=False, account=False)]),
        ),
        _policy(
            "push-image",
            Statement(Sid="RegistryToken", Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]),
            Statement(Sid="PushToOurRepository", Effect=Allow, Action=PUSH_ACTIONS,
                      Resource=[param("RepositoryArn")]),
        ),
    ], f"CI/CD deploy role of {cfg.service} in {cfg.env}: change sets on its stacks, artifacts, image pushes")


def cloudformation_trust() -> PolicyDocument:
    return _document(Statement(Effect=Allow, Principal=Principal("Service", CLOUDFORMATION),
                               Action=[sts.AssumeRole]))


def stack_resource_types(cfg: EnvConfig) -> dict[str, set[str]]:
    """Stack key -> the resource types its template creates (the iam stack: its roles)."""
    from perfdeploy.blueprints import all_blueprints

    found = {key: {r.resource_type for r in bp.build(cfg).resources.values()}
             for key, bp in all_blueprints().items() if key != IamBlueprint.key}
    found[IamBlueprint.key] = {"AWS::IAM::Role"}
    return found


def _scopes(cfg: EnvConfig, key: str, service: str) -> list:
    """Where a service's actions may act: IAM on our roles (and service-linked roles AWS creates on first
    use), S3 on the buckets CloudFormation names after the stack, other services in this account/region."""
    if service == "iam":
        return [_arn("iam", f"role/{cfg.resource_name('*')}", region=False),
                _arn("iam", "role/aws-service-role/*", region=False)]
    if service == "s3":
        return [_arn("s3", f"{cfg.stack_name(key)}-*", region=False, account=False)]
    return [Sub(iam_permissions.arn_scope(service))]


def execution_statements(cfg: EnvConfig, key: str, types: set[str]) -> list[Statement]:
    """One statement per service for the actions the stack's resource types need; one for the actions AWS
    grants only on every resource; with a permissions boundary, roles are created only under it."""
    boundary = cfg.deploy.permissions_boundary_arn
    actions = iam_permissions.actions_for(types)
    if boundary:
        actions = [a for a in actions if a not in BOUNDED_IAM_ACTIONS and a != "iam:DeleteRolePermissionsBoundary"]
    anywhere = [a for a in actions if iam_permissions.takes_no_resource(a)]
    by_service: dict[str, list[str]] = {}
    for a in actions:
        if a not in anywhere:
            by_service.setdefault(a.split(":")[0], []).append(a)
    statements = [Statement(Sid=f"{_sid(service)}ForTheStack", Effect=Allow, Action=_actions(acts),
                            Resource=_scopes(cfg, key, service)) for service, acts in sorted(by_service.items())]
    if anywhere:
        statements.append(Statement(Sid="ActionsWithoutResourceScope", Effect=Allow,
                                    Action=_actions(anywhere), Resource=["*"]))
    if boundary and {"AWS::IAM::Role"} & types:
        statements.append(Statement(Sid="RolesOnlyUnderTheBoundary", Effect=Allow,
                                    Action=_actions(BOUNDED_IAM_ACTIONS),
                                    Resource=_scopes(cfg, key, "iam"),
                                    Condition=Condition(StringEquals("iam:PermissionsBoundary", boundary))))
    return statements


def execution_roles(cfg: EnvConfig) -> list[Role]:
    roles = []
    for key, types in stack_resource_types(cfg).items():
        roles.append(_role(cfg, f"{_sid(key)}ExecutionRole", f"{key}-cfn", cloudformation_trust(),
                           [_policy(f"manage-{key}", *execution_statements(cfg, key, types))],
                           f"CloudFormation execution role of the {cfg.stack_name(key)} stack"))
    return roles


def _actions(names) -> list[Action]:
    return [Action(*name.split(":")) for name in names]


def _sid(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


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
    description = "ECS task execution role, task role, CI/CD deploy role, CloudFormation execution roles"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        found = {name: Input("security", name) for name in ("SecretsKeyArn", "DataKeyArn", "AppSecretArn")}
        found["RepositoryArn"] = Input("registry", "RepositoryArn")
        for table in cfg.dynamodb.tables:
            found[f"{table.name}TableArn"] = Input("dynamodb", f"{table.name}TableArn")
        found["ClusterArn"] = Input("msk", "ClusterArn")
        found["ClusterName"] = Input("msk", "ClusterName")
        found["ReplicationGroupId"] = Input("elasticache", "ReplicationGroupId")
        found["CacheUserArn"] = Input("elasticache", "AppUserArn")
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
        for role in execution_roles(cfg):
            t.add_resource(role)
        output(t, "TaskExecutionRoleArn", GetAtt("TaskExecutionRole", "Arn"), "ECS task execution role ARN")
        output(t, "TaskRoleArn", GetAtt("TaskRole", "Arn"), "ECS task role ARN")
        output(t, "DeployRoleArn", GetAtt("DeployRole", "Arn"), "CI/CD deploy role ARN")
        for key in stack_keys():
            output(t, f"{_sid(key)}ExecutionRoleArn", GetAtt(f"{_sid(key)}ExecutionRole", "Arn"),
                   f"Role CloudFormation assumes to change the {key} stack")
        if cfg.deployment.progressive:
            t.add_resource(ecs_load_balancer_role(cfg))
            output(t, "EcsLoadBalancerRoleArn", GetAtt("EcsLoadBalancerRole", "Arn"),
                   "Role ECS shifts load balancer traffic with (blue/green, canary, linear)")
        # This stack's own execution role: CloudFormation deletes in reverse dependency order, so with every
        # other role depending on it, deleting the stack as that role removes it last, not halfway.
        own = f"{_sid(self.key)}ExecutionRole"
        for name, resource in t.resources.items():
            if name != own:
                resource.DependsOn = [own]
        return t


BLUEPRINT = IamBlueprint()
