"""elasticache: the Valkey (or Redis OSS) replication group (cluster mode off) over the private subnets, its
subnet and parameter groups, its users, and its slow-log group.

Encrypted at rest with the data key and in transit (TLS required). Clients authenticate with IAM: the
application signs a short-lived token with its task role for the user ``{env}-performance-mgmt-app``, so no
static password exists to leak or rotate. The built-in ``default`` user is replaced by one that is switched
off. With more than one node the group is multi-AZ with automatic failover; with one node (dev) it cannot be.
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Template
from troposphere.elasticache import (
    AuthenticationMode,
    CloudWatchLogsDestinationDetails,
    DestinationDetails,
    LogDeliveryConfigurationRequest,
    ParameterGroup,
    ReplicationGroup,
    SubnetGroup,
    User,
    UserGroup,
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
# Everything but the commands ElastiCache calls dangerous, plus INFO (health checks such as Spring Boot's read it).
APP_ACCESS = "on ~* +@all -@dangerous +info"
DISABLED_ACCESS = "off -@all"


def group_id(cfg: EnvConfig) -> str:
    return cfg.resource_name("redis")


def major_version(cfg: EnvConfig) -> int:
    return int(cfg.redis.version.split(".")[0])


def parameter_family(cfg: EnvConfig) -> str:
    """ElastiCache's parameter group family: valkey8 for Valkey 8.x, redis7 for Redis OSS 7.x."""
    return f"{cfg.redis.engine}{major_version(cfg)}"


def app_user_id(cfg: EnvConfig) -> str:
    """The application's user: for IAM authentication its id and name must be the same, in lower case."""
    return cfg.resource_name("app")


def users(cfg: EnvConfig) -> list:
    """The application's IAM user, a switched-off ``default`` user (ElastiCache's own default user has no
    password and full access), and the user group the replication group admits."""
    engine = cfg.redis.engine
    app = User("AppUser", UserId=app_user_id(cfg), UserName=app_user_id(cfg), Engine=engine,
               AccessString=APP_ACCESS, AuthenticationMode=AuthenticationMode(Type="iam"), Tags=tags(cfg))
    default = User("DisabledDefaultUser", UserId=cfg.resource_name("default"), UserName="default", Engine=engine,
                   AccessString=DISABLED_ACCESS, AuthenticationMode=AuthenticationMode(Type="no-password-required"),
                   Tags=tags(cfg))
    group = UserGroup("UserGroup", UserGroupId=cfg.resource_name("cache-users"), Engine=engine,
                      UserIds=[Ref("DisabledDefaultUser"), Ref("AppUser")], Tags=tags(cfg))
    return [app, default, group]


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
        Description=f"Parameters of {group_id(cfg)} ({cfg.redis.engine} {cfg.redis.version})",
        Properties={
            "slowlog-log-slower-than": str(SLOW_LOG_THRESHOLD_MICROSECONDS),
            "slowlog-max-len": str(SLOW_LOG_MAX_LEN),
        },
        Tags=tags(cfg, cfg.resource_name("redis-params")),
    )


def slow_log_group_name(cfg: EnvConfig) -> str:
    return f"/elasticache/{group_id(cfg)}/slow-log"


def slow_log_group(cfg: EnvConfig) -> LogGroup:
    return log_group(cfg, "SlowLogGroup", slow_log_group_name(cfg))


def replication_group(cfg: EnvConfig) -> ReplicationGroup:
    redis = cfg.redis
    replicated = redis.nodes > 1
    group = ReplicationGroup(
        "RedisReplicationGroup",
        ReplicationGroupId=group_id(cfg),
        ReplicationGroupDescription=f"{cfg.redis.engine} cache of {cfg.service} in {cfg.env}",
        Engine=cfg.redis.engine,
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
        TransitEncryptionMode="required",  # never plaintext ("preferred" would accept it)
        UserGroupIds=[Ref("UserGroup")],
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
    if redis.snapshot_retention_days:
        group.SnapshotWindow = redis.snapshot_window
    return stateful(group, cfg)


class ElastiCacheBlueprint(Blueprint):
    key = "elasticache"
    description = "Valkey/Redis replication group: TLS, IAM auth, KMS at rest, failover where >1 node, snapshots"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {
            "PrivateSubnetIds": Input("network", "PrivateSubnetIds", SUBNET_IDS),
            "RedisSecurityGroupId": Input("network", "RedisSecurityGroupId", SECURITY_GROUP_ID),
            "DataKeyArn": Input("security", "DataKeyArn"),
            "LogsKeyArn": Input("security", "LogsKeyArn"),
        }

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(subnet_group(cfg))
        t.add_resource(parameter_group(cfg))
        t.add_resource(slow_log_group(cfg))
        for resource in users(cfg):
            t.add_resource(resource)
        t.add_resource(replication_group(cfg))

        output(t, "ReplicationGroupId", Ref("RedisReplicationGroup"), "Id of the replication group")
        output(t, "AppUserId", Ref("AppUser"), "The application's cache user (IAM authentication)")
        output(t, "AppUserArn", GetAtt("AppUser", "Arn"), "ARN of the application's cache user")
        for endpoint, attribute in (("Primary", "PrimaryEndPoint"), ("Reader", "ReaderEndPoint")):
            output(t, f"{endpoint}EndpointAddress", GetAtt("RedisReplicationGroup", f"{attribute}.Address"),
                   f"{endpoint} endpoint host name (TLS)")
            output(t, f"{endpoint}EndpointPort", GetAtt("RedisReplicationGroup", f"{attribute}.Port"),
                   f"{endpoint} endpoint port")
        output(t, "SlowLogGroupName", Ref("SlowLogGroup"), "Log group of the Redis slow log")
        return t


BLUEPRINT = ElastiCacheBlueprint()
