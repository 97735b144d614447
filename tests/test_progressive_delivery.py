"""Progressive delivery (issue 18): the deployment strategy in config, what the alb, iam and ecs stacks
build for each strategy, and that every strategy's templates pass the lint gate."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

import pytest
import yaml

from perfdeploy.blueprints import alb, ecs, iam, monitoring, network
from perfdeploy.config import DeploymentConfig, LinearConfig, load_config
from perfdeploy.errors import ConfigError
from perfdeploy.iam_permissions import takes_no_resource
from perfdeploy.lint import lint_templates
from perfdeploy.render import render_env

CONFIG = Path(__file__).resolve().parents[1] / "config"
STRATEGIES = ("rolling", "blue_green", "canary", "linear")
PROGRESSIVE = STRATEGIES[1:]


def with_strategy(env: str, strategy: str, **settings):
    """An environment's config with another deployment strategy, as if config/<env>.yaml said so."""
    cfg = load_config(env, CONFIG)
    return cfg.model_copy(update={"deployment": DeploymentConfig(strategy=strategy, **settings)})


def resources(template, rtype: str) -> dict[str, dict]:
    doc = template.to_dict()
    return {lid: r.get("Properties", {}) for lid, r in doc["Resources"].items() if r["Type"] == rtype}


def service(cfg) -> dict:
    [props] = resources(ecs.BLUEPRINT.build(cfg), "AWS::ECS::Service").values()
    return props


# Config -------------------------------------------------------------------------------------------------

def test_dev_rolls_and_staging_and_prod_deploy_a_canary():
    strategies = {env: load_config(env, CONFIG).deployment for env in ("dev", "staging", "prod")}
    assert strategies["dev"].strategy == "rolling"
    for env in ("staging", "prod"):
        deployment = strategies[env]
        assert (deployment.strategy, deployment.canary.percent, deployment.canary.bake_minutes) == ("canary", 10, 10)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    for path in CONFIG.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def bad(config_dir: Path, deployment: dict) -> ConfigError:
    path = config_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text())
    data["deployment"] = deployment
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config("staging", config_dir)
    assert caught.value.file == str(path)
    return caught.value


@pytest.mark.parametrize("percent", [0.05, 0, 100.5, 10.05])
def test_a_canary_percent_ecs_does_not_take_is_refused(config_dir, percent):
    error = bad(config_dir, {"strategy": "canary", "canary": {"percent": percent}})
    assert error.field == "deployment.canary.percent"


def test_a_canary_whose_bake_times_pass_33_hours_is_refused_with_the_sum(config_dir):
    error = bad(config_dir, {"strategy": "canary", "bake_time_minutes": 1440, "canary": {"bake_minutes": 600}})
    assert error.field == "deployment.canary.bake_minutes"
    assert "2040 minutes, over the 1980 minutes (33 hours)" in str(error)
    assert "bake_time_minutes 1440 + canary.bake_minutes 600" in str(error)


@pytest.mark.parametrize("step, steps", [(10, 9), (11, 9), (50, 1), (3, 33), (33.3, 3), (100, 0), (12.5, 7)])
def test_linear_steps_are_counted_as_cloudformation_counts_them(step, steps):
    assert LinearConfig(step_percent=step).steps == steps


def test_linear_steps_whose_bake_times_do_not_fit_33_hours_are_refused(config_dir):
    # 100 / 10 - 1 = 9 steps: 200 + 9 x 200 = 2000 minutes
    error = bad(config_dir, {"strategy": "linear", "bake_time_minutes": 200,
                             "linear": {"step_percent": 10, "step_bake_minutes": 200}})
    assert error.field == "deployment.linear.step_bake_minutes"
    assert "2000 minutes" in str(error) and "x 9 steps of 10.0%" in str(error)
    at_the_limit = DeploymentConfig(strategy="linear", bake_time_minutes=180,
                                    linear=LinearConfig(step_percent=10, step_bake_minutes=200))
    assert at_the_limit.total_minutes == 33 * 60  # exactly 33 hours is accepted


@pytest.mark.parametrize("step", [2.9, 10.05, 101])
def test_a_linear_step_ecs_does_not_take_is_refused(config_dir, step):
    error = bad(config_dir, {"strategy": "linear", "linear": {"step_percent": step}})
    assert error.field == "deployment.linear.step_percent"


