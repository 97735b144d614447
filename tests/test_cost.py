"""`perfdeploy cost`: per-stack monthly figures from the rendered templates and the shipped price table."""

from __future__ import annotations

import json
import shutil
from datetime import date
from functools import cache
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from fakes import FakeAws, FakeCloudFormation, tiny_environment
from test_engine import deploy

from perfdeploy.cli import cli
from perfdeploy.config import load_config
from perfdeploy.cost.diff import plan_cost
from perfdeploy.cost.estimate import estimate, estimate_rendered
from perfdeploy.cost.prices import load_prices
from perfdeploy.deploy.engine import DeployOptions
from perfdeploy.deploy.plan import make_plan
from perfdeploy.render import render_env

ROOT = Path(__file__).parent.parent


def cost_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def per_stack(data: dict) -> dict[str, float]:
    return {s["key"]: s["monthly"] for s in data["stacks"]}


@cache
def shipped(env: str) -> dict[str, float]:
    """Per-stack figures of the shipped config (what an unedited copy gives)."""
    return per_stack(cost_json("cost", env))


@pytest.fixture
def config_dir(tmp_path):
    """A copy of the shipped config the test may edit."""
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target)
    return target


def edit(config_dir: Path, env: str, section: str, **values) -> None:
    path = config_dir / f"{env}.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data))


def test_the_dev_msk_stack_costs_what_the_hand_computation_gives():
    # 3 kafka.t3.small brokers: 3 x 730 h x $0.0456        = $99.864
    # EBS: 3 brokers x 100 GB x $0.10 per GB-month          = $30.000
    # broker logs: 3 brokers x 1 GB x $0.50 ingested        = $1.500
    # stored: 3 GB x 0.15 compressed x (30 / 30.4167) months x $0.03 = $0.0133
    msk = estimate_rendered(render_env(load_config("dev"))).stack("msk")
    assert round(msk.monthly, 2) == 131.38
    assert {line.item: round(line.monthly, 3) for line in msk.lines} == {
        "kafka.t3.small brokers": 99.864, "broker storage (EBS)": 30.0,
        "Kafka broker log ingestion": 1.5, "Kafka broker log storage": 0.013}


def test_the_dev_ecs_stack_is_the_fargate_price_of_one_task():
    # 1 task x 1 vCPU x 730 h x $0.04048 + 1 task x 2 GB x 730 h x $0.004445 = $29.5504 + $6.4897
    ecs = estimate_rendered(render_env(load_config("dev"))).stack("ecs")
    assert round(ecs.monthly, 2) == 36.04


def test_cost_json_has_every_stack_and_a_total_that_is_their_sum():
    data = cost_json("cost", "dev")
    assert list(per_stack(data)) == [s.key for s in render_env(load_config("dev")).stacks]
    assert data["total_monthly"] == pytest.approx(sum(per_stack(data).values()), abs=0.05)
    assert data["complete"] is True
    assert data["prices_as_of"] == load_prices().as_of
    assert data["workload"] == {"tasks": 1, "requests_per_month": 5_256_000, "zones": 3}
    assert data["assumptions"]["requests_per_second_per_task"] == 2
    assert data["not_included"] and data["sources"]["msk"].startswith("https://aws.amazon.com/msk/pricing")


@pytest.mark.parametrize(("env", "section", "values", "grows"), [
    ("dev", "kafka", {"broker_type": "kafka.m5.large"}, {"msk"}),
    ("dev", "kafka", {"ebs_gib": 200}, {"msk"}),
    ("dev", "redis", {"node_type": "cache.r6g.large"}, {"elasticache"}),
    ("staging", "redis", {"nodes": 3}, {"elasticache", "monitoring"}),  # an alarm per node
    ("dev", "network", {"nat": "per_az"}, {"network", "monitoring"}),  # a port-error alarm per gateway
    ("dev", "ecs", {"cpu": 2048, "memory": 4096}, {"ecs"}),
])
def test_figures_follow_the_config_sizes(config_dir, env, section, values, grows):
    before = shipped(env)
    edit(config_dir, env, section, **values)
    after = per_stack(cost_json("--config-dir", str(config_dir), "cost", env))
    assert {k for k in after if after[k] > before[k]} == grows
    assert {k for k in after if after[k] < before[k]} == set()


