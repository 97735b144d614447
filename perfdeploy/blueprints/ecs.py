"""ecs: the Fargate cluster, the task definition, the service behind the load balancer, and its auto scaling.

The image is ``<repository uri>:<ImageTag>``; ImageTag is a deploy-time argument (``perfdeploy deploy ENV
--image-tag TAG``, config default ``ecs.image_tag``). Every other value is chained from the upstream stacks:
nothing here names another stack's resource by hand.
"""

from __future__ import annotations

import re

from troposphere import GetAtt, Ref, Sub, Template
from troposphere.applicationautoscaling import (
    PredefinedMetricSpecification,
    ScalableTarget,
    ScalingPolicy,
    TargetTrackingScalingPolicyConfiguration,
)
from troposphere.ecs import (
    AdvancedConfiguration,
    AwsvpcConfiguration,
    CanaryConfiguration,
    CapacityProviderStrategy,
    CapacityProviderStrategyItem,
    Cluster,
    ClusterCapacityProviderAssociations,
    ClusterSetting,
    ContainerDefinition,
    ContainerDependency,
    DeploymentAlarms,
    DeploymentCircuitBreaker,
    DeploymentConfiguration,
    DeploymentController,
    Environment,
    HealthCheck,
    KernelCapabilities,
    LinearConfiguration,
    LinuxParameters,
    LoadBalancer,
    LogConfiguration,
    MountPoint,
    NetworkConfiguration,
    PortMapping,
    RuntimePlatform,
    Secret,
    Service,
    TaskDefinition,
    Volume,
)

from perfdeploy.blueprints.base import SECURITY_GROUP_ID, SUBNET_IDS, Arg, Blueprint, Input, output, param, tags
from perfdeploy.blueprints.monitoring import deployment_alarm_names
from perfdeploy.blueprints.tracing import xray_service_name
from perfdeploy.config import EnvConfig

