"""tracing: the application's log group, metric filters on its JSON logs, Logs Insights queries, and the
X-Ray sampling rules and group.

The application writes one JSON object per log line. The fields this stack reads (the application's side of
the contract; numbers must be JSON numbers, not strings):

    level      "ERROR" on error lines                     -> Errors
    status     HTTP status code, on request lines only    -> Requests, ServerErrors (500..599)
    latencyMs  request duration in milliseconds           -> RequestLatency
    route      route template, e.g. /reviews/{id}         (Logs Insights: error rate by route)
    method, message, traceId                              (Logs Insights output)

The metrics land in ``PerformanceMgmt/<env>``, where the monitoring stack alarms on them (error rate =
ServerErrors / Requests). The counting filters publish 0 for log lines that do not match, so a quiet minute
reads as "no errors" rather than as missing data.
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Template
from troposphere.logs import LogGroup, MetricFilter, MetricTransformation, QueryDefinition
from troposphere.xray import Group, InsightsConfiguration, SamplingRule, SamplingRuleProperty

from perfdeploy import metrics
from perfdeploy.blueprints.base import Blueprint, Input, log_group, output, tags
from perfdeploy.config import EnvConfig
from perfdeploy.errors import RenderError

XRAY_NAME_MAX = 32  # X-Ray sampling rule and group names
APP_RULE_PRIORITY = 1000
HEALTH_CHECK_RULE_PRIORITY = 100  # lower number wins: health checks are matched before the service rule
APP_RESERVOIR_PER_SECOND = 1  # traced every second whatever the rate, so a quiet service still shows traces

# Metric filters: metric name -> (filter pattern, value, unit, description).
METRIC_FILTERS = {
    "Requests": ("{ $.status >= 100 }", "1", "Count", "request lines (any with a numeric status)"),
    "Errors": ('{ $.level = "ERROR" }', "1", "Count", "log lines at level ERROR"),
    "ServerErrors": ("{ ($.status >= 500) && ($.status <= 599) }", "1", "Count", "requests answered 5xx"),
    "RequestLatency": ("{ $.latencyMs >= 0 }", "$.latencyMs", "Milliseconds", "request duration"),
}
# A latency of 0 is a real value, not "no request": only the counters publish a default.
COUNTERS = {"Requests", "Errors", "ServerErrors"}

QUERIES = {
    "recent-errors": (
        "fields @timestamp, level, route, status, message, traceId\n"
        '| filter level = "ERROR"\n'
        "| sort @timestamp desc\n"
        "| limit 100"
    ),
    "slowest-requests": (
        "fields @timestamp, method, route, status, latencyMs, traceId\n"
        "| filter ispresent(latencyMs)\n"
        "| sort latencyMs desc\n"
        "| limit 50"
    ),
    # floor(status / 500) is 1 for 500..599 and 0 for 100..499: a 5xx flag without a conditional.
    "error-rate-by-route": (
        "fields route, floor(status / 500) as serverError, 100 * floor(status / 500) as serverErrorPct\n"
        "| filter ispresent(status)\n"
        "| stats count(*) as requests, sum(serverError) as serverErrors, avg(serverErrorPct) as errorRatePct"
        " by route\n"
        "| sort errorRatePct desc"
    ),
}


def app_log_group_name(cfg: EnvConfig) -> str:
    return f"/ecs/{cfg.env}-{cfg.service}"


def container_insights_log_group_name(cfg: EnvConfig) -> str:
    """Where Container Insights writes the cluster's performance events (cluster name per docs/stacks.md)."""
    return f"/aws/ecs/containerinsights/{cfg.resource_name('cluster')}/performance"


def xray_service_name(cfg: EnvConfig) -> str:
    """The name the application reports in its X-Ray segments (AWS_XRAY_TRACING_NAME / OTEL_SERVICE_NAME)."""
    return f"{cfg.env}-{cfg.service}"


def xray_name(cfg: EnvConfig, suffix: str = "") -> str:
    name = f"{cfg.env}-{cfg.service}{suffix}"
    if len(name) > XRAY_NAME_MAX:
        raise RenderError(f"tracing: X-Ray name {name!r} is longer than {XRAY_NAME_MAX} characters; "
                          "shorten the service name")
    return name


def app_log_group(cfg: EnvConfig) -> LogGroup:
    return log_group(cfg, "AppLogGroup", app_log_group_name(cfg))