def test_more_tasks_cost_more_fargate_and_more_traffic_everywhere_it_flows(config_dir):
    before = shipped("dev")
    edit(config_dir, "dev", "ecs", min=3)  # the count auto scaling starts from and keeps
    after = per_stack(cost_json("--config-dir", str(config_dir), "cost", "dev"))
    assert after["ecs"] == pytest.approx(3 * before["ecs"], abs=0.02)
    assert {"alb", "dynamodb", "tracing", "network"} <= {k for k in after if after[k] > before[k]}


def test_a_broker_type_the_table_does_not_list_is_reported_not_guessed(config_dir):
    edit(config_dir, "dev", "kafka", broker_type="kafka.m7g.large")
    data = cost_json("--config-dir", str(config_dir), "cost", "dev")
    assert data["complete"] is False
    brokers = next(line for s in data["stacks"] if s["key"] == "msk" for line in s["lines"]
                   if "brokers" in line["item"])
    assert brokers["monthly"] is None and "kafka.m7g.large is not in the price table" in brokers["note"]
    assert any("kafka.m7g.large" in note for note in data["notes"])


def test_the_human_output_names_the_total_and_the_price_date(config_dir):
    result = CliRunner().invoke(cli, ["cost", "prod"])
    assert result.exit_code == 0
    assert "total" in result.stderr and f"prices of {load_prices().as_of}" in result.stderr
    assert "not included: data transfer" in result.stderr


def test_an_unknown_environment_is_exit_2():
    result = CliRunner().invoke(cli, ["cost", "qa"])
    assert result.exit_code == 2 and "unknown environment 'qa'" in result.stderr


def template(*resources: tuple[str, str, dict]) -> dict:
    return {"Resources": {lid: {"Type": kind, "Properties": props} for lid, kind, props in resources}}


def service(desired: int | None = None, strategy: list | None = None) -> tuple[str, str, dict]:
    props = {"TaskDefinition": {"Ref": "Task"}, "CapacityProviderStrategy": strategy or []}
    if desired is not None:
        props["DesiredCount"] = desired
    return ("Service", "AWS::ECS::Service", props)


TASK = ("Task", "AWS::ECS::TaskDefinition", {"Cpu": "1024", "Memory": "2048"})
SCALING = ("Target", "AWS::ApplicationAutoScaling::ScalableTarget",
           {"MinCapacity": 4, "ScalableDimension": "ecs:service:DesiredCount"})


def test_a_count_left_to_auto_scaling_is_priced_at_the_scaling_minimum():
    result = estimate("prod", "us-east-1", {"ecs": template(TASK, service(), SCALING)})
    assert result.workload.tasks == 4
    assert round(result.stack("ecs").monthly, 2) == round(4 * 36.0401, 2)


