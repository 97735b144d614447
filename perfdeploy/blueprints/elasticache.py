"""elasticache: the Redis replication group (cluster mode off) over the private subnets, its subnet and
parameter groups, and its slow-log group.

Encrypted at rest with the data key and in transit (TLS required), with the AUTH token read from the security
stack's secret by a dynamic reference, so the token never appears in a template, a parameter or an event.
With more than one node the group is multi-AZ with automatic failover; with one node (dev) it cannot be.
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Sub, Template
from troposphere.elasticache import (
    CloudWatchLogsDestinationDetails,
    DestinationDetails,
    LogDeliveryConfigurationRequest,
    ParameterGroup,
    ReplicationGroup,
    SubnetGroup,
)
from troposphere.logs import LogGroup

from perfdeploy.blueprints.base import (
    SECURITY_GROUP_ID,
    SUBNET_IDS,
    Blueprint,
    Input,
    log_group,
    output,
    param,
    stateful,
    tags,
)
from perfdeploy.config import EnvConfig

REDIS_PORT = 6379
SLOW_LOG_THRESHOLD_MICROSECONDS = 10_000  # commands slower than 10 ms reach the slow log
SLOW_LOG_MAX_LEN = 128


def group_id(cfg: EnvConfig) -> str:
    return cfg.resource_name("redis")


def major_version(cfg: EnvConfig) -> int:
    return int(cfg.redis.version.split(".")[0])


def parameter_family(cfg: EnvConfig) -> str:
    """ElastiCache's parameter group family for the engine version: redis7 for 7.x, redis6.x for 6.x."""
    major = major_version(cfg)
    return f"redis{major}" if major >= 7 else f"redis{major}.x"


def auth_token() -> Sub:
    """A dynamic reference CloudFormation resolves at deploy time; the secret's value is never in the template."""
    return Sub("{{resolve:secretsmanager:${RedisAuthSecretArn}:SecretString}}")


def subnet_group(cfg: EnvConfig) -> SubnetGroup:
    return SubnetGroup(
        "RedisSubnetGroup",
        CacheSubnetGroupName=cfg.resource_name("redis-subnets"),
        Description=f"Private subnets of {group_id(cfg)}",
        SubnetIds=param("PrivateSubnetIds"),
        Tags=tags(cfg, cfg.resource_name("redis-subnets")),
    )


def parameter_group(cfg: EnvConfig) -> ParameterGroup:
    """No name on purpose: a new engine family replaces the group, and a generated name lets old and new
    exist side by side during the update."""
    return ParameterGroup(
        "RedisParameterGroup",
        CacheParameterGroupFamily=parameter_family(cfg),
        Description=f"Parameters of {group_id(cfg)} (Redis {cfg.redis.version})",
        Properties={
            "slowlog-log-slower-than": str(SLOW_LOG_THRESHOLD_MICROSECONDS),
            "slowlog-max-len": str(SLOW_LOG_MAX_LEN),
        },
        Tags=tags(cfg, cfg.resource_name("redis-params")),
    )


def slow_log_group(cfg: EnvConfig) -> LogGroup:
    return log_group(cfg, "SlowLogGroup", f"/elasticache/{group_id(cfg)}/slow-log")


def replication_group(cfg: EnvConfig) -> ReplicationGroup:
    redis = cfg.redis
    replicated = redis.nodes > 1
    group = ReplicationGroup(
        "RedisReplicationGroup",
        ReplicationGroupId=group_id(cfg),
        ReplicationGroupDescription=f"Redis of {cfg.service} in {cfg.env}",
        Engine="redis",
        EngineVersion=redis.version,
        CacheNodeType=redis.node_type,
        NumCacheClusters=redis.nodes,
        AutomaticFailoverEnabled=replicated,
        MultiAZEnabled=replicated,
        Port=REDIS_PORT,
        CacheSubnetGroupName=Ref("RedisSubnetGroup"),
        CacheParameterGroupName=Ref("RedisParameterGroup"),
        SecurityGroupIds=[param("RedisSecurityGroupId")],
        AtRestEncryptionEnabled=True,
        KmsKeyId=param("DataKeyArn"),
        TransitEncryptionEnabled=True,
        AuthToken=auth_token(),
        AutoMinorVersionUpgrade=True,
        PreferredMaintenanceWindow=redis.maintenance_window,
        SnapshotRetentionLimit=redis.snapshot_retention_days,
        LogDeliveryConfigurations=[LogDeliveryConfigurationRequest(
            LogType="slow-log",
            LogFormat="json",
            DestinationType="cloudwatch-logs",
            DestinationDetails=DestinationDetails(
                CloudWatchLogsDetails=CloudWatchLogsDestinationDetails(LogGroup=Ref("SlowLogGroup"))),
        )],
        Tags=tags(cfg, group_id(cfg)),
    )
    if major_version(cfg) >= 7:
        group.TransitEncryptionMode = "required"  # Redis 7+ can also run "preferred"; we never accept plaintext
    if redis.snapshot_retention_days:
        group.SnapshotWindow = redis.snapshot_window
    return stateful(group, cfg)


class ElastiCacheBlueprint(Blueprint):
    key = "elasticache"
    description = "Redis replication group: TLS + AUTH, KMS at rest, failover where >1 node, snapshots, slow log"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {
            "PrivateSubnetIds": Input("network", "PrivateSubnetIds", SUBNET_IDS),
            "RedisSecurityGroupId": Input("network", "RedisSecurityGroupId", SECURITY_GROUP_ID),
            "DataKeyArn": Input("security", "DataKeyArn"),
            "LogsKeyArn": Input("security", "LogsKeyArn"),
            "RedisAuthSecretArn": Input("security", "RedisAuthSecretArn"),
        }

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(subnet_group(cfg))
        t.add_resource(parameter_group(cfg))
        t.add_resource(slow_log_group(cfg))
        t.add_resource(replication_group(cfg))

        output(t, "ReplicationGroupId", Ref("RedisReplicationGroup"), "Id of the Redis replication group")
        for endpoint, attribute in (("Primary", "PrimaryEndPoint"), ("Reader", "ReaderEndPoint")):
            output(t, f"{endpoint}EndpointAddress", GetAtt("RedisReplicationGroup", f"{attribute}.Address"),
                   f"{endpoint} endpoint host name (TLS)")
            output(t, f"{endpoint}EndpointPort", GetAtt("RedisReplicationGroup", f"{attribute}.Port"),
                   f"{endpoint} endpoint port")
        output(t, "SlowLogGroupName", Ref("SlowLogGroup"), "Log group of the Redis slow log")
        return t


BLUEPRINT = ElastiCacheBlueprint()
