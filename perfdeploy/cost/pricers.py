"""One small pricer per CloudFormation resource type: (context, logical id, properties) -> cost lines.

Sizes are read from the template's own properties (AWS's property names, so the pricer does not depend on how
a blueprint is written); traffic comes from the environment's workload and the usage assumptions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from perfdeploy.cost.prices import PriceTable
from perfdeploy.deploy.diff import references

GB_PER_KB = 1 / (1024 * 1024)
DAYS_PER_MONTH = 365 / 12
NO_RETENTION_MONTHS = 12  # a log group without retention keeps growing: one year of it is shown

# Types that cost nothing by themselves (or are priced through another resource, as a flow log through its log
# group and a task definition through its service).
FREE_TYPES = frozenset({
    "AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::RouteTable", "AWS::EC2::Route", "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress", "AWS::EC2::FlowLog",
    "AWS::ECS::Cluster", "AWS::ECS::ClusterCapacityProviderAssociations", "AWS::ECS::TaskDefinition",
    "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::ListenerRule",
    "AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::WAFv2::WebACLAssociation", "AWS::WAFv2::LoggingConfiguration",
    "AWS::S3::BucketPolicy", "AWS::KMS::Alias", "AWS::SecretsManager::RotationSchedule",
    "AWS::SecretsManager::SecretTargetAttachment", "AWS::SecretsManager::ResourcePolicy",
    "AWS::MSK::Configuration", "AWS::ElastiCache::SubnetGroup", "AWS::ElastiCache::ParameterGroup",
    "AWS::ElastiCache::User", "AWS::ElastiCache::UserGroup",
    "AWS::Backup::BackupVault", "AWS::Backup::BackupSelection", "AWS::Logs::QueryDefinition",
    "AWS::Logs::ResourcePolicy", "AWS::XRay::Group", "AWS::SNS::Topic", "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription", "AWS::CloudFormation::WaitConditionHandle", "AWS::Lambda::Permission",
    # Billed per request and GB-second; the secret's rotation function runs its four steps once per rotation
    # period: well under a cent a month (https://aws.amazon.com/lambda/pricing/).
    "AWS::Lambda::Function",
})


def free_type(kind: str) -> bool:
    return kind in FREE_TYPES or kind.startswith("AWS::IAM::")


@dataclass(frozen=True)
class Workload:
    tasks: int
    requests_per_month: float
    zones: int

    def to_json(self) -> dict:
        return {"tasks": self.tasks, "requests_per_month": round(self.requests_per_month), "zones": self.zones}


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float
    unit: str
    unit_price: float | None    # None: not in the price table (see note)
    note: str = ""

    @property
    def monthly(self) -> float | None:
        return None if self.unit_price is None else self.quantity * self.unit_price

    def plus(self, quantity: float) -> Line:
        return replace(self, quantity=self.quantity + quantity)

    def to_json(self) -> dict:
        monthly = self.monthly
        return {"item": self.item, "quantity": round(self.quantity, 4), "unit": self.unit,
                "unit_price": self.unit_price, "monthly": None if monthly is None else round(monthly, 2),
                "note": self.note}


@dataclass
class Context:
    prices: PriceTable
    workload: Workload
    stack: str
    template: dict
    _refs: dict[str, set[str]] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return self.prices.hours_per_month

    def usage(self, name: str) -> float:
        return self.prices.usage[name]

    def referenced_by(self, logical_id: str) -> set[str]:
        """The types of the resources in this template that refer to `logical_id` (Ref or GetAtt)."""
        if not self._refs:
            for resource in resources(self.template).values():
                for target in set.union(*references(resource.get("Properties", {}))):
                    self._refs.setdefault(target, set()).add(resource.get("Type", ""))
        return self._refs.get(logical_id, set())

    def of_type(self, kind: str) -> dict[str, dict]:
        return {lid: r.get("Properties", {}) for lid, r in resources(self.template).items() if r.get("Type") == kind}


def resources(template: dict) -> dict[str, dict]:
    return template.get("Resources") or {}


def number(value, default: float) -> float:
    """A numeric property, or `default` when it is absent or an intrinsic function (a parameter, a Ref)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _priced(ctx: Context, service: str, table: str, key: str, item: str, quantity: float, unit: str,
            discount: float = 0.0, note: str = "") -> Line:
    price = ctx.prices.lookup(service, table, key)
    if price is None:
        return Line(item, quantity, unit, None, note=f"{key} is not in the price table (perfdeploy/cost/prices.yaml)")
    return Line(item, quantity, unit, round(price * (1 - discount), 6), note)