APP = "app"
XRAY = "xray-daemon"
VOLUMES_INIT = "volume-permissions"
# Pinned: a sidecar that changes under us is a deploy nobody asked for. Bump deliberately.
XRAY_DAEMON_IMAGE = "public.ecr.aws/xray/aws-xray-daemon:3.3.12"
INIT_IMAGE = "public.ecr.aws/docker/library/busybox:1.37.0"  # chmod/chown only
XRAY_PORT = 2000
APP_UID = APP_GID = 1000
APP_USER = f"{APP_UID}:{APP_GID}"  # the image's files must be readable by this non-root user
XRAY_USER = "65534:65534"  # nobody: the daemon only sends UDP segments on
# The volumes the app writes, and their mode. Fargate creates a bind-mount volume owned by root with mode
# 0755, so a non-root process cannot write it until the init container hands it over.
APP_VOLUMES = {"tmp": ("/tmp", "1777")}  # the JVM and the framework need a temp directory
# The one capability the init container keeps: chown. Fargate can add no capability (SYS_PTRACE aside), so
# the others are dropped by name (Docker's default set, minus CHOWN).
DROPPED_CAPABILITIES = ["AUDIT_WRITE", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                        "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
CPU_TARGET, MEMORY_TARGET = 70.0, 80.0  # percent, target tracking
SCALE_OUT_COOLDOWN, SCALE_IN_COOLDOWN = 60, 300  # seconds: add capacity fast, remove it slowly
MAX_HEALTH_CHECK_START_PERIOD = 300  # ECS's limit for a container health check's start period


def capacity_strategy(cfg: EnvConfig) -> list[tuple[str, int, int]]:
    """(provider, base, weight): one task always on FARGATE; the rest on FARGATE_SPOT where allowed."""
    if cfg.ecs.fargate_spot:
        return [("FARGATE", 1, 1), ("FARGATE_SPOT", 0, 3)]
    return [("FARGATE", 0, 1)]


def cluster(cfg: EnvConfig) -> Cluster:
    return Cluster(
        "Cluster",
        ClusterName=cfg.resource_name("cluster"),
        ClusterSettings=[ClusterSetting(Name="containerInsights", Value="enabled")],
        Tags=tags(cfg, cfg.resource_name("cluster")),
    )


def capacity_providers(cfg: EnvConfig) -> ClusterCapacityProviderAssociations:
    strategy = capacity_strategy(cfg)
    return ClusterCapacityProviderAssociations(
        "CapacityProviders",
        Cluster=Ref("Cluster"),
        CapacityProviders=[name for name, _, _ in strategy],
        DefaultCapacityProviderStrategy=[CapacityProviderStrategy(CapacityProvider=name, Base=base, Weight=weight)
                                         for name, base, weight in strategy],
    )


def _env_name(table: str) -> str:
    """ReviewCycles -> DYNAMODB_TABLE_REVIEW_CYCLES."""
    return "DYNAMODB_TABLE_" + re.sub(r"(?<!^)(?=[A-Z])", "_", table).upper()


def app_environment(cfg: EnvConfig) -> list[Environment]:
    values: list[tuple[str, object]] = [
        ("ENVIRONMENT", cfg.env),
        ("SERVER_PORT", str(cfg.ecs.container_port)),
        ("KAFKA_CLUSTER_ARN", param("ClusterArn")),
        ("REDIS_HOST", param("PrimaryEndpointAddress")),
        ("REDIS_PORT", param("PrimaryEndpointPort")),
        ("REDIS_TLS", "true"),
        # IAM authentication: the app signs a token for this user and replication group with its task role.
        ("REDIS_AUTH", "iam"),
        ("REDIS_USER", param("CacheUserId")),
        ("REDIS_REPLICATION_GROUP_ID", param("ReplicationGroupId")),
        ("AWS_XRAY_DAEMON_ADDRESS", f"localhost:{XRAY_PORT}"),
        # The name the tracing stack's sampling rule and X-Ray group match on.
        ("AWS_XRAY_TRACING_NAME", xray_service_name(cfg)),
        # CloudFormation has no topic resource: the application creates these at start-up.
        ("KAFKA_TOPICS", ",".join(f"{t.name}:{t.partitions}" for t in cfg.kafka.topics)),
    ]
    values += [(_env_name(t.name), param(f"{t.name}TableName")) for t in cfg.dynamodb.tables]
    return [Environment(Name=name, Value=value) for name, value in values]


def _logs(prefix: str) -> LogConfiguration:
    return LogConfiguration(LogDriver="awslogs", Options={
        "awslogs-group": param("AppLogGroupName"),
        "awslogs-region": Ref("AWS::Region"),
        "awslogs-stream-prefix": prefix,
        # A slow log endpoint must not stall the application; a bounded buffer drops lines instead.
        "mode": "non-blocking",
        "max-buffer-size": "25m",
    })


def app_container(cfg: EnvConfig) -> ContainerDefinition:
    port = cfg.ecs.container_port
    return ContainerDefinition(
        Name=APP,
        Image=Sub("${RepositoryUri}:${ImageTag}"),
        Essential=True,
        User=APP_USER,
        ReadonlyRootFilesystem=True,
        # The volumes are writable by the app only once the init container has handed them over.
        DependsOn=[ContainerDependency(ContainerName=VOLUMES_INIT, Condition="SUCCESS")],
        PortMappings=[PortMapping(Name="http", ContainerPort=port, Protocol="tcp")],
        HealthCheck=HealthCheck(
            Command=["CMD-SHELL", f"curl -fsS http://localhost:{port}{cfg.ecs.health_check_path} || exit 1"],
            Interval=30, Timeout=5, Retries=3,
            StartPeriod=min(cfg.ecs.health_check_grace_seconds, MAX_HEALTH_CHECK_START_PERIOD),
        ),
        # The only writable paths.
        MountPoints=[MountPoint(SourceVolume=name, ContainerPath=path, ReadOnly=False)
                     for name, (path, _) in APP_VOLUMES.items()],
        Environment=app_environment(cfg),
        Secrets=[Secret(Name="APP_SECRETS", ValueFrom=param("AppSecretArn"))],
        LogConfiguration=_logs(APP),
    )


def volumes_init_container() -> ContainerDefinition:
    """Runs to completion before the app starts: makes each app volume the app user's (chmod, then chown:
    after the chown root no longer owns it, and chmod would need the dropped FOWNER)."""
    commands = [f"chmod {mode} {path} && chown {APP_USER} {path}" for path, mode in APP_VOLUMES.values()]
    return ContainerDefinition(
        Name=VOLUMES_INIT,
        Image=INIT_IMAGE,
        Essential=False,  # it exits once done; the app waits for it to succeed
        User="0",  # chown needs root; it runs one command and exits
        ReadonlyRootFilesystem=True,
        EntryPoint=["sh", "-c"],
        Command=[" && ".join(commands)],
        MountPoints=[MountPoint(SourceVolume=name, ContainerPath=path, ReadOnly=False)
                     for name, (path, _) in APP_VOLUMES.items()],
        LinuxParameters=LinuxParameters(Capabilities=KernelCapabilities(Drop=DROPPED_CAPABILITIES)),
        Cpu=0,
        MemoryReservation=16,
        LogConfiguration=_logs("init"),
    )


def xray_container() -> ContainerDefinition:
    """The X-Ray daemon: the application sends segments to localhost:2000/udp; it forwards them to X-Ray."""
    return ContainerDefinition(
        Name=XRAY,
        Image=XRAY_DAEMON_IMAGE,
        Essential=False,  # losing traces must not stop the service
        User=XRAY_USER,
        ReadonlyRootFilesystem=True,
        Cpu=32,
        MemoryReservation=256,
        PortMappings=[PortMapping(ContainerPort=XRAY_PORT, Protocol="udp")],
        LogConfiguration=_logs("xray"),
    )


def task_definition(cfg: EnvConfig) -> TaskDefinition:
    return TaskDefinition(
        "TaskDefinition",
        Family=cfg.resource_name("task"),
        Cpu=str(cfg.ecs.cpu),
        Memory=str(cfg.ecs.memory),
        NetworkMode="awsvpc",
        RequiresCompatibilities=["FARGATE"],
        RuntimePlatform=RuntimePlatform(OperatingSystemFamily="LINUX", CpuArchitecture="X86_64"),
        ExecutionRoleArn=param("TaskExecutionRoleArn"),
        TaskRoleArn=param("TaskRoleArn"),
        ContainerDefinitions=[app_container(cfg), volumes_init_container(), xray_container()],
        Volumes=[Volume(Name=name) for name in APP_VOLUMES],
        Tags=tags(cfg, cfg.resource_name("task")),
    )


# Deployments (docs/progressive-delivery.md) ------------------------------------------------------------
# "Amazon ECS blue/green deployments", "Amazon ECS linear deployments", "Amazon ECS canary deployments" and
# "Required resources for Amazon ECS blue/green deployments" in the Amazon ECS Developer Guide
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-implementation.html);
# the property limits come from the AWS::ECS::Service resource schema cfn-lint ships.
STRATEGIES = {"rolling": "ROLLING", "blue_green": "BLUE_GREEN", "canary": "CANARY", "linear": "LINEAR"}


