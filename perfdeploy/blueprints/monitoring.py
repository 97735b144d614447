"""monitoring: the alarm topics, an alarm for every component, the composite "service unhealthy" alarm the
deploy engine uses as a rollback trigger, and the service-overview and data-tier dashboards.

Every alarm is routed to one of two topics: ``critical`` (users are, or are about to be, affected: page) and
``warning`` (look at it during working hours). One incident pages once: the children of the composite
"service unhealthy" alarm notify the warning topic only, and the composite pages. OK notifications go only
where someone needs them: to the critical topic, whose pager resolves the incident on OK; a warning's
return to OK tells nobody anything, and would make the first deploy send one mail per alarm.
Thresholds come from ``monitoring.thresholds`` in the config; how long a condition must hold (the window)
and how missing data counts are chosen per alarm below, each with its reason. Alarm names are
``{env}-performance-mgmt-{component}-{what}``; docs/monitoring.md lists them.

Every metric and dimension name goes through perfdeploy.metrics, so a typo fails at build time. Dimension
values are written once as ``${Parameter}`` strings: alarms turn them into Ref/Sub, dashboards keep them in
the Fn::Sub of their JSON body.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from awacs import sns as sns_actions
from awacs.aws import Allow, Bool, Condition, Deny, PolicyDocument, Principal, Statement, StringEquals
from troposphere import AccountId, GetAtt, Ref, Select, Split, Sub, Template
from troposphere.cloudwatch import Alarm, CompositeAlarm, Dashboard, MetricDataQuery, MetricDimension, MetricStat
from troposphere.cloudwatch import Metric as MetricProperty
from troposphere.sns import SubscriptionResource, Topic, TopicPolicy

from perfdeploy import metrics
from perfdeploy.blueprints.base import Blueprint, Input, output, param, tags
from perfdeploy.config import EnvConfig

CRITICAL, WARNING = "critical", "warning"
TOPICS = {CRITICAL: "CriticalTopic", WARNING: "WarningTopic"}

# How missing data counts, named by the reason it is right for the metric.
EVENTS_ONLY = "notBreaching"   # published only when the event happens (5xx, throttles): silence is health
NO_TRAFFIC = "notBreaching"    # latency and error rate exist only with requests: no request failed or was slow
REPLICA_ONLY = "notBreaching"  # only replicas publish ReplicationLag; the primary (which may change) does not
GAUGE = "missing"              # reported every minute while the resource lives: a gap shows as INSUFFICIENT_DATA
MUST_REPORT = "breaching"      # task counts come every minute for a live service: silence is itself an outage


@dataclass(frozen=True)
class Window:
    """``datapoints`` of the last ``periods`` periods of ``seconds`` must breach."""

    seconds: int
    periods: int
    datapoints: int


QUICK = Window(60, 5, 3)          # user-facing failure: fast enough for a rollback trigger, deaf to one bad minute
SATURATED = Window(60, 5, 5)      # five minutes on end: past what auto scaling absorbs
SUSTAINED = Window(300, 3, 3)     # fifteen minutes: a trend worth a look, not a blip
PER_5_MIN = Window(300, 1, 1)     # a count over five minutes
IMMEDIATE = Window(60, 1, 1)      # any minute: the condition is never normal
TASKS = Window(60, 10, 8)         # 8 of 10 minutes: rolling deploys and task replacement take a few minutes

# DynamoDB publishes SystemErrors per operation only; these are the ones the service calls (an alarm on
# metric math may read at most 10 metrics).
DYNAMODB_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                       "BatchWriteItem", "TransactGetItems", "TransactWriteItems")

PLACEHOLDER = re.compile(r"\$\{([^}!]+)\}")


# The composite alarm: what "the service is unhealthy" means to a rollback, and to the pager. Its children
# notify the warning topic only, so one incident pages once.
SERVICE_UNHEALTHY_CHILDREN = ("AlbElb5xxAlarm", "AlbTarget5xxAlarm", "AlbLatencyCriticalAlarm", "EcsRunningTasksAlarm")


# Metrics -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Watched:
    """One CloudWatch metric, its name and dimension names checked against the catalogue."""

    namespace: str                           # as CloudWatch names it, or "${MetricNamespace}"
    name: str
    dimensions: tuple[tuple[str, str], ...]  # (name, value with ${...} placeholders)


def watched(namespace: str, name: str, dimensions: dict[str, str] | None = None, *, env: str = "") -> Watched:
    catalogue = metrics.app_namespace(env) if namespace == "${MetricNamespace}" else namespace
    metrics.metric(catalogue, name)
    for dim in dimensions or {}:
        metrics.dimension(catalogue, dim)
    return Watched(namespace, name, tuple((dimensions or {}).items()))


def variables(cfg: EnvConfig) -> dict[str, object]:
    """Values a ``${...}`` placeholder may name beyond the parameters: one per NAT gateway id."""
    return {f"NatGateway{i + 1}": Select(i, Split(",", Ref("NatGatewayIds"))) for i in range(cfg.network.nat_gateways)}


def cfn_value(text: str, cfg: EnvConfig) -> object:
    """A ``${...}`` string as a template value: a literal, a Ref, a variable's function, or a Sub."""
    names = PLACEHOLDER.findall(text)
    if not names:
        return text
    known = variables(cfg)
    if text == f"${{{names[0]}}}":
        return known.get(names[0], Ref(names[0]))
    used = {n: known[n] for n in names if n in known}
    return Sub(text, used) if used else Sub(text)