# Compute -----------------------------------------------------------------------------------------

def msk_cluster(ctx: Context, lid: str, props: dict) -> list[Line]:
    brokers = number(props.get("NumberOfBrokerNodes"), 0)
    group = props.get("BrokerNodeGroupInfo", {})
    kind = group.get("InstanceType", "?")
    volume = number(group.get("StorageInfo", {}).get("EBSStorageInfo", {}).get("VolumeSize"), 0)
    return [_priced(ctx, "msk", "broker_hour", kind, f"{kind} brokers", brokers * ctx.hours, "broker-hours"),
            Line("broker storage (EBS)", brokers * volume, "GB-months", ctx.prices.price("msk", "storage_gb_month"))]


def replication_group(ctx: Context, lid: str, props: dict) -> list[Line]:
    if "NumCacheClusters" in props:
        nodes = number(props["NumCacheClusters"], 1)
    else:
        nodes = number(props.get("NumNodeGroups"), 1) * (number(props.get("ReplicasPerNodeGroup"), 0) + 1)
    kind = props.get("CacheNodeType", "?")
    engine = str(props.get("Engine", "redis")).lower()
    discount = ctx.prices.price("elasticache", "valkey_discount") if engine == "valkey" else 0.0
    return [_priced(ctx, "elasticache", "node_hour", kind, f"{kind} {engine} nodes", nodes * ctx.hours,
                    "node-hours", discount)]


def ecs_service(ctx: Context, lid: str, props: dict) -> list[Line]:
    definitions = ctx.of_type("AWS::ECS::TaskDefinition")
    ref = props.get("TaskDefinition")
    task = definitions.get(ref.get("Ref")) if isinstance(ref, dict) else None
    task = task or next(iter(definitions.values()), {})
    vcpu = number(task.get("Cpu"), 256) / 1024
    memory_gb = number(task.get("Memory"), 512) / 1024
    tasks = ctx.workload.tasks
    note = _spot_note(props.get("CapacityProviderStrategy") or [], tasks)
    hours = tasks * ctx.hours
    return [Line(f"Fargate vCPU ({tasks} tasks x {vcpu:g} vCPU)", hours * vcpu, "vCPU-hours",
                 ctx.prices.price("fargate", "vcpu_hour"), note),
            Line(f"Fargate memory ({tasks} tasks x {memory_gb:g} GB)", hours * memory_gb, "GB-hours",
                 ctx.prices.price("fargate", "gb_hour"), note)]


def _spot_note(strategy: list, tasks: int) -> str:
    """How many tasks the capacity provider strategy puts on Fargate Spot (base first, then by weight)."""
    spot = next((s for s in strategy if s.get("CapacityProvider") == "FARGATE_SPOT"), None)
    if not spot:
        return ""
    base = sum(int(number(s.get("Base"), 0)) for s in strategy)
    weights = sum(number(s.get("Weight"), 0) for s in strategy) or 1
    on_spot = int(number(spot.get("Base"), 0)) + max(0, tasks - base) * number(spot.get("Weight"), 0) / weights
    return f"{on_spot:g} of {tasks} tasks on Fargate Spot, priced on demand (Spot is up to 70% less)" if on_spot else ""


# Network -----------------------------------------------------------------------------------------

def nat_gateway(ctx: Context, lid: str, props: dict) -> list[Line]:
    gateways = len(ctx.of_type("AWS::EC2::NatGateway")) or 1
    data_gb = (_app_log_gb(ctx) + ctx.workload.tasks * (ctx.usage("nat_misc_gb_per_task")
                                                         + ctx.usage("container_insights_gb_per_task")))
    return [Line("NAT gateways", ctx.hours, "gateway-hours", ctx.prices.price("vpc", "nat_gateway_hour")),
            Line("NAT data processed (logs, traces, AWS APIs)", data_gb / gateways, "GB",
                 ctx.prices.price("vpc", "nat_gateway_gb"))]