@pytest.mark.parametrize("deployment, field, says", [
    ({"strategy": "canary", "linear": {"step_percent": 10}}, "deployment.linear", "strategy is canary"),
    ({"strategy": "blue_green", "canary": {"percent": 5}}, "deployment.canary", "strategy is blue_green"),
    ({"strategy": "rolling", "test_listener": {"port": 8443}}, "deployment.test_listener", "no test listener"),
    ({"strategy": "canary", "test_listener": {"port": 443}}, "deployment.test_listener.port", "production"),
    ({"strategy": "canary", "test_listener": {"cidrs": ["0.0.0.0/0"]}}, "deployment.test_listener.cidrs",
     "internet"),
    ({"strategy": "canary", "bake_time_minutes": 1441}, "deployment.bake_time_minutes", "1440"),
    ({"strategy": "canary_release"}, "deployment.strategy", "canary"),
])
def test_combinations_ecs_or_cloudformation_would_reject_are_config_errors(config_dir, deployment, field, says):
    error = bad(config_dir, deployment)
    assert error.field == field and says in str(error)


# ecs: the deployment configuration per strategy ---------------------------------------------------------

@pytest.mark.parametrize("env", ["dev", "staging"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_rolls_back_on_the_composite_and_the_error_rate_alarm(env, strategy):
    cfg = with_strategy(env, strategy)
    deployment = service(cfg)["DeploymentConfiguration"]
    assert deployment["Strategy"] == strategy.upper()
    assert deployment["Alarms"] == {"AlarmNames": [f"{env}-performance-mgmt-service-unhealthy",
                                                   f"{env}-performance-mgmt-app-error-rate-critical"],
                                    "Enable": True, "Rollback": True}
    # The names are the monitoring stack's own alarms: the composite and the critical error rate.
    alarms = {**resources(monitoring.BLUEPRINT.build(cfg), "AWS::CloudWatch::Alarm"),
              **resources(monitoring.BLUEPRINT.build(cfg), "AWS::CloudWatch::CompositeAlarm")}
    by_name = {props["AlarmName"]: lid for lid, props in alarms.items()}
    assert [by_name[name] for name in deployment["Alarms"]["AlarmNames"]] == ["ServiceUnhealthyAlarm",
                                                                               "AppErrorRateCriticalAlarm"]


def test_the_first_deploy_needs_no_alarm_the_ecs_stack_names_them_without_an_edge_to_monitoring():
    rendered = render_env(with_strategy("staging", "canary"))
    manifest = rendered.stack("ecs").manifest
    assert "monitoring" not in manifest["depends_on"]
    assert not any(isinstance(v, dict) and v.get("stack") == "monitoring" for v in manifest["parameters"].values())
    assert manifest["rollout"] == {"cluster": "staging-performance-mgmt-cluster",
                                   "service": "staging-performance-mgmt-service",
                                   "strategy": "canary", "bake_time_minutes": 15}


def test_rolling_keeps_the_circuit_breaker_and_full_capacity():
    deployment = service(with_strategy("dev", "rolling"))["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (100, 200)
    assert "BakeTimeInMinutes" not in deployment  # a rolling bake time stretches CloudFormation's wait to 36 h


@pytest.mark.parametrize("strategy", PROGRESSIVE)
def test_progressive_strategies_bake_and_leave_the_circuit_breaker_to_rolling(strategy):
    deployment = service(with_strategy("staging", strategy))["DeploymentConfiguration"]
    assert deployment["BakeTimeInMinutes"] == 15  # ECS's default, written out
    assert "DeploymentCircuitBreaker" not in deployment


def test_canary_and_linear_carry_their_traffic_steps():
    canary = service(with_strategy("staging", "canary", bake_time_minutes=20,
                                   canary={"percent": 5.5, "bake_minutes": 30}))["DeploymentConfiguration"]
    assert canary["CanaryConfiguration"] == {"CanaryPercent": 5.5, "CanaryBakeTimeInMinutes": 30}
    assert canary["BakeTimeInMinutes"] == 20 and "LinearConfiguration" not in canary
    linear = service(with_strategy("staging", "linear", linear={"step_percent": 25, "step_bake_minutes": 4}))
    assert linear["DeploymentConfiguration"]["LinearConfiguration"] == {"StepPercent": 25.0,
                                                                        "StepBakeTimeInMinutes": 4}
    assert "CanaryConfiguration" not in linear["DeploymentConfiguration"]


# alb + ecs + iam: the alternate target group wiring -----------------------------------------------------

@pytest.mark.parametrize("strategy", PROGRESSIVE)
def test_the_service_is_wired_to_both_target_groups_the_rules_and_the_role(strategy):
    rendered = render_env(with_strategy("staging", strategy))
    [target] = service(with_strategy("staging", strategy))["LoadBalancers"]
    assert target["TargetGroupArn"] == {"Ref": "TargetGroupArn"}
    assert target["AdvancedConfiguration"] == {
        "AlternateTargetGroupArn": {"Ref": "AlternateTargetGroupArn"},
        "ProductionListenerRule": {"Ref": "ProductionListenerRuleArn"},
        "TestListenerRule": {"Ref": "TestListenerRuleArn"},
        "RoleArn": {"Ref": "EcsLoadBalancerRoleArn"}}
    chained = rendered.stack("ecs").manifest["parameters"]
    assert chained["AlternateTargetGroupArn"] == {"stack": "alb", "output": "AlternateTargetGroupArn"}
    assert chained["ProductionListenerRuleArn"] == {"stack": "alb", "output": "ProductionListenerRuleArn"}
    assert chained["TestListenerRuleArn"] == {"stack": "alb", "output": "TestListenerRuleArn"}
    assert chained["EcsLoadBalancerRoleArn"] == {"stack": "iam", "output": "EcsLoadBalancerRoleArn"}


@pytest.mark.parametrize("env, serving", [("staging", "HttpsListener"), ("dev", "HttpListener")])
def test_production_and_test_rules_forward_every_path_to_both_groups_weighted_100_0(env, serving):
    template = alb.BLUEPRINT.build(with_strategy(env, "blue_green"))
    groups = resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert set(groups) == {"TargetGroup", "AlternateTargetGroup"}
    same = {k: v for k, v in groups["TargetGroup"].items() if k != "Tags"}
    assert {k: v for k, v in groups["AlternateTargetGroup"].items() if k != "Tags"} == same
    rules = resources(template, "AWS::ElasticLoadBalancingV2::ListenerRule")
    assert rules["ProductionListenerRule"]["ListenerArn"] == {"Ref": serving}
    assert rules["TestListenerRule"]["ListenerArn"] == {"Ref": "TestListener"}
    for rule in rules.values():
        assert rule["Conditions"] == [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}]
        [action] = rule["Actions"]  # forward only: ECS fails a deployment on a rule that mixes action types
        assert action == {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": {"Ref": "TargetGroup"}, "Weight": 100},
            {"TargetGroupArn": {"Ref": "AlternateTargetGroup"}, "Weight": 0}]}}