def table_slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def alb_metric(name: str, with_target_group: bool = False) -> Watched:
    dims = {"LoadBalancer": "${LoadBalancerFullName}"}
    if with_target_group:
        dims["TargetGroup"] = "${TargetGroupFullName}"
    return watched("AWS/ApplicationELB", name, dims)


def ecs_metric(namespace: str, name: str) -> Watched:
    return watched(namespace, name, {"ClusterName": "${EcsClusterName}", "ServiceName": "${EcsServiceName}"})


def app_metric(cfg: EnvConfig, name: str) -> Watched:
    return watched("${MetricNamespace}", name, env=cfg.env)


def kafka_metric(name: str, broker: int | None = None) -> Watched:
    dims = {"Cluster Name": "${KafkaClusterName}"}
    if broker is not None:
        dims["Broker ID"] = str(broker)
    return watched("AWS/Kafka", name, dims)


def redis_metric(name: str, node: int) -> Watched:
    return watched("AWS/ElastiCache", name, {"CacheClusterId": f"${{ReplicationGroupId}}-{node:03d}"})


def dynamodb_metric(table: str, name: str, operation: str | None = None) -> Watched:
    dims = {"TableName": f"${{{table}TableName}}"}
    if operation:
        dims["Operation"] = operation
    return watched("AWS/DynamoDB", name, dims)


def nat_metric(name: str, index: int) -> Watched:
    return watched("AWS/NATGateway", name, {"NatGatewayId": f"${{NatGateway{index}}}"})


# Alarms ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """When an alarm fires and whom it tells."""

    severity: str
    threshold: float
    comparison: str  # ">" or ">="
    window: Window
    missing: str

    @property
    def operator(self) -> str:
        return {">": "GreaterThanThreshold", ">=": "GreaterThanOrEqualToThreshold"}[self.comparison]


def _alarm(cfg: EnvConfig, lid: str, what: str, description: str, rule: Rule, **metric_props) -> Alarm:
    topic = [Ref(TOPICS[rule.severity])]
    if lid in SERVICE_UNHEALTHY_CHILDREN:
        description += " (pages through the composite service-unhealthy alarm)"
    alarm = Alarm(
        lid,
        AlarmName=cfg.resource_name(what),
        AlarmDescription=f"[{rule.severity}] {description}",
        ComparisonOperator=rule.operator,
        Threshold=rule.threshold,
        EvaluationPeriods=rule.window.periods,
        DatapointsToAlarm=rule.window.datapoints,
        TreatMissingData=rule.missing,
        AlarmActions=topic,
        Tags=tags(cfg),
        **metric_props,
    )
    if rule.severity == CRITICAL:
        alarm.OKActions = topic  # the pager resolves its incident on OK
    return alarm


def metric_alarm(cfg: EnvConfig, lid: str, what: str, description: str, metric: Watched, stat: str,
                 rule: Rule) -> Alarm:
    """An alarm on one metric; ``stat`` is a statistic or a percentile such as p99."""
    statistic = {"ExtendedStatistic": stat} if stat.startswith("p") else {"Statistic": stat}
    return _alarm(cfg, lid, what, description, rule,
                  Namespace=cfn_value(metric.namespace, cfg),
                  MetricName=metric.name,
                  Dimensions=[MetricDimension(Name=n, Value=cfn_value(v, cfg)) for n, v in metric.dimensions],
                  Period=rule.window.seconds,
                  **statistic)