def elastic_ip(ctx: Context, lid: str, props: dict) -> list[Line]:
    return [Line("public IPv4 addresses", ctx.hours, "address-hours", ctx.prices.price("vpc", "public_ipv4_hour"))]


def vpc_endpoint(ctx: Context, lid: str, props: dict) -> list[Line]:
    if props.get("VpcEndpointType", "Gateway") == "Gateway":
        return []  # S3 and DynamoDB gateway endpoints are free
    return [Line(f"{lid} (interface endpoint)", 1, "endpoint", None,
                 note="interface endpoints are not in the price table (perfdeploy/cost/prices.yaml)")]


def load_balancer(ctx: Context, lid: str, props: dict) -> list[Line]:
    if props.get("Type", "application") != "application":
        return [Line(f"{lid} ({props['Type']} load balancer)", 1, "load balancer", None,
                     note="only Application Load Balancers are in the price table")]
    rps = ctx.workload.requests_per_month / (ctx.hours * 3600)
    processed_gb_hour = rps * ctx.usage("response_kb") * 3600 * GB_PER_KB
    new_connections = rps * ctx.usage("new_connections_per_request")
    lcu = max(processed_gb_hour / 1.0, new_connections / 25.0)  # an LCU: 1 GB an hour, or 25 new connections a second
    lines = [Line("Application Load Balancer", ctx.hours, "hours", ctx.prices.price("alb", "hour")),
             Line("load balancer capacity units", lcu * ctx.hours, "LCU-hours", ctx.prices.price("alb", "lcu_hour"))]
    if props.get("Scheme", "internet-facing") == "internet-facing":
        lines.append(Line("public IPv4 addresses", ctx.workload.zones * ctx.hours, "address-hours",
                          ctx.prices.price("vpc", "public_ipv4_hour"), "one per zone the load balancer spans"))
    return lines


def web_acl(ctx: Context, lid: str, props: dict) -> list[Line]:
    rules = len(props.get("Rules") or [])
    return [Line("WAF web ACL", 1, "web ACL-months", ctx.prices.price("waf", "web_acl_month")),
            Line("WAF rules", rules, "rule-months", ctx.prices.price("waf", "rule_month")),
            Line("WAF requests", ctx.workload.requests_per_month / 1e6, "million requests",
                 ctx.prices.price("waf", "million_requests"))]


# Data --------------------------------------------------------------------------------------------

