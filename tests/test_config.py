"""Config: defaults per environment, and every kind of bad input is a clear error naming file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from botocore import __version__ as botocore_version

from perfdeploy.config import ENVIRONMENTS, _deep_merge, environments, load_config
from perfdeploy.errors import BAD_INPUT, ConfigError, ConfigErrors

CONFIG = Path(__file__).parent.parent / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    for path in CONFIG.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def append(config_dir: Path, env: str, text: str) -> None:
    """Deep-merge a YAML snippet into an environment's file, as a user editing it would."""
    path = config_dir / f"{env}.yaml"
    merged = _deep_merge(yaml.safe_load(path.read_text()) or {}, yaml.safe_load(text))
    path.write_text(yaml.safe_dump(merged, sort_keys=False))


@pytest.mark.parametrize("env, cidr, cpu, memory, lo, hi, broker, redis_type, nodes, retention", [
    ("dev", "10.0.0.0/16", 1024, 2048, 1, 4, "kafka.t3.small", "cache.t3.small", 1, 30),
    ("staging", "10.1.0.0/16", 1024, 2048, 2, 8, "kafka.m5.large", "cache.r6g.large", 2, 30),
    ("prod", "10.2.0.0/16", 2048, 4096, 3, 12, "kafka.m5.xlarge", "cache.r6g.xlarge", 3, 365),
])
def test_environment_defaults_follow_the_deployment_plan(env, cidr, cpu, memory, lo, hi, broker, redis_type, nodes,
                                                         retention):
    cfg = load_config(env, CONFIG)
    assert (cfg.region, cfg.network.vpc_cidr, cfg.network.availability_zones) == ("us-east-1", cidr, 3)
    assert cfg.network.zones() == ("use1-az1", "use1-az2", "use1-az4")  # not use1-az3: MSK refuses it
    assert (cfg.ecs.cpu, cfg.ecs.memory, cfg.ecs.min, cfg.ecs.max) == (cpu, memory, lo, hi)
    assert cfg.ecs.image_tag is None  # no mutable default: a new ecs stack takes --image-tag
    assert (cfg.kafka.version, cfg.kafka.broker_type, cfg.kafka.brokers) == ("3.8.x", broker, 3)
    assert (cfg.redis.engine, cfg.redis.version, cfg.redis.node_type, cfg.redis.nodes) == (
        "valkey", "8.1", redis_type, nodes)
    assert (cfg.logs.retention_days, cfg.network.flow_log_retention_days) == (retention, retention)
    assert cfg.deploy.ci_subject == f"repo:example-org/performance-mgmt:environment:{env}"
    assert cfg.alb.waf == (env != "dev")


def test_dev_uses_one_nat_gateway_and_the_others_one_per_zone():
    assert [load_config(e, CONFIG).network.nat for e in ENVIRONMENTS] == ["single", "per_az", "per_az"]


def test_every_environment_has_a_config_file():
    assert environments(CONFIG) == sorted(ENVIRONMENTS)


def test_config_is_frozen():
    cfg = load_config("dev", CONFIG)
    with pytest.raises(Exception, match="frozen"):
        cfg.region = "eu-west-1"  # type: ignore[misc]


def test_names_and_tags_follow_the_convention():
    cfg = load_config("staging", CONFIG)
    assert cfg.stack_name("network") == "staging-performance-mgmt-network"
    assert cfg.resource_name("vpc") == "staging-performance-mgmt-vpc"
    assert cfg.tags == {"Environment": "staging", "Service": "performance-mgmt", "ManagedBy": "perfdeploy",
                        "CostCenter": "performance-platform"}