def math_alarm(cfg: EnvConfig, lid: str, what: str, description: str, expression: str, label: str,
               inputs: dict[str, tuple[Watched, str]], rule: Rule) -> Alarm:
    """An alarm on a metric-math expression over ``inputs`` (id -> (metric, statistic))."""
    queries = [MetricDataQuery(
        Id=qid,
        MetricStat=MetricStat(
            Metric=MetricProperty(
                Namespace=cfn_value(m.namespace, cfg),
                MetricName=m.name,
                Dimensions=[MetricDimension(Name=n, Value=cfn_value(v, cfg)) for n, v in m.dimensions],
            ),
            Period=rule.window.seconds,
            Stat=stat,
        ),
        ReturnData=False,
    ) for qid, (m, stat) in inputs.items()]
    queries.append(MetricDataQuery(Id="result", Expression=expression, Label=label, ReturnData=True))
    return _alarm(cfg, lid, what, description, rule, Metrics=queries)


def dynamodb_alarms(cfg: EnvConfig) -> list[Alarm]:
    t = cfg.monitoring.thresholds
    throttles = Rule(WARNING, t.dynamodb_throttles, ">=", PER_5_MIN, EVENTS_ONLY)
    # FILL: an operation the service did not call in a period reads 0, so the sum always has a value.
    errors = Rule(WARNING, t.dynamodb_system_errors, ">=", PER_5_MIN, EVENTS_ONLY)
    alarms = []
    for table in cfg.dynamodb.tables:
        slug = table_slug(table.name)
        for kind in ("Read", "Write"):
            alarms.append(metric_alarm(
                cfg, f"DynamoDb{table.name}{kind}ThrottlesAlarm", f"dynamodb-{slug}-{kind.lower()}-throttles",
                f"{table.name}: {kind.lower()} requests throttled (on-demand tables throttle on sudden peaks "
                "or hot partitions)",
                dynamodb_metric(table.name, f"{kind}ThrottleEvents"), "Sum", throttles))
        alarms.append(math_alarm(
            cfg, f"DynamoDb{table.name}SystemErrorsAlarm", f"dynamodb-{slug}-system-errors",
            f"{table.name}: DynamoDB answered with internal errors (HTTP 500)",
            "SUM(FILL(METRICS(), 0))", "SystemErrors",
            {f"op{i}": (dynamodb_metric(table.name, "SystemErrors", op), "Sum")
             for i, op in enumerate(DYNAMODB_OPERATIONS)},
            errors))
    return alarms


def kafka_alarms(cfg: EnvConfig) -> list[Alarm]:
    t = cfg.monitoring.thresholds
    alarms = []
    for b in range(1, cfg.kafka.brokers + 1):
        alarms += [
            math_alarm(cfg, f"KafkaBroker{b}CpuAlarm", f"kafka-broker-{b}-cpu",
                       f"Kafka broker {b}: CPU (user + system) above {t.kafka_cpu_percent}% for 15 minutes",
                       "user + system", "CpuUser + CpuSystem",
                       {"user": (kafka_metric("CpuUser", b), "Average"),
                        "system": (kafka_metric("CpuSystem", b), "Average")},
                       Rule(WARNING, t.kafka_cpu_percent, ">", SUSTAINED, GAUGE)),
            metric_alarm(cfg, f"KafkaBroker{b}DiskAlarm", f"kafka-broker-{b}-disk",
                         f"Kafka broker {b}: data-log disk above {t.kafka_disk_percent}% (a full disk stops "
                         "the broker)",
                         kafka_metric("KafkaDataLogsDiskUsed", b), "Maximum",
                         Rule(CRITICAL, t.kafka_disk_percent, ">", SUSTAINED, GAUGE)),
            metric_alarm(cfg, f"KafkaBroker{b}HeapAlarm", f"kafka-broker-{b}-heap",
                         f"Kafka broker {b}: JVM heap in use after GC above {t.kafka_heap_percent}%",
                         kafka_metric("HeapMemoryAfterGC", b), "Maximum",
                         Rule(WARNING, t.kafka_heap_percent, ">", SUSTAINED, GAUGE)),
            metric_alarm(cfg, f"KafkaBroker{b}UnderReplicatedAlarm", f"kafka-broker-{b}-under-replicated",
                         f"Kafka broker {b}: partitions under-replicated for 15 minutes (brief during patching)",
                         kafka_metric("UnderReplicatedPartitions", b), "Maximum",
                         Rule(WARNING, t.kafka_under_replicated_partitions, ">=", SUSTAINED, GAUGE)),
        ]
    alarms.append(metric_alarm(
        cfg, "KafkaOfflinePartitionsAlarm", "kafka-offline-partitions",
        "Kafka: partitions without a leader: producers and consumers of them fail",
        kafka_metric("OfflinePartitionsCount"), "Maximum",
        Rule(CRITICAL, t.kafka_offline_partitions, ">=", IMMEDIATE, GAUGE)))
    return alarms