def dynamodb_table(ctx: Context, lid: str, props: dict) -> list[Line]:
    indexes = props.get("GlobalSecondaryIndexes") or []
    tables = len(ctx.of_type("AWS::DynamoDB::Table")) or 1
    gb = ctx.usage("dynamodb_gb_per_table")
    price = ctx.prices.price
    lines = [Line(f"{lid} storage (table and {len(indexes)} indexes)", gb * (1 + len(indexes)), "GB-months",
                  price("dynamodb", "storage_gb_month"), "indexes assumed to project every attribute")]
    writes = ctx.workload.requests_per_month / tables * ctx.usage("dynamodb_writes_per_request")
    if props.get("BillingMode") == "PAY_PER_REQUEST":
        reads = ctx.workload.requests_per_month / tables * ctx.usage("dynamodb_reads_per_request")
        lines += [Line(f"{lid} writes (table and indexes)", writes * (1 + len(indexes)) / 1e6,
                       "million write request units", price("dynamodb", "million_write_request_units"),
                       "each write also writes every index"),
                  Line(f"{lid} reads", reads / 1e6, "million read request units",
                       price("dynamodb", "million_read_request_units"))]
    else:
        for throughput in [props.get("ProvisionedThroughput") or {}] + \
                          [i.get("ProvisionedThroughput") or {} for i in indexes]:
            lines += [Line(f"{lid} provisioned writes", number(throughput.get("WriteCapacityUnits"), 0) * ctx.hours,
                           "WCU-hours", price("dynamodb", "wcu_hour")),
                      Line(f"{lid} provisioned reads", number(throughput.get("ReadCapacityUnits"), 0) * ctx.hours,
                           "RCU-hours", price("dynamodb", "rcu_hour"))]
    if (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") in (True, "true"):
        lines.append(Line(f"{lid} point-in-time recovery", gb, "GB-months", price("dynamodb", "pitr_gb_month")))
    if props.get("StreamSpecification"):
        lines.append(Line(f"{lid} stream reads", writes / 1e6, "million stream read units",
                          price("dynamodb", "million_stream_read_units"), "one consumer reading every change"))
    return lines


def backup_plan(ctx: Context, lid: str, props: dict) -> list[Line]:
    tables = len(ctx.of_type("AWS::DynamoDB::Table"))
    kept = sum(number((rule.get("Lifecycle") or {}).get("DeleteAfterDays"), 35)
               for rule in (props.get("BackupPlan") or {}).get("BackupPlanRule", []))
    gb = tables * ctx.usage("dynamodb_gb_per_table") * kept
    return [Line(f"table backups ({kept:g} daily copies kept)", gb, "GB-months",
                 ctx.prices.price("backup", "dynamodb_warm_gb_month"), "each DynamoDB backup is a full copy")]


def log_group(ctx: Context, lid: str, props: dict) -> list[Line]:
    name, gb = _log_volume(ctx, lid, props)
    days = number(props.get("RetentionInDays"), 0)
    months = days / DAYS_PER_MONTH if days else NO_RETENTION_MONTHS
    stored = gb * ctx.usage("log_compression") * months
    note = f"{days:g} days kept" if days else "no retention: a year of growth shown"
    return [Line(f"{name} log ingestion", gb, "GB", ctx.prices.price("cloudwatch", "logs_ingest_gb")),
            Line(f"{name} log storage", stored, "GB-months", ctx.prices.price("cloudwatch", "logs_store_gb_month"),
                 note)]


def _log_volume(ctx: Context, lid: str, props: dict) -> tuple[str, float]:
    """What writes to this log group, and how many GB a month (from the resources that refer to it)."""
    users = ctx.referenced_by(lid)
    group_name = str(props.get("LogGroupName", ""))
    if "AWS::EC2::FlowLog" in users:
        return "VPC flow", ctx.workload.zones * ctx.usage("flow_log_gb_per_zone")
    if "AWS::MSK::Cluster" in users:
        brokers = sum(number(p.get("NumberOfBrokerNodes"), 0) for p in ctx.of_type("AWS::MSK::Cluster").values())
        return "Kafka broker", brokers * ctx.usage("broker_log_gb_per_broker")
    if group_name.startswith("/aws/ecs/containerinsights/"):
        return "Container Insights", ctx.workload.tasks * ctx.usage("container_insights_gb_per_task")
    if "AWS::Logs::MetricFilter" in users or ctx.stack == "tracing":
        return "application", _app_log_gb(ctx)
    return lid, ctx.usage("other_log_gb_per_group")


def _app_log_gb(ctx: Context) -> float:
    return ctx.workload.requests_per_month * ctx.usage("app_log_kb_per_request") * GB_PER_KB


def bucket(ctx: Context, lid: str, props: dict) -> list[Line]:
    if "AWS::ElasticLoadBalancingV2::LoadBalancer" not in ctx.referenced_by(lid):
        return [Line(f"{lid} (S3 bucket)", 0, "GB-months", ctx.prices.price("s3", "standard_gb_month"),
                     "contents not estimated")]
    rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
    days = min((number(r.get("ExpirationInDays"), 0) for r in rules if r.get("ExpirationInDays")), default=0)
    months = days / DAYS_PER_MONTH if days else NO_RETENTION_MONTHS
    gb = ctx.workload.requests_per_month * ctx.usage("alb_log_kb_per_request") * GB_PER_KB * months
    return [Line("ALB access logs in S3", gb, "GB-months", ctx.prices.price("s3", "standard_gb_month"),
                 f"{days:g} days kept" if days else "no expiry: a year of growth shown")]


def repository(ctx: Context, lid: str, props: dict) -> list[Line]:
    kept = ctx.usage("images_kept")
    text = (props.get("LifecyclePolicy") or {}).get("LifecyclePolicyText")
    try:
        rules = json.loads(text)["rules"] if isinstance(text, str) else []
        counts = [r["selection"]["countNumber"] for r in rules
                  if r["selection"].get("countType") == "imageCountMoreThan"]
        kept = max(counts) if counts else kept
    except (ValueError, KeyError, TypeError):
        pass
    return [Line(f"image storage ({kept:g} images)", kept * ctx.usage("image_gb"), "GB-months",
                 ctx.prices.price("ecr", "storage_gb_month"))]


# Security and observability ----------------------------------------------------------------------

def kms_key(ctx: Context, lid: str, props: dict) -> list[Line]:
    return [Line("KMS customer managed keys", 1, "key-months", ctx.prices.price("kms", "key_month"))]


def secret(ctx: Context, lid: str, props: dict) -> list[Line]:
    return [Line("Secrets Manager secrets", 1, "secret-months", ctx.prices.price("secretsmanager", "secret_month"))]


def metric_filter(ctx: Context, lid: str, props: dict) -> list[Line]:
    metrics = len(props.get("MetricTransformations") or [])
    return [Line("custom metrics from log metric filters", metrics, "metric-months",
                 ctx.prices.price("cloudwatch", "custom_metric_month"))]


def sampling_rule(ctx: Context, lid: str, props: dict) -> list[Line]:
    rule = props.get("SamplingRule") or {}
    if rule.get("URLPath", "*") != "*" or rule.get("HTTPMethod", "*") != "*":
        return []  # a narrow rule (health checks): its traffic is not modelled
    seconds = ctx.hours * 3600
    requests = ctx.workload.requests_per_month
    reservoir = min(requests, number(rule.get("ReservoirSize"), 0) * seconds)
    traces = reservoir + (requests - reservoir) * number(rule.get("FixedRate"), 0)
    return [Line("X-Ray traces recorded", traces / 1e6, "million traces",
                 ctx.prices.price("xray", "million_traces_recorded"),
                 "the reservoir (traces a second) plus the fixed rate of the rest")]


def alarm(ctx: Context, lid: str, props: dict) -> list[Line]:
    metrics = props.get("Metrics")
    if metrics:
        count = sum(1 for m in metrics if "MetricStat" in m)
        if any("ANOMALY_DETECTION_BAND" in str(m.get("Expression", "")) for m in metrics):
            count *= 3  # the metric and the band's two bounds
        periods = [number((m.get("MetricStat") or {}).get("Period"), 60) for m in metrics if "MetricStat" in m]
    else:
        count, periods = 1, [number(props.get("Period"), 60)]
    high = min(periods, default=60) < 60
    name = "high-resolution" if high else "standard"
    price = "high_resolution_alarm_metric_month" if high else "alarm_metric_month"
    return [Line(f"{name} alarm metrics", count, "alarm metric-months", ctx.prices.price("cloudwatch", price))]


def composite_alarm(ctx: Context, lid: str, props: dict) -> list[Line]:
    return [Line("composite alarms", 1, "alarm-months", ctx.prices.price("cloudwatch", "composite_alarm_month"))]


def dashboard(ctx: Context, lid: str, props: dict) -> list[Line]:
    return [Line("dashboards", 1, "dashboard-months", ctx.prices.price("cloudwatch", "dashboard_month"))]


PRICERS: dict[str, Callable[[Context, str, dict], list[Line]]] = {
    "AWS::MSK::Cluster": msk_cluster,
    "AWS::ElastiCache::ReplicationGroup": replication_group,
    "AWS::ECS::Service": ecs_service,
    "AWS::EC2::NatGateway": nat_gateway,
    "AWS::EC2::EIP": elastic_ip,
    "AWS::EC2::VPCEndpoint": vpc_endpoint,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": load_balancer,
    "AWS::WAFv2::WebACL": web_acl,
    "AWS::DynamoDB::Table": dynamodb_table,
    "AWS::Backup::BackupPlan": backup_plan,
    "AWS::Logs::LogGroup": log_group,
    "AWS::Logs::MetricFilter": metric_filter,
    "AWS::S3::Bucket": bucket,
    "AWS::ECR::Repository": repository,
    "AWS::KMS::Key": kms_key,
    "AWS::SecretsManager::Secret": secret,
    "AWS::XRay::SamplingRule": sampling_rule,
    "AWS::CloudWatch::Alarm": alarm,
    "AWS::CloudWatch::CompositeAlarm": composite_alarm,
    "AWS::CloudWatch::Dashboard": dashboard,
}
