"""The observability stacks (tracing, monitoring): what issue 5 asks of them, per environment."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from perfdeploy import metrics
from perfdeploy.blueprints import monitoring, tracing
from perfdeploy.config import load_config
from perfdeploy.lint import lint_templates

CONFIG = Path(__file__).resolve().parents[1] / "config"
ENVS = ("dev", "staging", "prod")
COMPONENTS = ("dynamodb", "kafka", "redis", "alb", "ecs", "app", "nat")
TOPIC_REFS = ({"Ref": "CriticalTopic"}, {"Ref": "WarningTopic"})
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@pytest.fixture(scope="module")
def configs():
    return {env: load_config(env, CONFIG) for env in ENVS}


@pytest.fixture(scope="module")
def bodies(configs):
    """(env, key) -> template YAML, each built once."""
    return {(env, key): bp.build(configs[env]).to_yaml()
            for env in ENVS for key, bp in (("tracing", tracing.BLUEPRINT), ("monitoring", monitoring.BLUEPRINT))}


@pytest.fixture(scope="module")
def docs(configs):
    """(env, key) -> the template as a plain dict (what CloudFormation receives)."""
    return {(env, key): bp.build(configs[env]).to_dict()
            for env in ENVS for key, bp in (("tracing", tracing.BLUEPRINT), ("monitoring", monitoring.BLUEPRINT))}


def resources_of(doc: dict, *types: str) -> dict[str, dict]:
    return {lid: r for lid, r in doc["Resources"].items() if r["Type"] in types}


def alarms(doc: dict) -> dict[str, dict]:
    """Logical id -> properties of every metric alarm."""
    return {lid: r["Properties"] for lid, r in resources_of(doc, "AWS::CloudWatch::Alarm").items()}


def alarm_named(doc: dict, env: str, what: str) -> dict:
    name = f"{env}-performance-mgmt-{what}"
    found = [p for p in alarms(doc).values() if p["AlarmName"] == name]
    assert len(found) == 1, f"no alarm named {name}"
    return found[0]


def component(env: str, alarm_name: str) -> str:
    return alarm_name.removeprefix(f"{env}-performance-mgmt-").split("-")[0]


def metric_uses(props: dict) -> list[tuple[object, str, list[str]]]:
    """(namespace, metric name, dimension names) of every metric an alarm reads."""
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"], [d["Name"] for d in props.get("Dimensions", [])])]
    found = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            m = query["MetricStat"]["Metric"]
            found.append((m["Namespace"], m["MetricName"], [d["Name"] for d in m.get("Dimensions", [])]))
    return found


def dashboard_text(props: dict) -> tuple[str, dict]:
    body = props["DashboardBody"]["Fn::Sub"]
    return (body, {}) if isinstance(body, str) else (body[0], body[1])


def dashboard_json(props: dict, substituted: bool = True) -> dict:
    """The body as CloudWatch will read it (placeholders filled in), or with the placeholders kept."""
    text, _ = dashboard_text(props)
    return json.loads(PLACEHOLDER.sub("value-of-placeholder", text) if substituted else text)


def dashboard_metric_uses(body: dict, env: str) -> list[tuple[str, str, list[str]]]:
    found = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                continue  # a math expression row
            namespace = metrics.app_namespace(env) if row[0] == "${MetricNamespace}" else row[0]
            plain = [item for item in row if not isinstance(item, dict)]
            found.append((namespace, plain[1], plain[2::2]))
    return found


# Alarms -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_every_component_has_alarms(docs, env):
    names = [p["AlarmName"] for p in alarms(docs[(env, "monitoring")]).values()]
    covered = {component(env, n) for n in names}
    assert set(COMPONENTS) <= covered, f"no alarms for {set(COMPONENTS) - covered}"


@pytest.mark.parametrize("env", ENVS)
def test_at_least_15_alarms_per_environment(docs, env):
    assert len(alarms(docs[(env, "monitoring")])) >= 15


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_notifies_a_topic_and_only_paging_alarms_notify_recovery(docs, env):
    every = resources_of(docs[(env, "monitoring")], "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
    for lid, res in every.items():
        props = res["Properties"]
        assert props["AlarmActions"] and all(a in TOPIC_REFS for a in props["AlarmActions"]), lid
        # OK goes to the pager only (it resolves the incident); a warning's OK would be one mail per alarm.
        pages = props["AlarmActions"] == [{"Ref": "CriticalTopic"}]
        assert props.get("OKActions") == (props["AlarmActions"] if pages else None), lid


@pytest.mark.parametrize("env", ENVS)
def test_one_incident_pages_once_the_composite_pages_and_its_children_warn(docs, env):
    from perfdeploy.blueprints.monitoring import SERVICE_UNHEALTHY_CHILDREN

    doc = docs[(env, "monitoring")]
    composite = doc["Resources"]["ServiceUnhealthyAlarm"]["Properties"]
    assert composite["AlarmActions"] == composite["OKActions"] == [{"Ref": "CriticalTopic"}]
    for child in SERVICE_UNHEALTHY_CHILDREN:
        assert f'ALARM("${{{child}}}")' in composite["AlarmRule"]["Fn::Sub"]
        props = doc["Resources"][child]["Properties"]
        assert props["AlarmActions"] == [{"Ref": "WarningTopic"}] and "OKActions" not in props, child


@pytest.mark.parametrize("env", ENVS)
def test_the_first_deploy_sends_ok_for_a_handful_of_alarms_not_dozens(docs, env):
    every = resources_of(docs[(env, "monitoring")], "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
    with_ok = [lid for lid, res in every.items() if res["Properties"].get("OKActions")]
    assert len(every) > 30 and len(with_ok) <= len(every) // 4, with_ok


@pytest.mark.parametrize("env", ENVS)
def test_alarm_names_are_prefixed_unique_and_say_their_severity(docs, env):
    every = resources_of(docs[(env, "monitoring")], "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
    names = [r["Properties"]["AlarmName"] for r in every.values()]
    assert len(set(names)) == len(names)
    assert all(n.startswith(f"{env}-performance-mgmt-") for n in names)
    for res in every.values():
        props = res["Properties"]
        severity = "critical" if props["AlarmActions"] == [{"Ref": "CriticalTopic"}] else "warning"
        assert props["AlarmDescription"].startswith(f"[{severity}]"), props["AlarmName"]


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_chooses_its_missing_data_treatment(docs, env):
    doc = docs[(env, "monitoring")]
    assert all("TreatMissingData" in p for p in alarms(doc).values())
    # Sparse counters: no datapoint means nothing went wrong.
    assert alarm_named(doc, env, "alb-5xx")["TreatMissingData"] == "notBreaching"
    # Task counts arrive every minute for a live service: silence is an outage.
    assert alarm_named(doc, env, "ecs-running-tasks-below-desired")["TreatMissingData"] == "breaching"


# (alarm name without prefix, Thresholds field) for the alarms whose threshold is one config value.
THRESHOLD_WIRING = [
    ("ecs-cpu-warning", "ecs_cpu_warning"), ("ecs-cpu-critical", "ecs_cpu_critical"),
    ("ecs-memory-warning", "ecs_memory_warning"), ("ecs-memory-critical", "ecs_memory_critical"),
    ("app-error-rate-warning", "error_rate_warning"), ("app-error-rate-critical", "error_rate_critical"),
    ("alb-latency-p99-warning", "latency_p99_warning_seconds"),
    ("alb-latency-p99-critical", "latency_p99_critical_seconds"),
    ("alb-5xx", "alb_5xx_count"), ("alb-target-5xx", "target_5xx_count"),
    ("alb-rejected-connections", "rejected_connections"), ("alb-unhealthy-hosts", "unhealthy_hosts"),
    ("kafka-broker-1-cpu", "kafka_cpu_percent"), ("kafka-broker-2-disk", "kafka_disk_percent"),
    ("kafka-broker-3-heap", "kafka_heap_percent"),
    ("kafka-broker-1-under-replicated", "kafka_under_replicated_partitions"),
    ("kafka-offline-partitions", "kafka_offline_partitions"),
    ("redis-001-engine-cpu", "redis_cpu_percent"), ("redis-001-memory", "redis_memory_percent"),
    ("redis-001-connections", "redis_connections"), ("redis-001-evictions", "redis_evictions"),
    ("redis-002-replication-lag", "redis_replication_lag_seconds"),
    ("dynamodb-reviews-read-throttles", "dynamodb_throttles"),
    ("dynamodb-goals-write-throttles", "dynamodb_throttles"),
    ("dynamodb-review-cycles-system-errors", "dynamodb_system_errors"),
    ("nat-3-port-allocation-errors", "nat_port_errors"),
]


@pytest.mark.parametrize(("what", "field"), THRESHOLD_WIRING)
def test_thresholds_come_from_the_config(configs, docs, what, field):
    expected = getattr(configs["prod"].monitoring.thresholds, field)
    assert alarm_named(docs[("prod", "monitoring")], "prod", what)["Threshold"] == expected


def test_an_overridden_threshold_reaches_the_template(tmp_path):
    config_dir = tmp_path / "config"
    shutil.copytree(CONFIG, config_dir)
    staging = yaml.safe_load((config_dir / "staging.yaml").read_text())
    staging["monitoring"]["thresholds"] = {"ecs_cpu_critical": 91, "error_rate_min_requests": 3}
    (config_dir / "staging.yaml").write_text(yaml.safe_dump(staging))

    doc = monitoring.BLUEPRINT.build(load_config("staging", config_dir)).to_dict()

    assert alarm_named(doc, "staging", "ecs-cpu-critical")["Threshold"] == 91
    assert alarm_named(doc, "staging", "ecs-cpu-warning")["Threshold"] == 85  # the default stays
    critical_rate = alarm_named(doc, "staging", "app-error-rate-critical")["Metrics"][-1]["Expression"]
    assert critical_rate.startswith("IF(requests >= 3,")


def test_error_rate_is_metric_math_over_the_tracing_metrics(docs):
    props = alarm_named(docs[("prod", "monitoring")], "prod", "app-error-rate-critical")
    stats = {q["Id"]: q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q}
    assert {m["MetricName"] for m in stats.values()} == {"ServerErrors", "Requests"}
    assert all(m["Namespace"] == {"Ref": "MetricNamespace"} for m in stats.values())
    result = props["Metrics"][-1]
    assert result["ReturnData"] is True and "100 * errors / requests" in result["Expression"]
    assert props["Threshold"] == 5 and props["ComparisonOperator"] == "GreaterThanThreshold"


def test_running_tasks_below_desired_compares_container_insights_counts(docs):
    props = alarm_named(docs[("prod", "monitoring")], "prod", "ecs-running-tasks-below-desired")
    stats = {q["Id"]: q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q}
    assert {m["Namespace"] for m in stats.values()} == {"ECS/ContainerInsights"}
    assert {stats["desired"]["MetricName"], stats["running"]["MetricName"]} == {"DesiredTaskCount",
                                                                                "RunningTaskCount"}
    assert props["Metrics"][-1]["Expression"] == "desired - running"


@pytest.mark.parametrize(("env", "nats"), [("dev", 1), ("staging", 3), ("prod", 3)])
def test_one_port_allocation_alarm_per_nat_gateway(docs, env, nats):
    found = [p for p in alarms(docs[(env, "monitoring")]).values() if p.get("MetricName") == "ErrorPortAllocation"]
    assert len(found) == nats
    selected = sorted(p["Dimensions"][0]["Value"]["Fn::Select"][0] for p in found)
    assert selected == list(range(nats))


@pytest.mark.parametrize("env", ENVS)
def test_redis_alarms_watch_every_node_and_replication_lag_only_with_replicas(configs, docs, env):
    nodes = configs[env].redis.nodes
    redis = [p for p in alarms(docs[(env, "monitoring")]).values() if p.get("Namespace") == "AWS/ElastiCache"]
    watched = {p["Dimensions"][0]["Value"]["Fn::Sub"] for p in redis}
    assert watched == {f"${{ReplicationGroupId}}-{n:03d}" for n in range(1, nodes + 1)}
    lag = [p for p in redis if p["MetricName"] == "ReplicationLag"]
    assert len(lag) == (nodes if nodes > 1 else 0)


@pytest.mark.parametrize("env", ENVS)
def test_dynamodb_alarms_per_table(configs, docs, env):
    names = {p["AlarmName"] for p in alarms(docs[(env, "monitoring")]).values()}
    for table in configs[env].dynamodb.tables:
        slug = monitoring.table_slug(table.name)
        for kind in ("read-throttles", "write-throttles", "system-errors"):
            assert f"{env}-performance-mgmt-dynamodb-{slug}-{kind}" in names


# The composite alarm -------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_service_unhealthy_references_existing_alarms(docs, env):
    doc = docs[(env, "monitoring")]
    composite = resources_of(doc, "AWS::CloudWatch::CompositeAlarm")["ServiceUnhealthyAlarm"]["Properties"]
    rule = composite["AlarmRule"]["Fn::Sub"]
    children = PLACEHOLDER.findall(rule)
    assert children and set(children) <= set(alarms(doc))
    assert rule == " OR ".join(f'ALARM("${{{c}}}")' for c in children)
    names = {alarms(doc)[c]["AlarmName"].removeprefix(f"{env}-performance-mgmt-") for c in children}
    assert {"alb-5xx", "alb-latency-p99-critical", "ecs-running-tasks-below-desired"} <= names
    assert composite["AlarmActions"] == [{"Ref": "CriticalTopic"}]


def test_the_composite_alarm_is_published_for_the_rollback_trigger(docs):
    outputs = docs[("prod", "monitoring")]["Outputs"]
    assert outputs["ServiceUnhealthyAlarmArn"]["Value"] == {"Fn::GetAtt": ["ServiceUnhealthyAlarm", "Arn"]}
    assert {"CriticalTopicArn", "WarningTopicArn", "ServiceUnhealthyAlarmName", "OverviewDashboardName",
            "DataDashboardName"} <= set(outputs)


# Topics -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_topics_are_encrypted_with_the_notifications_key_and_subscribed(configs, docs, env):
    doc, cfg = docs[(env, "monitoring")], configs[env]
    topics = resources_of(doc, "AWS::SNS::Topic")
    assert set(topics) == {"CriticalTopic", "WarningTopic"}
    assert all(t["Properties"]["KmsMasterKeyId"] == {"Ref": "NotificationsKeyArn"} for t in topics.values())
    subs = [r["Properties"] for r in resources_of(doc, "AWS::SNS::Subscription").values()]
    for topic in topics:
        emails = {s["Endpoint"] for s in subs if s["TopicArn"] == {"Ref": topic} and s["Protocol"] == "email"}
        assert emails == set(cfg.monitoring.alarm_emails)
    paging = [s for s in subs if s["Protocol"] == "https"]
    if cfg.monitoring.paging_url:
        assert [(s["TopicArn"], s["Endpoint"]) for s in paging] == [({"Ref": "CriticalTopic"},
                                                                      cfg.monitoring.paging_url)]
    else:
        assert paging == []


def test_cloudwatch_may_publish_to_the_topics(docs):
    policy = next(iter(resources_of(docs[("prod", "monitoring")], "AWS::SNS::TopicPolicy").values()))
    allow = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow == [{"Sid": "AllowCloudWatchAlarms", "Effect": "Allow",
                      "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": ["sns:Publish"],
                      "Resource": [{"Ref": "CriticalTopic"}, {"Ref": "WarningTopic"}],
                      "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]


# Dashboards and the metric catalogue ---------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_dashboards_are_valid_json_with_known_placeholders(docs, env):
    doc = docs[(env, "monitoring")]
    dashboards = resources_of(doc, "AWS::CloudWatch::Dashboard")
    assert set(dashboards) == {"OverviewDashboard", "DataDashboard"}
    for lid, res in dashboards.items():
        text, variables = dashboard_text(res["Properties"])
        body = dashboard_json(res["Properties"])
        assert body["widgets"], lid
        known = (set(doc["Parameters"]) | set(variables) | {"AWS::Region"}
                 | {f"{r}.Arn" for r in doc["Resources"]})
        assert set(PLACEHOLDER.findall(text)) <= known, lid


@pytest.mark.parametrize("env", ENVS)
def test_every_metric_an_alarm_or_dashboard_reads_is_in_the_catalogue(docs, env):
    doc = docs[(env, "monitoring")]
    uses = []
    for props in alarms(doc).values():
        for namespace, name, dims in metric_uses(props):
            uses.append((metrics.app_namespace(env) if namespace == {"Ref": "MetricNamespace"} else namespace,
                         name, dims))
    for res in resources_of(doc, "AWS::CloudWatch::Dashboard").values():
        uses += dashboard_metric_uses(dashboard_json(res["Properties"], substituted=False), env)
    assert len(uses) > 50
    for namespace, name, dims in uses:
        metrics.metric(namespace, name)  # raises UnknownMetric
        for dim in dims:
            metrics.dimension(namespace, dim)


def test_a_misspelt_metric_name_raises():
    with pytest.raises(metrics.UnknownMetric, match="did you mean 'CpuUser'"):
        metrics.metric("AWS/Kafka", "CpuUsr")
    with pytest.raises(metrics.UnknownMetric, match="did you mean 'Cluster Name'"):
        metrics.dimension("AWS/Kafka", "ClusterName")
    with pytest.raises(metrics.UnknownMetric, match="unknown CloudWatch namespace"):
        metrics.metric("AWS/Kafak", "CpuUser")
    with pytest.raises(metrics.UnknownMetric):
        monitoring.watched("AWS/ApplicationELB", "HTTPCode_ELB_5xx_Count", {"LoadBalancer": "x"})


def test_every_catalogue_namespace_names_its_aws_documentation():
    for entry in metrics.NAMESPACES.values():
        assert entry.source.startswith("https://docs.aws.amazon.com/"), entry.name
        assert entry.metrics


def test_the_tracing_metrics_are_the_catalogued_service_metrics(docs):
    filters = resources_of(docs[("prod", "tracing")], "AWS::Logs::MetricFilter")
    published = {r["Properties"]["MetricTransformations"][0]["MetricName"] for r in filters.values()}
    assert published == metrics.namespace(metrics.app_namespace("prod")).metrics


# tracing --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_log_groups_have_retention_and_the_logs_key(configs, docs, env):
    groups = resources_of(docs[(env, "tracing")], "AWS::Logs::LogGroup")
    assert "AppLogGroup" in groups
    assert groups["AppLogGroup"]["Properties"]["LogGroupName"] == f"/ecs/{env}-performance-mgmt"
    for lid, res in groups.items():
        assert res["Properties"]["RetentionInDays"] == configs[env].logs.retention_days, lid
        assert res["Properties"]["KmsKeyId"] == {"Ref": "LogsKeyArn"}, lid
        retained = res["DeletionPolicy"] == "RetainExceptOnCreate"
        assert retained == (env in ("staging", "prod")), lid


@pytest.mark.parametrize("env", ENVS)
def test_metric_filters_publish_into_the_environments_namespace(docs, env):
    doc = docs[(env, "tracing")]
    transforms = {r["Properties"]["MetricTransformations"][0]["MetricName"]: r["Properties"]["MetricTransformations"][0]
                  for r in resources_of(doc, "AWS::Logs::MetricFilter").values()}
    assert {t["MetricNamespace"] for t in transforms.values()} == {f"PerformanceMgmt/{env}"}
    assert doc["Outputs"]["MetricNamespace"]["Value"] == f"PerformanceMgmt/{env}"
    assert transforms["RequestLatency"]["MetricValue"] == "$.latencyMs"
    assert "DefaultValue" not in transforms["RequestLatency"]  # a default 0 ms would drag the percentiles down
    assert all(transforms[n]["DefaultValue"] == 0 for n in ("Requests", "Errors", "ServerErrors"))


def test_logs_insights_queries_read_the_application_log_group(docs):
    queries = resources_of(docs[("prod", "tracing")], "AWS::Logs::QueryDefinition")
    names = {q["Properties"]["Name"].rsplit("/", 1)[-1] for q in queries.values()}
    assert names == {"recent-errors", "slowest-requests", "error-rate-by-route"}
    assert all(q["Properties"]["LogGroupNames"] == [{"Ref": "AppLogGroup"}] for q in queries.values())


@pytest.mark.parametrize("env", ENVS)
def test_xray_samples_at_the_environments_rate_and_names_fit(configs, docs, env):
    rules = {lid: r["Properties"]["SamplingRule"]
             for lid, r in resources_of(docs[(env, "tracing")], "AWS::XRay::SamplingRule").items()}
    assert rules["AppSamplingRule"]["FixedRate"] == configs[env].tracing.sampling_rate
    assert rules["HealthCheckSamplingRule"]["FixedRate"] == 0
    assert rules["HealthCheckSamplingRule"]["Priority"] < rules["AppSamplingRule"]["Priority"]
    assert all(len(r["RuleName"]) <= 32 for r in rules.values())


def test_xray_group_has_insights_enabled(docs):
    group = resources_of(docs[("prod", "tracing")], "AWS::XRay::Group")["XRayGroup"]["Properties"]
    assert group["InsightsConfiguration"]["InsightsEnabled"] is True
    assert group["FilterExpression"] == 'service("prod-performance-mgmt")'


# Lint ------------------------------------------------------------------------------------------------------

def test_observability_templates_pass_the_lint_gate(configs, bodies):
    templates = {f"{env}/{key}.yaml": body for (env, key), body in bodies.items()}
    failing = [f for f in lint_templates(templates, configs["prod"].region, use_cache=False) if f.fails]
    assert failing == []