def container_insights_log_group(cfg: EnvConfig) -> LogGroup:
    """Owned here so it has a retention and our key: Container Insights would create it with neither."""
    return log_group(cfg, "ContainerInsightsLogGroup", container_insights_log_group_name(cfg))


def metric_filter(cfg: EnvConfig, name: str) -> MetricFilter:
    pattern, value, unit, _ = METRIC_FILTERS[name]
    transformation = MetricTransformation(
        MetricNamespace=metrics.app_namespace(cfg.env),
        MetricName=metrics.metric(metrics.app_namespace(cfg.env), name),
        MetricValue=value,
        Unit=unit,
    )
    if name in COUNTERS:
        transformation.DefaultValue = 0
    return MetricFilter(
        f"{name}MetricFilter",
        FilterName=cfg.resource_name(_kebab(name)),
        LogGroupName=Ref("AppLogGroup"),
        FilterPattern=pattern,
        MetricTransformations=[transformation],
    )


def query_definition(cfg: EnvConfig, name: str, query: str) -> QueryDefinition:
    return QueryDefinition(
        f"{_camel(name)}Query",
        Name=f"{cfg.service}/{cfg.env}/{name}",  # the console shows "/" as folders
        QueryString=query,
        LogGroupNames=[Ref("AppLogGroup")],
    )


def sampling_rules(cfg: EnvConfig) -> list[SamplingRule]:
    """The service's rule at the environment's rate, and one that never samples the ALB's health checks."""
    service = xray_service_name(cfg)
    common = {"ServiceName": service, "ServiceType": "*", "Host": "*", "ResourceARN": "*", "Version": 1}
    return [
        SamplingRule("HealthCheckSamplingRule", SamplingRule=SamplingRuleProperty(
            RuleName=xray_name(cfg, "-health"),
            Priority=HEALTH_CHECK_RULE_PRIORITY,
            FixedRate=0.0,
            ReservoirSize=0,
            HTTPMethod="GET",
            URLPath=cfg.ecs.health_check_path,
            **common,
        ), Tags=tags(cfg)),
        SamplingRule("AppSamplingRule", SamplingRule=SamplingRuleProperty(
            RuleName=xray_name(cfg),
            Priority=APP_RULE_PRIORITY,
            FixedRate=cfg.tracing.sampling_rate,
            ReservoirSize=APP_RESERVOIR_PER_SECOND,
            HTTPMethod="*",
            URLPath="*",
            **common,
        ), Tags=tags(cfg)),
    ]


def xray_group(cfg: EnvConfig) -> Group:
    """The service's traces as one group, with X-Ray Insights looking for anomalies in them."""
    return Group(
        "XRayGroup",
        GroupName=xray_name(cfg),
        FilterExpression=f'service("{xray_service_name(cfg)}")',
        InsightsConfiguration=InsightsConfiguration(InsightsEnabled=True, NotificationsEnabled=True),
        Tags=tags(cfg),
    )


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


class TracingBlueprint(Blueprint):
    key = "tracing"
    description = "application log group, metric filters, Logs Insights queries, X-Ray sampling and group"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {"LogsKeyArn": Input("security", "LogsKeyArn")}

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(app_log_group(cfg))
        t.add_resource(container_insights_log_group(cfg))
        for name in METRIC_FILTERS:
            t.add_resource(metric_filter(cfg, name))
        for name, query in QUERIES.items():
            t.add_resource(query_definition(cfg, name, query))
        for rule in sampling_rules(cfg):
            t.add_resource(rule)
        t.add_resource(xray_group(cfg))

        output(t, "AppLogGroupName", Ref("AppLogGroup"), "The application's log group")
        output(t, "AppLogGroupArn", GetAtt("AppLogGroup", "Arn"), "ARN of the application's log group (ends in :*)")
        output(t, "ContainerInsightsLogGroupName", Ref("ContainerInsightsLogGroup"),
               "Container Insights performance log group of the cluster")
        output(t, "MetricNamespace", metrics.app_namespace(cfg.env), "CloudWatch namespace of the service's metrics")
        output(t, "XRayGroupArn", GetAtt("XRayGroup", "GroupARN"), "ARN of the service's X-Ray group")
        return t


BLUEPRINT = TracingBlueprint()