def deployment_alarms(cfg: EnvConfig) -> DeploymentAlarms:
    """ECS fails and rolls back the deployment when one of these goes to ALARM. The monitoring stack owns them
    and comes after this one (it watches this service), so they are named, not chained: on a first deploy
    they do not exist yet, and ECS only reads the state of the alarms it is given while a deployment runs."""
    return DeploymentAlarms(AlarmNames=deployment_alarm_names(cfg), Enable=True, Rollback=True)


def deployment_configuration(cfg: EnvConfig) -> DeploymentConfiguration:
    """The strategy and its parameters; rolling keeps the circuit breaker (ECS allows it for rolling only)."""
    deployment = cfg.deployment
    config = DeploymentConfiguration(Strategy=STRATEGIES[deployment.strategy], Alarms=deployment_alarms(cfg))
    if deployment.bake_minutes is not None:
        config.BakeTimeInMinutes = deployment.bake_minutes
    if deployment.strategy == "rolling":
        config.MinimumHealthyPercent, config.MaximumPercent = 100, 200
        config.DeploymentCircuitBreaker = DeploymentCircuitBreaker(Enable=True, Rollback=True)
    elif deployment.strategy == "canary":
        canary = deployment.canary_settings
        config.CanaryConfiguration = CanaryConfiguration(CanaryPercent=canary.percent,
                                                         CanaryBakeTimeInMinutes=canary.bake_minutes)
    elif deployment.strategy == "linear":
        linear = deployment.linear_settings
        config.LinearConfiguration = LinearConfiguration(StepPercent=linear.step_percent,
                                                         StepBakeTimeInMinutes=linear.step_bake_minutes)
    return config


