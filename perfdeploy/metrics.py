"""The one catalogue of CloudWatch metric names (and dimension names) the stacks may use, per namespace.

CloudWatch accepts an alarm on any metric name, spelt right or not: a typo is an alarm that never fires.
Every metric an alarm or a dashboard reads goes through ``metric()`` (and every dimension through
``dimension()``), so a misspelt name fails when the template is built, that is in the tests, not in an
outage. Each namespace names the AWS documentation page its list was taken from; extend a list only from
that page.

The service's own namespace, ``PerformanceMgmt/<env>``, holds the metrics the tracing stack's metric filters
publish from the application's JSON logs.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

APP_NAMESPACE_PREFIX = "PerformanceMgmt"


@dataclass(frozen=True)
class Namespace:
    name: str
    source: str  # the AWS documentation page the names come from
    metrics: frozenset[str]
    dimensions: frozenset[str]


class UnknownMetric(ValueError):
    """A metric, dimension or namespace that is not in the catalogue (most likely a typo)."""


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


NAMESPACES: dict[str, Namespace] = {ns.name: ns for ns in (
    Namespace(
        "AWS/ApplicationELB",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html",
        _names("""
            ActiveConnectionCount ClientTLSNegotiationErrorCount ConsumedLCUs HTTP_Fixed_Response_Count
            HTTP_Redirect_Count HTTP_Redirect_Url_Limit_Exceeded_Count HTTPCode_ELB_3XX_Count HTTPCode_ELB_4XX_Count
            HTTPCode_ELB_5XX_Count HTTPCode_ELB_500_Count HTTPCode_ELB_502_Count HTTPCode_ELB_503_Count
            HTTPCode_ELB_504_Count HTTPCode_Target_2XX_Count HTTPCode_Target_3XX_Count HTTPCode_Target_4XX_Count
            HTTPCode_Target_5XX_Count HealthyHostCount NewConnectionCount ProcessedBytes RejectedConnectionCount
            RequestCount RequestCountPerTarget RuleEvaluations TargetConnectionErrorCount TargetResponseTime
            TargetTLSNegotiationErrorCount UnHealthyHostCount
        """),
        _names("LoadBalancer TargetGroup AvailabilityZone"),
    ),
    Namespace(
        "AWS/ECS",
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html",
        _names("CPUReservation CPUUtilization MemoryReservation MemoryUtilization GPUReservation"),
        _names("ClusterName ServiceName"),
    ),
    Namespace(
        "ECS/ContainerInsights",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-ECS.html",
        _names("""
            ContainerInstanceCount CpuReserved CpuUtilized DeploymentCount DesiredTaskCount
            EphemeralStorageReserved EphemeralStorageUtilized MemoryReserved MemoryUtilized NetworkRxBytes
            NetworkTxBytes PendingTaskCount RunningTaskCount ServiceCount StorageReadBytes StorageWriteBytes
            TaskCount TaskSetCount
        """),
        _names("ClusterName ServiceName TaskDefinitionFamily"),
    ),
    Namespace(
        "AWS/DynamoDB",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html",
        _names("""
            AccountMaxReads AccountMaxTableLevelReads AccountMaxTableLevelWrites AccountMaxWrites
            AccountProvisionedReadCapacityUtilization AccountProvisionedWriteCapacityUtilization
            AgeOfOldestUnreplicatedRecord ConditionalCheckFailedRequests ConsumedChangeDataCaptureUnits
            ConsumedReadCapacityUnits ConsumedWriteCapacityUnits FailedToReplicateRecordCount
            MaxProvisionedTableReadCapacityUtilization MaxProvisionedTableWriteCapacityUtilization
            OnlineIndexConsumedWriteCapacity OnlineIndexPercentageProgress OnlineIndexThrottleEvents
            PendingReplicationCount ProvisionedReadCapacityUnits ProvisionedWriteCapacityUnits ReadThrottleEvents
            ReplicationLatency ReturnedBytes ReturnedItemCount ReturnedRecordsCount SuccessfulRequestLatency
            SystemErrors ThrottledPutRecordCount ThrottledRequests TimeToLiveDeletedItemCount TransactionConflict
            UserErrors WriteThrottleEvents
        """),
        _names("TableName Operation GlobalSecondaryIndexName OperationType ReceivingRegion StreamLabel"),
    ),
    Namespace(
        "AWS/Kafka",
        "https://docs.aws.amazon.com/msk/latest/developerguide/metrics-details.html",
        _names("""
            ActiveControllerCount BurstBalance BytesInPerSec BytesOutPerSec ClientConnectionCount ConnectionCount
            CPUCreditBalance CpuIdle CpuIoWait CpuSystem CpuUser EstimatedMaxTimeLag GlobalPartitionCount
            GlobalTopicCount HeapMemoryAfterGC KafkaAppLogsDiskUsed KafkaDataLogsDiskUsed LeaderCount
            MaxOffsetLag MemoryBuffered MemoryCached MemoryFree MemoryUsed MessagesInPerSec NetworkRxDropped
            NetworkRxErrors NetworkRxPackets NetworkTxDropped NetworkTxErrors NetworkTxPackets
            OfflinePartitionsCount PartitionCount ProduceTotalTimeMsMean RequestBytesMean RequestTime RootDiskUsed
            SumOffsetLag SwapFree SwapUsed TrafficShaping UnderMinIsrPartitionCount UnderReplicatedPartitions
            ZooKeeperRequestLatencyMsMean ZooKeeperSessionState
        """),
        frozenset({"Cluster Name", "Broker ID", "Topic", "Consumer Group", "Partition", "Client Authentication"}),
    ),
    Namespace(
        "AWS/ElastiCache",
        # Engine metrics; the host-level ones (CPUUtilization, FreeableMemory, Network*, SwapUsage) are on
        # https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.HostLevel.html
        "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.Redis.html",
        _names("""
            ActiveDefragHits AuthenticationFailures BytesUsedForCache CacheHitRate CacheHits CacheMisses
            CommandAuthorizationFailures CPUUtilization CurrConnections CurrItems DatabaseMemoryUsagePercentage
            DB0AverageTTL EngineCPUUtilization Evictions FreeableMemory GetTypeCmds GetTypeCmdsLatency IsMaster
            KeyBasedCmds MasterLinkHealthStatus MemoryFragmentationRatio NetworkBytesIn NetworkBytesOut
            NetworkPacketsIn NetworkPacketsOut NewConnections Reclaimed ReplicationBytes ReplicationLag
            SaveInProgress SetTypeCmds SetTypeCmdsLatency StringBasedCmds SuccessfulReadRequestLatency
            SuccessfulWriteRequestLatency SwapUsage
        """),
        _names("CacheClusterId CacheNodeId"),
    ),
    Namespace(
        "AWS/NATGateway",
        "https://docs.aws.amazon.com/vpc/latest/userguide/metrics-dimensions-nat-gateway.html",
        _names("""
            ActiveConnectionCount BytesInFromDestination BytesInFromSource BytesOutToDestination BytesOutToSource
            ConnectionAttemptCount ConnectionEstablishedCount ErrorPortAllocation IdleTimeoutCount PacketsDropCount
            PacketsInFromDestination PacketsInFromSource PacketsOutToDestination PacketsOutToSource
        """),
        _names("NatGatewayId"),
    ),
    # Published by the tracing stack's metric filters on the application's JSON logs (no dimensions: a
    # metric filter with dimensions cannot publish the zero default the error-rate math relies on).
    Namespace(
        f"{APP_NAMESPACE_PREFIX}/<env>",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/MonitoringLogData.html",
        _names("Requests Errors ServerErrors RequestLatency"),
        frozenset(),
    ),
)}


def app_namespace(env: str) -> str:
    """The namespace of the service's own metrics in one environment."""
    return f"{APP_NAMESPACE_PREFIX}/{env}"