# The bad-config table: (env, text appended to <env>.yaml, file blamed, field named, words in the message)
BAD_CONFIG = [
    ("dev", "network: {vpc_cidr: 10.0.0.0/33}", "dev.yaml", "network", "not a valid network"),
    ("dev", "network: {vpc_cidr: 10.0.0.0/8}", "dev.yaml", "network", "between /16 and /24"),
    ("dev", "network:\n  public_subnets: [10.9.0.0/20, 10.0.16.0/20, 10.0.32.0/20]", "dev.yaml", "network",
     "outside the VPC"),
    ("dev", "network:\n  private_subnets: [10.0.0.0/20, 10.0.0.0/21, 10.0.32.0/20]", "dev.yaml", "network",
     "overlap"),
    ("dev", "ecs: {min: 5}", "dev.yaml", "ecs", "min (5) is greater than max (4)"),
    ("dev", "ecs: {desired: 3}", "dev.yaml", "ecs.desired", "left to auto scaling"),
    ("dev", "ecs: {keep_images: 30}", "dev.yaml", "ecs.keep_images", "expires untagged images only"),
    ("dev", "ecs: {image_tag: latest}", "dev.yaml", "ecs.image_tag", "'latest' is a mutable name"),
    ("dev", "network: {zone_ids: [use1-az1, use1-az3, use1-az4]}", "dev.yaml", "network",
     "MSK does not accept client subnets in use1-az3"),
    ("dev", "network: {zone_ids: [euw1-az1, euw1-az2, euw1-az3]}", "dev.yaml", "network.zone_ids",
     "are not zones of us-east-1"),
    ("dev", "network: {zone_ids: [use1-az1, use1-az1, use1-az4]}", "dev.yaml", "network", "distinct zones"),
    ("dev", "network: {availability_zones: 6, zone_ids: [use1-az1, use1-az2, use1-az4, use1-az5, use1-az6, "
            "use1-az7]}\nkafka: {brokers: 6}", "dev.yaml", "network.availability_zones", "MSK takes 2 or 3"),
    ("dev", "kafka: {version: 3.5.0}", "dev.yaml", "kafka.version", "not a Kafka version MSK offers"),
    ("dev", "redis: {engine: redis, version: '6.2'}", "dev.yaml", "redis", "no IAM authentication"),
    ("dev", "redis: {version: '9.9'}", "dev.yaml", "redis", "not an ElastiCache valkey version"),
    ("prod", "logs: {retention_days: 90}", "prod.yaml", "logs.retention_days", "at least 365 days"),
    ("staging", "deploy: {ci_subject: 'repo:example-org/performance-mgmt:*'}", "staging.yaml",
     "deploy.ci_subject", "String should match pattern"),
    ("staging", "deploy: {ci_subject: 'repo:example-org/performance-mgmt:environment:prod'}", "staging.yaml",
     "deploy.ci_subject", "one CI subject per environment"),
    ("dev", "ecs: {cpu: many}", "dev.yaml", "ecs.cpu", "'many'"),
    ("dev", "ecs: {memroy: 2048}", "dev.yaml", "ecs.memroy", "did you mean 'memory'"),
    ("dev", "servce: x", "dev.yaml", "servce", "did you mean 'service'"),
    ("staging", "alb: {certificate_arn: null}", "staging.yaml", "alb.certificate_arn", "needs an ACM certificate"),
    ("prod", "alb: {allow_http: true}", "prod.yaml", "alb.allow_http", "refused in prod"),
    ("dev", "kafka: {brokers: 4}", "dev.yaml", "kafka.brokers", "multiple of the zone count"),
    ("dev", "logs: {retention_days: 31}", "dev.yaml", "logs.retention_days", "31"),
    ("dev", "region: eu-westt-1", "dev.yaml", "region", "did you mean 'eu-west-1'?"),
    ("dev", "region: xx", "dev.yaml", "region", "'xx' is not a region botocore"),
    ("dev", "tags: {'aws:team': x}", "dev.yaml", "tags.aws:team", "reserves for its own tags"),
    ("dev", "tags: {Team: 'aws:perf'}", "dev.yaml", "tags.Team", "value 'aws:perf' starts with 'aws:'"),
    ("dev", "tags: {'team!': x}", "dev.yaml", "tags.team!", "AWS allows letters, numbers, spaces and"),
    ("dev", "tags: {environment: x}", "dev.yaml", "tags.environment", "a tag perfdeploy sets itself"),
    ("dev", "tags: {CostCode: 1234}", "dev.yaml", "tags.CostCode", "quote it in YAML"),
    ("dev", f"tags: {{Team: {'x' * 257}}}", "dev.yaml", "tags.Team", "257 characters; AWS allows 0 to 256"),
    ("dev", "tags: {" + ", ".join(f"T{i}: x" for i in range(45)) + "}", "dev.yaml", "tags",
     "45 tags: AWS allows 50 per resource"),
]


@pytest.mark.parametrize("env, text, file, field, words", BAD_CONFIG, ids=[row[3] + ":" + row[4][:20]
                                                                         for row in BAD_CONFIG])
def test_bad_config_names_the_file_and_the_field(config_dir, env, text, file, field, words):
    append(config_dir, env, text)
    with pytest.raises(ConfigError) as caught:
        load_config(env, config_dir)
    message = str(caught.value)
    assert caught.value.exit_code == BAD_INPUT
    assert message.startswith(str(config_dir / file)), message
    assert f": {field}" in message, message
    assert words in message, message