def service_load_balancer(cfg: EnvConfig) -> LoadBalancer:
    """The service's target group; for blue/green, canary and linear also the alternate group, the listener
    rules ECS shifts traffic on, and the role it shifts them with (the iam stack's, scoped to these)."""
    target = LoadBalancer(ContainerName=APP, ContainerPort=cfg.ecs.container_port,
                          TargetGroupArn=param("TargetGroupArn"))
    if cfg.deployment.progressive:
        target.AdvancedConfiguration = AdvancedConfiguration(
            AlternateTargetGroupArn=param("AlternateTargetGroupArn"),
            ProductionListenerRule=param("ProductionListenerRuleArn"),
            TestListenerRule=param("TestListenerRuleArn"),
            RoleArn=param("EcsLoadBalancerRoleArn"),
        )
    return target


def service(cfg: EnvConfig) -> Service:
    return Service(
        "Service",
        ServiceName=cfg.resource_name("service"),
        Cluster=Ref("Cluster"),
        TaskDefinition=Ref("TaskDefinition"),
        # No DesiredCount: CloudFormation then creates the service with 1 task and leaves the count alone on
        # every update, so a release does not reset what auto scaling chose (as AWS CDK does). Registering
        # the scalable target raises the count to ecs.min at once.
        CapacityProviderStrategy=[CapacityProviderStrategyItem(CapacityProvider=name, Base=base, Weight=weight)
                                  for name, base, weight in capacity_strategy(cfg)],
        PlatformVersion="LATEST",
        NetworkConfiguration=NetworkConfiguration(AwsvpcConfiguration=AwsvpcConfiguration(
            AssignPublicIp="DISABLED",
            Subnets=param("PrivateSubnetIds"),
            SecurityGroups=[param("TaskSecurityGroupId")],
        )),
        LoadBalancers=[service_load_balancer(cfg)],
        HealthCheckGracePeriodSeconds=cfg.ecs.health_check_grace_seconds,
        DeploymentController=DeploymentController(Type="ECS"),  # ECS itself runs every strategy
        DeploymentConfiguration=deployment_configuration(cfg),
        EnableECSManagedTags=True,
        PropagateTags="SERVICE",
        Tags=tags(cfg, cfg.resource_name("service")),
        # The strategy names providers the cluster must already have.
        DependsOn="CapacityProviders",
    )


def scalable_target(cfg: EnvConfig) -> ScalableTarget:
    """Scaling bounds; Application Auto Scaling uses its service-linked role (no RoleARN). Registering a
    target moves the service's count inside MinCapacity..MaxCapacity (RegisterScalableTarget), so a new
    service goes from CloudFormation's 1 task to ecs.min right away."""
    return ScalableTarget(
        "ScalableTarget",
        ServiceNamespace="ecs",
        ScalableDimension="ecs:service:DesiredCount",
        ResourceId=Sub("service/${Cluster}/${Service.Name}"),
        MinCapacity=cfg.ecs.min,
        MaxCapacity=cfg.ecs.max,
        Tags=tags(cfg),
    )


