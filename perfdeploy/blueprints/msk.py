"""msk: the Kafka cluster across the private subnets, its server configuration and its broker log group.

Clients authenticate with IAM over TLS only (port 9098); nothing travels in plaintext, between clients and
brokers or between brokers. CloudFormation has no topic resource and no bootstrap-broker attribute: the
application creates the topics the manifest lists and resolves the brokers from ClusterArn at run time
(docs/data-stacks.md says why).
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Template
from troposphere.logs import LogGroup
from troposphere.msk import (
    BrokerLogs,
    BrokerNodeGroupInfo,
    ClientAuthentication,
    CloudWatchLogs,
    Cluster,
    Configuration,
    ConfigurationInfo,
    EBSStorageInfo,
    EncryptionAtRest,
    EncryptionInfo,
    EncryptionInTransit,
    Iam,
    LoggingInfo,
    Sasl,
    StorageInfo,
    Unauthenticated,
)

from perfdeploy.blueprints.base import (
    SECURITY_GROUP_ID,
    SUBNET_IDS,
    Blueprint,
    Input,
    log_group,
    output,
    param,
    stateful,
    tag_map,
)
from perfdeploy.config import EnvConfig

MAX_REPLICATION_FACTOR = 3
MIN_IN_SYNC_REPLICAS = 2


def cluster_name(cfg: EnvConfig) -> str:
    return cfg.resource_name("kafka")


def replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas): 3 and 2 where there are 3+ brokers, so one broker can be
    down (an MSK rolling patch, an AZ outage) while producers with acks=all keep writing."""
    factor = min(MAX_REPLICATION_FACTOR, brokers)
    return factor, min(MIN_IN_SYNC_REPLICAS, factor - 1)


def server_properties(cfg: EnvConfig) -> str:
    """The brokers' server.properties: topics are created on purpose only, and durably."""
    factor, min_isr = replication(cfg.kafka.brokers)
    properties = {
        "auto.create.topics.enable": "false",  # a typo in a topic name must fail, not create a topic
        "default.replication.factor": factor,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": factor,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "unclean.leader.election.enable": "false",  # never elect a replica that lost acknowledged writes
        "log.retention.hours": cfg.kafka.retention_hours,
    }
    return "".join(f"{name}={value}\n" for name, value in properties.items())


def broker_log_group_name(cfg: EnvConfig) -> str:
    return f"/msk/{cluster_name(cfg)}/broker"


def broker_log_group(cfg: EnvConfig) -> LogGroup:
    return log_group(cfg, "BrokerLogGroup", broker_log_group_name(cfg))


def configuration(cfg: EnvConfig) -> Configuration:
    """Name and Kafka versions cannot change in place, so the version is part of the name: a version upgrade
    creates the next configuration beside the one in use. A change to the properties adds a revision."""
    version = cfg.kafka.version
    return Configuration(
        "KafkaConfiguration",
        Name=cfg.resource_name(f"kafka-{version.replace('.', '-')}"),
        Description=f"Broker settings of {cluster_name(cfg)} (Kafka {version})",
        KafkaVersionsList=[version],
        ServerProperties=server_properties(cfg),
    )


def cluster(cfg: EnvConfig) -> Cluster:
    kafka = cfg.kafka
    return stateful(Cluster(
        "KafkaCluster",
        ClusterName=cluster_name(cfg),
        KafkaVersion=kafka.version,
        NumberOfBrokerNodes=kafka.brokers,
        BrokerNodeGroupInfo=BrokerNodeGroupInfo(
            InstanceType=kafka.broker_type,
            ClientSubnets=param("PrivateSubnetIds"),  # one per AZ; MSK spreads the brokers evenly over them
            SecurityGroups=[param("KafkaSecurityGroupId")],
            StorageInfo=StorageInfo(EBSStorageInfo=EBSStorageInfo(VolumeSize=kafka.ebs_gib)),
            # No ConnectivityInfo: public access is off by default and cannot be turned on at creation.
        ),
        ConfigurationInfo=ConfigurationInfo(
            Arn=GetAtt("KafkaConfiguration", "Arn"),
            Revision=GetAtt("KafkaConfiguration", "LatestRevision.Revision"),
        ),
        EncryptionInfo=EncryptionInfo(
            EncryptionAtRest=EncryptionAtRest(DataVolumeKMSKeyId=param("DataKeyArn")),
            EncryptionInTransit=EncryptionInTransit(ClientBroker="TLS", InCluster=True),
        ),
        ClientAuthentication=ClientAuthentication(
            Sasl=Sasl(Iam=Iam(Enabled=True)),
            Unauthenticated=Unauthenticated(Enabled=False),
        ),
        EnhancedMonitoring=kafka.enhanced_monitoring,
        LoggingInfo=LoggingInfo(BrokerLogs=BrokerLogs(
            CloudWatchLogs=CloudWatchLogs(Enabled=True, LogGroup=Ref("BrokerLogGroup")),
        )),
        Tags=tag_map(cfg, cluster_name(cfg)),
    ), cfg)


class MskBlueprint(Blueprint):
    key = "msk"
    description = "MSK (Kafka) cluster: IAM auth over TLS, KMS at rest, server configuration, broker logs"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {
            "PrivateSubnetIds": Input("network", "PrivateSubnetIds", SUBNET_IDS),
            "KafkaSecurityGroupId": Input("network", "KafkaSecurityGroupId", SECURITY_GROUP_ID),
            "DataKeyArn": Input("security", "DataKeyArn"),
            "LogsKeyArn": Input("security", "LogsKeyArn"),
        }

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(broker_log_group(cfg))
        t.add_resource(configuration(cfg))
        t.add_resource(cluster(cfg))

        output(t, "ClusterArn", Ref("KafkaCluster"),
               "ARN of the MSK cluster (the application resolves bootstrap brokers from it at run time)")
        output(t, "ClusterName", cluster_name(cfg), "Name of the MSK cluster")
        output(t, "BrokerLogGroupName", Ref("BrokerLogGroup"), "Log group of the broker logs")
        return t


BLUEPRINT = MskBlueprint()