def test_tasks_on_fargate_spot_are_named_and_priced_on_demand():
    strategy = [{"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
                {"CapacityProvider": "FARGATE_SPOT", "Base": 0, "Weight": 3}]
    lines = estimate("dev", "us-east-1", {"ecs": template(TASK, service(5, strategy))}).stack("ecs").lines
    assert lines[0].note.startswith("3 of 5 tasks on Fargate Spot, priced on demand")
    assert lines[0].monthly == pytest.approx(5 * 730 * 0.04048)


def test_valkey_nodes_are_priced_below_redis_nodes():
    def group(engine):
        return template(("Redis", "AWS::ElastiCache::ReplicationGroup",
                         {"Engine": engine, "CacheNodeType": "cache.r6g.large", "NumCacheClusters": 2}))
    redis = estimate("dev", "us-east-1", {"elasticache": group("redis")}).total
    valkey = estimate("dev", "us-east-1", {"elasticache": group("valkey")}).total
    assert redis == pytest.approx(2 * 730 * 0.206)
    assert valkey == pytest.approx(redis * 0.8, rel=1e-3)


def test_a_resource_type_without_a_price_makes_the_estimate_incomplete():
    result = estimate("dev", "us-east-1", {"data": template(("Db", "AWS::RDS::DBInstance", {}))})
    assert not result.complete
    assert result.notes() == ["data: Db (AWS::RDS::DBInstance): AWS::RDS::DBInstance is not in the price table "
                              "(perfdeploy/cost/)"]


def test_another_region_is_said_to_be_priced_at_us_east_1():
    assert estimate("dev", "eu-west-1", {}).notes() == ["prices are us-east-1's; dev runs in eu-west-1, where "
                                                        "they differ"]


def test_usage_assumptions_can_be_changed_and_unknown_ones_are_refused():
    busier = load_prices().with_usage(requests_per_second_per_task=20)
    base = estimate_rendered(render_env(load_config("dev")))
    busy = estimate_rendered(render_env(load_config("dev")), busier)
    assert busy.stack("alb").monthly > base.stack("alb").monthly
    assert busy.stack("msk").monthly == base.stack("msk").monthly  # brokers do not depend on traffic
    with pytest.raises(KeyError, match="requests_per_hour"):
        load_prices().with_usage(requests_per_hour=1)


def test_the_price_table_is_dated_and_every_service_names_its_source_page():
    prices = load_prices()
    assert date.fromisoformat(prices.as_of) <= date.today()
    assert prices.region == "us-east-1"
    assert set(prices.prices) <= set(prices.sources)
    assert all(url.startswith("https://aws.amazon.com/") for url in prices.sources.values())


def kafka_env(broker_type: str):
    cluster = {"Type": "AWS::MSK::Cluster", "Properties": {
        "NumberOfBrokerNodes": 3, "BrokerNodeGroupInfo": {"InstanceType": broker_type}}}
    return tiny_environment({"data": [], "app": ["data"]}, extra={"data": {"Kafka": cluster}})


def test_plan_shows_the_cost_difference_of_a_bigger_broker_type():
    cfn = FakeCloudFormation()
    deploy(kafka_env("kafka.m5.large"), cfn)
    rendered = kafka_env("kafka.m5.xlarge")
    plan = make_plan(FakeAws(cfn), rendered, DeployOptions())
    change = plan_cost(FakeAws(cfn), rendered, plan)
    assert change.difference == pytest.approx(3 * 730 * (0.42 - 0.21))
    assert change.to_json()["stacks"] == {"data": {"before": 459.9, "after": 919.8, "difference": 459.9}}
    assert change.summary().startswith("estimated monthly cost: $459.90 -> $919.80 (+$459.90: data +$459.90")


def test_plan_of_a_new_environment_counts_everything_as_new_cost():
    cfn = FakeCloudFormation()
    rendered = kafka_env("kafka.m5.large")
    change = plan_cost(FakeAws(cfn), rendered, make_plan(FakeAws(cfn), rendered, DeployOptions()))
    assert (change.before.total, round(change.after.total, 2)) == (0, 459.9)


def test_the_cost_table_in_the_runbook_is_what_perfdeploy_cost_says():
    """docs/operations.md quotes the estimates; a template or price change that moves them must update it."""
    text = (ROOT / "docs" / "operations.md").read_text()
    table = text[text.index("| stack | dev | staging | prod |"):text.index("| the first plan's estimate |")]
    quoted = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip().strip("*").strip("$").replace(",", "") for c in row.strip("|").split("|")]
        quoted[cells[0]] = [float(c) for c in cells[1:]]
    for i, env in enumerate(("dev", "staging", "prod")):
        data = cost_json("cost", env)
        actual = {**per_stack(data), "total": data["total_monthly"]}
        assert {k: v[i] for k, v in quoted.items()} == actual, \
            f"docs/operations.md: the {env} column is stale; update it from 'perfdeploy cost {env}'"