def scaling_policy(title: str, metric: str, target: float) -> ScalingPolicy:
    return ScalingPolicy(
        title,
        PolicyName=title,
        PolicyType="TargetTrackingScaling",
        ScalingTargetId=Ref("ScalableTarget"),
        TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
            PredefinedMetricSpecification=PredefinedMetricSpecification(PredefinedMetricType=metric),
            TargetValue=target,
            ScaleOutCooldown=SCALE_OUT_COOLDOWN,
            ScaleInCooldown=SCALE_IN_COOLDOWN,
        ),
    )


class EcsBlueprint(Blueprint):
    key = "ecs"
    description = "Fargate cluster, task definition, service and auto scaling"
    guarded_by_rollback_trigger = True

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        found = {
            "PrivateSubnetIds": Input("network", "PrivateSubnetIds", SUBNET_IDS),
            "TaskSecurityGroupId": Input("network", "TaskSecurityGroupId", SECURITY_GROUP_ID),
            "AppSecretArn": Input("security", "AppSecretArn"),
            "RepositoryUri": Input("registry", "RepositoryUri"),
        }
        for table in cfg.dynamodb.tables:
            found[f"{table.name}TableName"] = Input("dynamodb", f"{table.name}TableName")
        found.update({
            "ClusterArn": Input("msk", "ClusterArn"),
            "PrimaryEndpointAddress": Input("elasticache", "PrimaryEndpointAddress"),
            "PrimaryEndpointPort": Input("elasticache", "PrimaryEndpointPort"),
            "ReplicationGroupId": Input("elasticache", "ReplicationGroupId"),
            "CacheUserId": Input("elasticache", "AppUserId"),
            "AppLogGroupName": Input("tracing", "AppLogGroupName"),
            "TaskExecutionRoleArn": Input("iam", "TaskExecutionRoleArn"),
            "TaskRoleArn": Input("iam", "TaskRoleArn"),
            "TargetGroupArn": Input("alb", "TargetGroupArn"),
        })
        if cfg.deployment.progressive:
            found.update({name: Input("alb", name) for name in
                          ("AlternateTargetGroupArn", "ProductionListenerRuleArn", "TestListenerRuleArn")})
            found["EcsLoadBalancerRoleArn"] = Input("iam", "EcsLoadBalancerRoleArn")
        return found

    def rollout(self, cfg: EnvConfig) -> dict:
        return {"cluster": cfg.resource_name("cluster"), "service": cfg.resource_name("service"),
                "strategy": cfg.deployment.strategy, "bake_time_minutes": cfg.deployment.bake_minutes}

    def args(self, cfg: EnvConfig) -> dict[str, Arg]:
        return {"ImageTag": Arg("image_tag", cfg.ecs.image_tag,
                                "Image tag to run: the build's git commit SHA (perfdeploy deploy ENV --image-tag TAG)")}

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(cluster(cfg))
        t.add_resource(capacity_providers(cfg))
        t.add_resource(task_definition(cfg))
        t.add_resource(service(cfg))
        t.add_resource(scalable_target(cfg))
        t.add_resource(scaling_policy("CpuScaling", "ECSServiceAverageCPUUtilization", CPU_TARGET))
        t.add_resource(scaling_policy("MemoryScaling", "ECSServiceAverageMemoryUtilization", MEMORY_TARGET))
        output(t, "ClusterName", Ref("Cluster"), "ECS cluster name")
        output(t, "ClusterArn", GetAtt("Cluster", "Arn"), "ECS cluster ARN")
        # The name the service is given, not Fn::GetAtt Service.Name: a release modifies the service (a new task
        # definition), and an attribute of a modified resource is unknown until the update ends, so every
        # release would plan monitoring, whose alarms name the service, as changing.
        output(t, "ServiceName", cfg.resource_name("service"), "ECS service name")
        output(t, "TaskDefinitionArn", Ref("TaskDefinition"), "Task definition ARN (with revision)")
        return t


BLUEPRINT = EcsBlueprint()