def redis_alarms(cfg: EnvConfig) -> list[Alarm]:
    """Per node: ElastiCache publishes engine metrics per member cluster ``<ReplicationGroupId>-00N``."""
    t = cfg.monitoring.thresholds
    alarms = []
    for n in range(1, cfg.redis.nodes + 1):
        node = f"{n:03d}"
        alarms += [
            metric_alarm(cfg, f"Redis{node}EngineCpuAlarm", f"redis-{node}-engine-cpu",
                         f"Redis node {node}: engine thread CPU above {t.redis_cpu_percent}% for 15 minutes",
                         redis_metric("EngineCPUUtilization", n), "Average",
                         Rule(WARNING, t.redis_cpu_percent, ">", SUSTAINED, GAUGE)),
            metric_alarm(cfg, f"Redis{node}MemoryAlarm", f"redis-{node}-memory",
                         f"Redis node {node}: memory in use above {t.redis_memory_percent}% (evictions follow)",
                         redis_metric("DatabaseMemoryUsagePercentage", n), "Average",
                         Rule(WARNING, t.redis_memory_percent, ">", SUSTAINED, GAUGE)),
            metric_alarm(cfg, f"Redis{node}EvictionsAlarm", f"redis-{node}-evictions",
                         f"Redis node {node}: keys evicted for lack of memory",
                         redis_metric("Evictions", n), "Sum",
                         Rule(WARNING, t.redis_evictions, ">=", PER_5_MIN, GAUGE)),
            metric_alarm(cfg, f"Redis{node}ConnectionsAlarm", f"redis-{node}-connections",
                         f"Redis node {node}: open connections (a connection leak or a pool misconfigured)",
                         redis_metric("CurrConnections", n), "Maximum",
                         Rule(WARNING, t.redis_connections, ">=", QUICK, GAUGE)),
        ]
        if cfg.redis.nodes > 1:
            # On every node: after a failover the replicas are different nodes than at creation.
            alarms.append(metric_alarm(
                cfg, f"Redis{node}ReplicationLagAlarm", f"redis-{node}-replication-lag",
                f"Redis node {node}: replica more than {t.redis_replication_lag_seconds} s behind the primary",
                redis_metric("ReplicationLag", n), "Maximum",
                Rule(WARNING, t.redis_replication_lag_seconds, ">", QUICK, REPLICA_ONLY)))
    return alarms


def alb_alarms(cfg: EnvConfig) -> list[Alarm]:
    t = cfg.monitoring.thresholds
    return [
        metric_alarm(cfg, "AlbElb5xxAlarm", "alb-5xx",
                     "Load balancer: 5xx generated by the ALB itself (no healthy target, target timeouts)",
                     alb_metric("HTTPCode_ELB_5XX_Count"), "Sum",
                     Rule(WARNING, t.alb_5xx_count, ">=", QUICK, EVENTS_ONLY)),
        metric_alarm(cfg, "AlbTarget5xxAlarm", "alb-target-5xx",
                     "Load balancer: 5xx answered by the service's tasks",
                     alb_metric("HTTPCode_Target_5XX_Count"), "Sum",
                     Rule(WARNING, t.target_5xx_count, ">=", QUICK, EVENTS_ONLY)),
        metric_alarm(cfg, "AlbLatencyWarningAlarm", "alb-latency-p99-warning",
                     f"Load balancer: p99 target response time above {t.latency_p99_warning_seconds} s "
                     "for 15 minutes",
                     alb_metric("TargetResponseTime"), "p99",
                     Rule(WARNING, t.latency_p99_warning_seconds, ">", SUSTAINED, NO_TRAFFIC)),
        metric_alarm(cfg, "AlbLatencyCriticalAlarm", "alb-latency-p99-critical",
                     f"Load balancer: p99 target response time above {t.latency_p99_critical_seconds} s",
                     alb_metric("TargetResponseTime"), "p99",
                     Rule(WARNING, t.latency_p99_critical_seconds, ">", QUICK, NO_TRAFFIC)),
        metric_alarm(cfg, "AlbUnhealthyHostsAlarm", "alb-unhealthy-hosts",
                     "Load balancer: targets failing health checks for 5 minutes",
                     alb_metric("UnHealthyHostCount", with_target_group=True), "Maximum",
                     Rule(WARNING, t.unhealthy_hosts, ">=", SATURATED, GAUGE)),
        metric_alarm(cfg, "AlbRejectedConnectionsAlarm", "alb-rejected-connections",
                     "Load balancer: connections rejected at the ALB's connection limit",
                     alb_metric("RejectedConnectionCount"), "Sum",
                     Rule(WARNING, t.rejected_connections, ">=", PER_5_MIN, EVENTS_ONLY)),
    ]