def test_the_test_listener_takes_the_port_from_config_and_the_production_tls():
    template = alb.BLUEPRINT.build(with_strategy("staging", "canary", test_listener={"port": 9443}))
    listener = resources(template, "AWS::ElasticLoadBalancingV2::Listener")["TestListener"]
    production = resources(template, "AWS::ElasticLoadBalancingV2::Listener")["HttpsListener"]
    assert (listener["Port"], listener["Protocol"]) == (9443, "HTTPS")
    assert (listener["SslPolicy"], listener["Certificates"]) == (production["SslPolicy"], production["Certificates"])


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_test_listener_is_not_open_to_the_internet(env):
    cfg = with_strategy(env, "canary", test_listener={"port": 8443, "cidrs": ["198.51.100.0/24"]})
    template = alb.BLUEPRINT.build(cfg)
    [lb] = resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert lb["SecurityGroups"] == [{"Ref": "AlbSecurityGroupId"}, {"Ref": "TestListenerSecurityGroup"}]
    group = resources(template, "AWS::EC2::SecurityGroup")["TestListenerSecurityGroup"]
    rules = group["SecurityGroupIngress"]
    assert {(r["FromPort"], r["ToPort"]) for r in rules} == {(8443, 8443)}
    literal = [r["CidrIp"] for r in rules if isinstance(r["CidrIp"], str)]
    assert literal == ["198.51.100.0/24"]
    nats = [r["CidrIp"] for r in rules if not isinstance(r["CidrIp"], str)]
    assert len(nats) == (1 if cfg.network.nat == "single" else cfg.network.availability_zones)
    for index, cidr in enumerate(nats):  # one NAT gateway's Elastic IP each, as a /32
        assert cidr == {"Fn::Join": ["", [{"Fn::Select": [index, {"Fn::Split": [",", {"Ref": "NatPublicIps"}]}]},
                                          "/32"]]}
    assert not any(ipaddress.ip_network(c).prefixlen < 8 for c in literal)
    # ... and the production security group (network stack) does not open the test port at all.
    [alb_group] = [p for lid, p in resources(network.BLUEPRINT.build(cfg), "AWS::EC2::SecurityGroup").items()
                   if lid == "AlbSecurityGroup"]
    assert {r["FromPort"] for r in alb_group["SecurityGroupIngress"]} == {80, 443}