def test_a_yaml_syntax_error_gives_file_line_and_column(config_dir):
    (config_dir / "dev.yaml").write_text("network:\n  vpc_cidr: [10.0.0.0/16\n")
    with pytest.raises(ConfigError, match=r"dev\.yaml: YAML syntax error at line \d+, column \d+"):
        load_config("dev", config_dir)


def test_a_key_given_twice_is_an_error_not_a_silent_override(config_dir):
    (config_dir / "dev.yaml").write_text("network:\n  nat: single\nnetwork:\n  vpc_cidr: 10.0.0.0/16\n")
    with pytest.raises(ConfigError, match=r"dev\.yaml: YAML syntax error at line 3.*'network' is given twice"):
        load_config("dev", config_dir)


def test_an_unknown_environment_lists_the_known_ones(config_dir):
    with pytest.raises(ConfigError, match="unknown environment 'qa'; known environments: dev, prod, staging"):
        load_config("qa", config_dir)


def test_a_default_that_is_wrong_blames_defaults_yaml(config_dir):
    text = (config_dir / "defaults.yaml").read_text().replace("availability_zones: 3", "availability_zones: 1")
    (config_dir / "defaults.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"defaults\.yaml: network\.availability_zones"):
        load_config("dev", config_dir)


def test_two_zones_need_an_even_broker_count_and_the_env_file_that_set_the_zones_is_blamed(config_dir):
    append(config_dir, "prod", "network: {availability_zones: 2}")
    with pytest.raises(ConfigError, match=r"prod\.yaml: kafka\.brokers: 3 brokers cannot spread over 2 "
                                          r"availability zones.*e\.g\. 2 or 4"):
        load_config("prod", config_dir)


def test_custom_tags_follow_the_house_tags(config_dir):
    append(config_dir, "dev", "tags: {Team: performance, 'Data Class': 'internal/hr:reviews'}")
    assert list(load_config("dev", config_dir).tags) == ["Environment", "Service", "ManagedBy", "CostCenter",
                                                          "Team", "Data Class"]


def test_every_config_error_is_reported_each_with_its_file_and_field(config_dir):
    append(config_dir, "dev", "ecs: {min: 9}\nregion: eu-westt-1\nredis: {nodes: 0}")
    with pytest.raises(ConfigErrors) as caught:
        load_config("dev", config_dir)
    dev = config_dir / "dev.yaml"
    assert sorted(caught.value.lines()) == sorted([
        f"{dev}: region: 'eu-westt-1' is not a region botocore {botocore_version} knows; did you mean 'eu-west-1'?",
        f"{dev}: redis.nodes: Input should be greater than or equal to 1 (got 0)",
        f"{dev}: ecs: min (9) is greater than max (4)",
    ])


def test_a_misspelt_section_is_an_unknown_key_not_a_list_of_missing_fields(config_dir):
    path = config_dir / "dev.yaml"
    path.write_text(path.read_text().replace("\necs:", "\necss:"))
    with pytest.raises(ConfigError) as caught:
        load_config("dev", config_dir)
    assert caught.value.lines() == [f"{path}: ecss: unknown key 'ecss' (did you mean 'ecs'?)"]


def test_syntax_errors_in_both_files_are_both_reported(config_dir):
    (config_dir / "defaults.yaml").write_text("a: [1\n")
    (config_dir / "dev.yaml").write_text("b: {2\n")
    with pytest.raises(ConfigErrors) as caught:
        load_config("dev", config_dir)
    assert [line.split(": YAML syntax error")[0] for line in caught.value.lines()] == [
        str(config_dir / "defaults.yaml"), str(config_dir / "dev.yaml")]


def test_a_file_that_is_not_utf8_names_the_byte_and_where_it_is(config_dir):
    (config_dir / "dev.yaml").write_bytes(b"service: x\ncost_center: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"dev\.yaml: not UTF-8 text: byte 0xe9 at line 2, column 17; save "
                                          r"the file as UTF-8"):
        load_config("dev", config_dir)


def test_a_missing_defaults_file_is_blamed_on_itself(config_dir):
    (config_dir / "defaults.yaml").unlink()
    with pytest.raises(ConfigError, match=r"defaults\.yaml: missing: every environment's file is merged over it"):
        load_config("dev", config_dir)


def test_a_config_dir_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(ConfigError, match=r"^--config-dir: .*/nowhere does not exist"):
        load_config("dev", tmp_path / "nowhere")