def ecs_alarms(cfg: EnvConfig) -> list[Alarm]:
    """CPU and memory above the auto-scaling target (70%) is normal; above 85/95% scaling is not keeping up."""
    t = cfg.monitoring.thresholds
    alarms = []
    for resource, metric_name, warning, critical in (("cpu", "CPUUtilization", t.ecs_cpu_warning, t.ecs_cpu_critical),
                                                     ("memory", "MemoryUtilization", t.ecs_memory_warning,
                                                      t.ecs_memory_critical)):
        label = resource.capitalize()
        metric = ecs_metric("AWS/ECS", metric_name)
        alarms += [
            metric_alarm(cfg, f"Ecs{label}WarningAlarm", f"ecs-{resource}-warning",
                         f"Service: {resource} above {warning}% for 15 minutes",
                         metric, "Average", Rule(WARNING, warning, ">", SUSTAINED, GAUGE)),
            metric_alarm(cfg, f"Ecs{label}CriticalAlarm", f"ecs-{resource}-critical",
                         f"Service: {resource} above {critical}% for 5 minutes",
                         metric, "Average", Rule(CRITICAL, critical, ">", SATURATED, GAUGE)),
        ]
    alarms.append(math_alarm(
        cfg, "EcsRunningTasksAlarm", "ecs-running-tasks-below-desired",
        "Service: fewer tasks running than desired (tasks crash, fail health checks or cannot be placed)",
        "desired - running", "DesiredTaskCount - RunningTaskCount",
        {"desired": (ecs_metric("ECS/ContainerInsights", "DesiredTaskCount"), "Average"),
         "running": (ecs_metric("ECS/ContainerInsights", "RunningTaskCount"), "Average")},
        Rule(WARNING, 0, ">", TASKS, MUST_REPORT)))
    return alarms


def app_alarms(cfg: EnvConfig) -> list[Alarm]:
    """Error rate = ServerErrors / Requests * 100 from the tracing stack's metric filters; with fewer than
    ``error_rate_min_requests`` requests a minute one failure is no rate, so the rate reads 0."""
    t = cfg.monitoring.thresholds
    alarms = []
    for severity, threshold, window in ((WARNING, t.error_rate_warning, SUSTAINED),
                                        (CRITICAL, t.error_rate_critical, QUICK)):
        minimum = _number(t.error_rate_min_requests * window.seconds / 60)
        alarms.append(math_alarm(
            cfg, f"AppErrorRate{severity.capitalize()}Alarm", f"app-error-rate-{severity}",
            f"Application: more than {_number(threshold)}% of requests answered 5xx",
            f"IF(requests >= {minimum}, 100 * errors / requests, 0)", "Error rate (%)",
            {"errors": (app_metric(cfg, "ServerErrors"), "Sum"), "requests": (app_metric(cfg, "Requests"), "Sum")},
            Rule(severity, threshold, ">", window, NO_TRAFFIC)))
    return alarms


def nat_alarms(cfg: EnvConfig) -> list[Alarm]:
    t = cfg.monitoring.thresholds
    return [metric_alarm(
        cfg, f"Nat{i}PortAllocationAlarm", f"nat-{i}-port-allocation-errors",
        f"NAT gateway {i}: could not allocate a source port (too many concurrent connections to one destination)",
        nat_metric("ErrorPortAllocation", i), "Sum",
        Rule(WARNING, t.nat_port_errors, ">=", PER_5_MIN, EVENTS_ONLY),
    ) for i in range(1, cfg.network.nat_gateways + 1)]


def service_unhealthy_alarm(cfg: EnvConfig) -> CompositeAlarm:
    topic = [Ref(TOPICS[CRITICAL])]
    return CompositeAlarm(
        "ServiceUnhealthyAlarm",
        AlarmName=cfg.resource_name("service-unhealthy"),
        AlarmDescription="[critical] Users see 5xx or 3 s+ responses, or tasks are missing: rollback trigger "
                         "for alb and ecs updates",
        AlarmRule=Sub(" OR ".join(f'ALARM("${{{lid}}}")' for lid in SERVICE_UNHEALTHY_CHILDREN)),
        AlarmActions=topic,
        OKActions=topic,
        Tags=tags(cfg),
    )