def namespace(name: str) -> Namespace:
    """The catalogue entry of a namespace (``PerformanceMgmt/<any env>`` maps to the service's own)."""
    if name.startswith(f"{APP_NAMESPACE_PREFIX}/"):
        return NAMESPACES[f"{APP_NAMESPACE_PREFIX}/<env>"]
    if name not in NAMESPACES:
        raise UnknownMetric(f"unknown CloudWatch namespace {name!r}{_near(name, list(NAMESPACES))}; "
                            "add it to perfdeploy/metrics.py with its AWS documentation page")
    return NAMESPACES[name]


def metric(namespace_name: str, name: str) -> str:
    """Return ``name`` if it is a metric of the namespace; raise UnknownMetric (with a suggestion) if not."""
    entry = namespace(namespace_name)
    if name not in entry.metrics:
        raise UnknownMetric(f"{name!r} is not a metric of {namespace_name}{_near(name, sorted(entry.metrics))} "
                            f"(catalogue: perfdeploy/metrics.py, source: {entry.source})")
    return name


def dimension(namespace_name: str, name: str) -> str:
    """Return ``name`` if it is a dimension of the namespace; raise UnknownMetric if not."""
    entry = namespace(namespace_name)
    if name not in entry.dimensions:
        raise UnknownMetric(f"{name!r} is not a dimension of {namespace_name}"
                            f"{_near(name, sorted(entry.dimensions))} (source: {entry.source})")
    return name


def _near(word: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""