def test_rolling_adds_nothing_to_the_load_balancer_or_iam():
    cfg = with_strategy("staging", "rolling")
    assert set(resources(alb.BLUEPRINT.build(cfg), "AWS::ElasticLoadBalancingV2::TargetGroup")) == {"TargetGroup"}
    assert "EcsLoadBalancerRole" not in resources(iam.BLUEPRINT.build(cfg), "AWS::IAM::Role")
    assert "alb" not in {i.stack for i in iam.BLUEPRINT.inputs(cfg).values()}
    assert "AdvancedConfiguration" not in service(cfg)["LoadBalancers"][0]


def test_the_ecs_load_balancer_role_can_shift_only_this_environments_traffic():
    template = iam.BLUEPRINT.build(with_strategy("prod", "canary"))
    role = resources(template, "AWS::IAM::Role")["EcsLoadBalancerRole"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": ["sts:AssumeRole"]}]
    statements = {s["Sid"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}
    assert statements["ReadLoadBalancing"]["Resource"] == ["*"]
    assert all(takes_no_resource(a) for a in statements["ReadLoadBalancing"]["Action"])  # IAM has no scope for them
    assert all(a.startswith("elasticloadbalancing:Describe") for a in statements["ReadLoadBalancing"]["Action"])
    scoped = {sid: (s["Action"], s["Resource"]) for sid, s in statements.items() if sid != "ReadLoadBalancing"}
    assert scoped == {
        "RegisterTasksInOurTargetGroups": (["elasticloadbalancing:RegisterTargets",
                                            "elasticloadbalancing:DeregisterTargets"],
                                           [{"Ref": "TargetGroupArn"}, {"Ref": "AlternateTargetGroupArn"}]),
        "ShiftOurListenerRules": (["elasticloadbalancing:ModifyRule"],
                                  [{"Ref": "ProductionListenerRuleArn"}, {"Ref": "TestListenerRuleArn"}]),
        "ShiftOurListeners": (["elasticloadbalancing:ModifyListener"],
                              [{"Ref": "ListenerArn"}, {"Ref": "TestListenerArn"}]),
    }


def test_the_role_is_chained_from_the_alb_stack_without_a_cycle():
    rendered = render_env(with_strategy("prod", "linear"))
    order = [s.key for s in rendered.stacks]
    assert order.index("alb") < order.index("iam") < order.index("ecs") < order.index("monitoring")
    assert rendered.stack("iam").manifest["parameters"]["TestListenerRuleArn"] == {"stack": "alb",
                                                                                   "output": "TestListenerRuleArn"}


# Every strategy passes the lint gate ----------------------------------------------------------------------

@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_renders_templates_that_pass_the_lint_gate(strategy):
    bodies = {}
    for env in ("dev", "staging"):  # dev: HTTP and one NAT gateway; staging: HTTPS, WAF and three
        settings = {"linear": {"step_percent": 12.5, "step_bake_minutes": 3}} if strategy == "linear" else {}
        rendered = render_env(with_strategy(env, strategy, **settings))
        bodies.update({f"{env}-{strategy}/{s.key}.yaml": s.body for s in rendered.stacks
                       if s.key in ("network", "iam", "alb", "ecs")})
    failing = [str(f) for f in lint_templates(bodies, "us-east-1") if f.fails]
    assert not failing, "\n".join(failing)