def deployment_alarm_names(cfg: EnvConfig) -> list[str]:
    """The alarms that roll an ECS deployment back (the ecs stack names them: it cannot take them as inputs,
    this stack takes inputs from it): the composite "service unhealthy" alarm and the critical error rate."""
    return [cfg.resource_name("service-unhealthy"), cfg.resource_name("app-error-rate-critical")]


# Topics ------------------------------------------------------------------------------------------------

def topic(cfg: EnvConfig, severity: str) -> Topic:
    return Topic(
        TOPICS[severity],
        TopicName=cfg.resource_name(severity),
        DisplayName=f"{cfg.env} {cfg.service} {severity.upper()}",
        KmsMasterKeyId=param("NotificationsKeyArn"),
        Tags=tags(cfg),
    )


def topic_policy() -> TopicPolicy:
    """CloudWatch alarms of this account may publish; nobody may publish over plain HTTP."""
    topics = [Ref(name) for name in TOPICS.values()]
    return TopicPolicy("AlarmTopicsPolicy", Topics=topics, PolicyDocument=PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(Sid="AllowCloudWatchAlarms", Effect=Allow,
                      Principal=Principal("Service", "cloudwatch.amazonaws.com"),
                      Action=[sns_actions.Publish], Resource=topics,
                      Condition=Condition(StringEquals("aws:SourceAccount", AccountId))),
            Statement(Sid="DenyPlainHttp", Effect=Deny, Principal=Principal("AWS", "*"),
                      Action=[sns_actions.Publish], Resource=topics,
                      Condition=Condition(Bool("aws:SecureTransport", False))),
        ],
    ))


def subscriptions(cfg: EnvConfig) -> list[SubscriptionResource]:
    """E-mail to both topics, the paging service to critical only; ids from the address, not its position."""
    found = []
    for topic_id in TOPICS.values():
        for email in cfg.monitoring.alarm_emails:
            digest = hashlib.sha256(email.lower().encode()).hexdigest()[:8]
            found.append(SubscriptionResource(f"{topic_id}Email{digest}", TopicArn=Ref(topic_id),
                                              Protocol="email", Endpoint=email))
    if cfg.monitoring.paging_url:
        found.append(SubscriptionResource("CriticalTopicPaging", TopicArn=Ref(TOPICS[CRITICAL]),
                                          Protocol="https", Endpoint=cfg.monitoring.paging_url))
    return found


# Dashboards --------------------------------------------------------------------------------------------

def line(metric: Watched, stat: str, label: str, **options: object) -> list:
    """One metric row of a dashboard widget (no "." shorthand: every row spells its namespace and name)."""
    row: list = [metric.namespace, metric.name]
    for name, value in metric.dimensions:
        row += [name, value]
    return row + [{"stat": stat, "label": label, **options}]


def expression(expr: str, label: str, qid: str) -> list:
    return [{"expression": expr, "label": label, "id": qid}]


def graph(title: str, rows: list, *, period: int = 60, annotations: list[tuple[str, float]] = ()) -> dict:
    properties: dict = {"title": title, "region": "${AWS::Region}", "view": "timeSeries", "stacked": False,
                        "period": period, "metrics": rows}
    if annotations:
        properties["annotations"] = {"horizontal": [{"label": label, "value": value}
                                                    for label, value in annotations]}
    return {"type": "metric", "properties": properties}


def layout(widgets: list[dict], columns: int = 3, height: int = 6) -> list[dict]:
    """Place widgets left to right, top to bottom, on the dashboard's 24-unit grid."""
    width = 24 // columns
    return [{**w, "x": (i % columns) * width, "y": (i // columns) * height, "width": width, "height": height}
            for i, w in enumerate(widgets)]


def overview_body(cfg: EnvConfig, critical_alarms: list[str]) -> dict:
    t = cfg.monitoring.thresholds
    app = {name: app_metric(cfg, name) for name in ("Requests", "Errors", "ServerErrors", "RequestLatency")}
    widgets = [
        graph("Traffic (requests a minute)", [
            line(alb_metric("RequestCount"), "Sum", "ALB requests"),
            line(app["Requests"], "Sum", "Application requests (logs)"),
        ]),
        graph("Latency: ALB target response time (s)", [
            line(alb_metric("TargetResponseTime"), p, p) for p in ("p50", "p90", "p99")
        ], annotations=[("p99 warning", t.latency_p99_warning_seconds),
                        ("p99 critical", t.latency_p99_critical_seconds)]),
        graph("Latency: application (ms)", [
            line(app["RequestLatency"], p, p) for p in ("p50", "p90", "p99")
        ]),
        graph("Errors (a minute)", [
            line(alb_metric("HTTPCode_ELB_5XX_Count"), "Sum", "ALB 5xx"),
            line(alb_metric("HTTPCode_Target_5XX_Count"), "Sum", "Target 5xx"),
            line(alb_metric("HTTPCode_Target_4XX_Count"), "Sum", "Target 4xx"),
            line(app["Errors"], "Sum", "ERROR log lines"),
        ]),
        graph("Error rate (% of requests answered 5xx)", [
            line(app["ServerErrors"], "Sum", "5xx", id="errors", visible=False),
            line(app["Requests"], "Sum", "requests", id="requests", visible=False),
            expression("IF(requests > 0, 100 * errors / requests, 0)", "Error rate (%)", "rate"),
        ], annotations=[("warning", t.error_rate_warning), ("critical", t.error_rate_critical)]),
        graph("Targets", [
            line(alb_metric("HealthyHostCount", with_target_group=True), "Minimum", "healthy"),
            line(alb_metric("UnHealthyHostCount", with_target_group=True), "Maximum", "unhealthy"),
        ]),
        graph("Tasks", [
            line(ecs_metric("ECS/ContainerInsights", name), "Average", label)
            for name, label in (("DesiredTaskCount", "desired"), ("RunningTaskCount", "running"),
                                ("PendingTaskCount", "pending"))
        ]),
        graph("Tasks: CPU and memory (%)", [
            line(ecs_metric("AWS/ECS", "CPUUtilization"), "Average", "CPU"),
            line(ecs_metric("AWS/ECS", "MemoryUtilization"), "Average", "memory"),
        ], annotations=[("warning", min(t.ecs_cpu_warning, t.ecs_memory_warning)),
                        ("critical", min(t.ecs_cpu_critical, t.ecs_memory_critical))]),
        graph("NAT gateways: port allocation errors", [
            line(nat_metric("ErrorPortAllocation", i), "Sum", f"NAT {i}")
            for i in range(1, cfg.network.nat_gateways + 1)
        ]),
    ]
    status = {"type": "alarm", "properties": {
        "title": "Critical alarms",
        "alarms": ["${ServiceUnhealthyAlarm.Arn}"] + [f"${{{lid}.Arn}}" for lid in critical_alarms],
        "sortBy": "stateUpdatedTimestamp",
    }}
    return {"widgets": [{**status, "x": 0, "y": 0, "width": 24, "height": 4}]
            + [{**w, "y": w["y"] + 4} for w in layout(widgets)]}


def data_body(cfg: EnvConfig) -> dict:
    tables = [table.name for table in cfg.dynamodb.tables]
    brokers = range(1, cfg.kafka.brokers + 1)
    nodes = range(1, cfg.redis.nodes + 1)
    kafka_cpu: list = []
    for b in brokers:
        kafka_cpu += [line(kafka_metric("CpuUser", b), "Average", f"user {b}", id=f"user{b}", visible=False),
                      line(kafka_metric("CpuSystem", b), "Average", f"system {b}", id=f"system{b}", visible=False),
                      expression(f"user{b} + system{b}", f"broker {b}", f"cpu{b}")]
    widgets = [
        graph("DynamoDB: consumed read capacity (a minute)", [
            line(dynamodb_metric(t, "ConsumedReadCapacityUnits"), "Sum", t) for t in tables]),
        graph("DynamoDB: consumed write capacity (a minute)", [
            line(dynamodb_metric(t, "ConsumedWriteCapacityUnits"), "Sum", t) for t in tables]),
        graph("DynamoDB: throttled events", [
            line(dynamodb_metric(t, f"{kind}ThrottleEvents"), "Sum", f"{t} {kind.lower()}")
            for t in tables for kind in ("Read", "Write")]),
        graph("DynamoDB: latency of GetItem / Query / PutItem (ms)", [
            line(dynamodb_metric(t, "SuccessfulRequestLatency", op), "Average", f"{t} {op}")
            for t in tables for op in ("GetItem", "Query", "PutItem")]),
        graph("Kafka: CPU user + system (%)", kafka_cpu),
        graph("Kafka: data-log disk used (%)", [
            line(kafka_metric("KafkaDataLogsDiskUsed", b), "Maximum", f"broker {b}") for b in brokers]),
        graph("Kafka: heap after GC (%)", [
            line(kafka_metric("HeapMemoryAfterGC", b), "Maximum", f"broker {b}") for b in brokers]),
        graph("Kafka: partitions", [line(kafka_metric("OfflinePartitionsCount"), "Maximum", "offline"),
                                    line(kafka_metric("ActiveControllerCount"), "Maximum", "active controllers")]
              + [line(kafka_metric("UnderReplicatedPartitions", b), "Maximum", f"under-replicated, broker {b}")
                 for b in brokers]),
        graph("Kafka: bytes in / out per second", [
            line(kafka_metric(name, b), "Average", f"{direction} {b}")
            for b in brokers for name, direction in (("BytesInPerSec", "in"), ("BytesOutPerSec", "out"))]),
        graph("Redis: engine CPU (%)", [
            line(redis_metric("EngineCPUUtilization", n), "Average", f"node {n:03d}") for n in nodes]),
        graph("Redis: memory used (%)", [
            line(redis_metric("DatabaseMemoryUsagePercentage", n), "Average", f"node {n:03d}") for n in nodes]),
        graph("Redis: connections", [
            line(redis_metric("CurrConnections", n), "Maximum", f"node {n:03d}") for n in nodes]),
        graph("Redis: evictions", [
            line(redis_metric("Evictions", n), "Sum", f"node {n:03d}") for n in nodes]),
        graph("Redis: cache hit rate (%)", [
            line(redis_metric("CacheHitRate", n), "Average", f"node {n:03d}") for n in nodes]),
    ]
    if cfg.redis.nodes > 1:
        widgets.append(graph("Redis: replication lag (s)", [
            line(redis_metric("ReplicationLag", n), "Maximum", f"node {n:03d}") for n in nodes]))
    return {"widgets": layout(widgets)}


def dashboard(cfg: EnvConfig, lid: str, kind: str, body: dict) -> Dashboard:
    """The body is a data structure, serialised once; ``${...}`` in it are filled by Fn::Sub."""
    text = json.dumps(body, separators=(",", ":"))
    known = variables(cfg)
    used = {name: known[name] for name in sorted(set(PLACEHOLDER.findall(text))) if name in known}
    return Dashboard(lid, DashboardName=cfg.resource_name(kind), DashboardBody=Sub(text, used) if used else Sub(text),
                     Tags=tags(cfg))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class MonitoringBlueprint(Blueprint):
    key = "monitoring"
    description = "alarm topics, alarms for every component, the service-unhealthy composite alarm, dashboards"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {
            "NotificationsKeyArn": Input("security", "NotificationsKeyArn"),
            "NatGatewayIds": Input("network", "NatGatewayIds"),
            **{f"{t.name}TableName": Input("dynamodb", f"{t.name}TableName") for t in cfg.dynamodb.tables},
            "KafkaClusterName": Input("msk", "ClusterName"),
            "ReplicationGroupId": Input("elasticache", "ReplicationGroupId"),
            "MetricNamespace": Input("tracing", "MetricNamespace"),
            "LoadBalancerFullName": Input("alb", "LoadBalancerFullName"),
            "TargetGroupFullName": Input("alb", "TargetGroupFullName"),
            "EcsClusterName": Input("ecs", "ClusterName"),
            "EcsServiceName": Input("ecs", "ServiceName"),
        }

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        for severity in TOPICS:
            t.add_resource(topic(cfg, severity))
        t.add_resource(topic_policy())
        for subscription in subscriptions(cfg):
            t.add_resource(subscription)

        alarms = (dynamodb_alarms(cfg) + kafka_alarms(cfg) + redis_alarms(cfg) + alb_alarms(cfg)
                  + ecs_alarms(cfg) + app_alarms(cfg) + nat_alarms(cfg))
        for alarm in alarms:
            t.add_resource(alarm)
        t.add_resource(service_unhealthy_alarm(cfg))

        critical = [a.title for a in alarms if a.AlarmActions == [Ref(TOPICS[CRITICAL])]]
        t.add_resource(dashboard(cfg, "OverviewDashboard", "overview", overview_body(cfg, critical)))
        t.add_resource(dashboard(cfg, "DataDashboard", "data", data_body(cfg)))

        output(t, "CriticalTopicArn", Ref(TOPICS[CRITICAL]), "Topic of critical alarms (page)")
        output(t, "WarningTopicArn", Ref(TOPICS[WARNING]), "Topic of warning alarms")
        output(t, "ServiceUnhealthyAlarmArn", GetAtt("ServiceUnhealthyAlarm", "Arn"),
               "Composite alarm: the rollback trigger of alb and ecs updates")
        output(t, "ServiceUnhealthyAlarmName", Ref("ServiceUnhealthyAlarm"), "Name of the composite alarm")
        output(t, "OverviewDashboardName", Ref("OverviewDashboard"), "Service overview dashboard")
        output(t, "DataDashboardName", Ref("DataDashboard"), "Data tier dashboard (DynamoDB, Kafka, Redis)")
        return t


BLUEPRINT = MonitoringBlueprint()
