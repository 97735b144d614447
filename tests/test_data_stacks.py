"""The data stacks (dynamodb, msk, elasticache) per environment: encryption with our keys, data retained in
staging/prod, sizes from config, failover rules, TLS only, secrets by reference, and a clean lint gate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from perfdeploy.blueprints import dynamodb, elasticache, msk, network, security
from perfdeploy.blueprints.base import SECURITY_GROUP_ID, SUBNET_IDS
from perfdeploy.config import ENVIRONMENTS, load_config
from perfdeploy.errors import ConfigError
from perfdeploy.lint import lint_templates

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
BLUEPRINTS = {"dynamodb": dynamodb.BLUEPRINT, "msk": msk.BLUEPRINT, "elasticache": elasticache.BLUEPRINT}
STATEFUL = ("staging", "prod")

# The sizing table of issue 3, per environment.
KAFKA_SIZES = {"dev": ("kafka.t3.small", 100), "staging": ("kafka.m5.large", 500),
               "prod": ("kafka.m5.xlarge", 1000)}
KAFKA_MONITORING = {"dev": "DEFAULT", "staging": "PER_BROKER", "prod": "PER_TOPIC_PER_BROKER"}
REDIS_SIZES = {"dev": ("cache.t3.small", 1), "staging": ("cache.r6g.large", 2), "prod": ("cache.r6g.xlarge", 3)}
BACKUP_RETENTION_DAYS = {"dev": 7, "staging": 14, "prod": 35}
TABLES = ("ReviewCycles", "Reviews", "Goals")

envs = pytest.mark.parametrize("env", ENVIRONMENTS)


@pytest.fixture(scope="module")
def configs():
    return {env: load_config(env, CONFIG_DIR) for env in ENVIRONMENTS}


@pytest.fixture(scope="module")
def bodies(configs):
    """env -> stack key -> rendered YAML, each template built once."""
    return {env: {key: bp.build(cfg).to_yaml() for key, bp in BLUEPRINTS.items()} for env, cfg in configs.items()}


@pytest.fixture(scope="module")
def templates(bodies):
    """env -> stack key -> the template as CloudFormation reads it (the rendered YAML, parsed)."""
    from cfnlint.decode.decode import decode_str

    out = {}
    for env, stacks in bodies.items():
        out[env] = {}
        for key, body in stacks.items():
            parsed, errors = decode_str(body)
            assert not errors, errors
            out[env][key] = _plain(parsed)
    return out


@pytest.fixture(scope="module")
def lint_findings(bodies):
    named = {f"{env}/{key}.yaml": body for env, stacks in bodies.items() for key, body in stacks.items()}
    return lint_templates(named, "us-east-1", use_cache=False)


def _plain(value):
    """cfn-lint's decoded nodes as plain dicts/lists/str, so tests compare with ==."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def resources_of(template: dict, rtype: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == rtype}


def only(template: dict, rtype: str) -> dict:
    found = list(resources_of(template, rtype).values())
    assert len(found) == 1, f"expected one {rtype}, found {len(found)}"
    return found[0]


def assert_retained(resource: dict, env: str, deletion: str = "RetainExceptOnCreate", replace: str = "Retain"):
    if env in STATEFUL:
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (deletion, replace)
    else:
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete")


def assert_encrypted_log_group(group: dict, cfg) -> None:
    props = group["Properties"]
    assert props["KmsKeyId"] == {"Ref": "LogsKeyArn"}
    assert props["RetentionInDays"] == cfg.logs.retention_days
    assert_retained(group, cfg.env)


def write_config(tmp_path: Path, env: str, edit) -> Path:
    """Copy config/*.yaml to tmp_path and apply edit(data) to <env>.yaml."""
    for path in CONFIG_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    target = tmp_path / f"{env}.yaml"
    data = yaml.safe_load(target.read_text()) or {}
    edit(data)
    target.write_text(yaml.safe_dump(data))
    return tmp_path


# --- all three stacks ---------------------------------------------------------------------------------------


@envs
def test_data_stacks_pass_the_lint_gate(env, lint_findings):
    failing = [str(f) for f in lint_findings if f.fails and f.file.startswith(f"{env}/")]
    assert failing == []


@pytest.mark.parametrize("key", BLUEPRINTS)
def test_every_input_is_an_output_of_the_named_upstream_stack(key, configs):
    cfg = configs["prod"]
    upstream = {"network": network.BLUEPRINT.build(cfg), "security": security.BLUEPRINT.build(cfg)}
    for name, item in BLUEPRINTS[key].inputs(cfg).items():
        assert item.output in upstream[item.stack].outputs, f"{key}.{name} <- {item.stack}.{item.output}"


@pytest.mark.parametrize("key, expected", [
    ("msk", {"PrivateSubnetIds": ("network", SUBNET_IDS), "KafkaSecurityGroupId": ("network", SECURITY_GROUP_ID),
             "DataKeyArn": ("security", "String"), "LogsKeyArn": ("security", "String")}),
    ("elasticache", {"PrivateSubnetIds": ("network", SUBNET_IDS),
                     "RedisSecurityGroupId": ("network", SECURITY_GROUP_ID),
                     "DataKeyArn": ("security", "String"), "LogsKeyArn": ("security", "String")}),
    ("dynamodb", {"DataKeyArn": ("security", "String"), "BackupKeyArn": ("security", "String")}),
])
def test_inputs_come_from_network_and_security_with_validated_types(key, expected, configs, templates):
    inputs = BLUEPRINTS[key].inputs(configs["dev"])
    assert {name: (i.stack, i.type) for name, i in inputs.items()} == expected
    params = templates["dev"][key]["Parameters"]
    assert {name: p["Type"] for name, p in params.items()} == {name: t for name, (_, t) in expected.items()}
    assert all("Default" not in p for p in params.values())


# --- dynamodb -----------------------------------------------------------------------------------------------


@envs
def test_tables_are_named_per_env_and_keyed_from_config(env, configs, templates):
    tables = resources_of(templates[env]["dynamodb"], "AWS::DynamoDB::Table")
    assert sorted(tables) == sorted(f"{name}Table" for name in TABLES)
    for spec in configs[env].dynamodb.tables:
        props = tables[f"{spec.name}Table"]["Properties"]
        assert props["TableName"] == f"{env}-{spec.name}"
        assert props["KeySchema"][0] == {"AttributeName": spec.partition_key.name, "KeyType": "HASH"}
        assert [i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])] == [i.name for i in spec.indexes]
        defined = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
        assert defined == {k.name: k.type for k in spec.key_attributes()}


def test_reviews_are_indexed_by_employee_and_by_cycle(templates):
    reviews = templates["prod"]["dynamodb"]["Resources"]["ReviewsTable"]["Properties"]
    keys = {i["IndexName"]: i["KeySchema"][0]["AttributeName"] for i in reviews["GlobalSecondaryIndexes"]}
    assert keys == {"ByEmployee": "employeeId", "ByCycle": "cycleId"}


@envs
def test_tables_are_encrypted_with_the_data_key_and_recoverable_to_a_point_in_time(env, templates):
    for lid, table in resources_of(templates[env]["dynamodb"], "AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS",
                                             "KMSMasterKeyId": {"Ref": "DataKeyArn"}}, lid
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, lid


@envs
def test_tables_are_protected_and_retained_in_staging_and_prod_only(env, templates):
    for table in resources_of(templates[env]["dynamodb"], "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is (env in STATEFUL)
        assert_retained(table, env)


@envs
def test_tables_bill_on_demand_by_default(env, templates):
    for table in resources_of(templates[env]["dynamodb"], "AWS::DynamoDB::Table").values():
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert "ProvisionedThroughput" not in table["Properties"]
    assert not resources_of(templates[env]["dynamodb"], "AWS::ApplicationAutoScaling::ScalableTarget")


def test_provisioned_tables_and_their_indexes_scale_reads_and_writes(configs):
    cfg = configs["staging"]
    cfg = cfg.model_copy(update={"dynamodb": cfg.dynamodb.model_copy(
        update={"billing": "provisioned", "read_capacity": 10, "write_capacity": 5, "max_capacity": 200})})
    t = dynamodb.BLUEPRINT.build(cfg).to_dict()
    reviews = t["Resources"]["ReviewsTable"]["Properties"]
    assert reviews["BillingMode"] == "PROVISIONED"
    assert reviews["ProvisionedThroughput"] == {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5}
    assert all("ProvisionedThroughput" in i for i in reviews["GlobalSecondaryIndexes"])
    targets = resources_of(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    # 3 tables + 4 indexes, reads and writes each
    assert len(targets) == 2 * (3 + 4)
    assert targets["ReviewsByCycleReadScalableTarget"]["Properties"] == {
        "ServiceNamespace": "dynamodb", "ResourceId": {"Fn::Sub": "table/${ReviewsTable}/index/ByCycle"},
        "ScalableDimension": "dynamodb:index:ReadCapacityUnits", "MinCapacity": 10, "MaxCapacity": 200}
    policies = resources_of(t, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert {p["Properties"]["ScalingTargetId"]["Ref"] for p in policies.values()} == set(targets)


def test_ttl_and_stream_follow_the_table_config(templates):
    tables = templates["prod"]["dynamodb"]["Resources"]
    assert tables["GoalsTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiresAt",
                                                                             "Enabled": True}
    assert tables["ReviewsTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert "TimeToLiveSpecification" not in tables["ReviewCyclesTable"]["Properties"]
    assert "StreamSpecification" not in tables["ReviewCyclesTable"]["Properties"]


@envs
def test_backups_are_daily_kept_per_env_in_a_vault_with_its_own_key(env, templates):
    t = templates[env]["dynamodb"]
    vault = only(t, "AWS::Backup::BackupVault")
    # Not the tables' data key: disabling or losing that key must not also make the backups unreadable.
    assert vault["Properties"]["EncryptionKeyArn"] == {"Ref": "BackupKeyArn"}
    assert all(p["Properties"]["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "DataKeyArn"}
               for p in resources_of(t, "AWS::DynamoDB::Table").values())
    assert vault["Properties"]["BackupVaultName"] == f"{env}-performance-mgmt-backups"
    assert_retained(vault, env)
    (rule,) = only(t, "AWS::Backup::BackupPlan")["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert rule["Lifecycle"] == {"DeleteAfterDays": BACKUP_RETENTION_DAYS[env]}
    assert rule["TargetBackupVault"] == {"Ref": "BackupVault"}


@envs
def test_backup_selection_covers_every_table_through_the_stacks_own_role(env, templates):
    selection = only(templates[env]["dynamodb"], "AWS::Backup::BackupSelection")["Properties"]["BackupSelection"]
    assert selection["Resources"] == [{"Fn::GetAtt": [f"{name}Table", "Arn"]} for name in TABLES]
    assert selection["IamRoleArn"] == {"Fn::GetAtt": ["BackupRole", "Arn"]}


def test_backup_role_is_assumed_by_aws_backup_and_scoped_to_our_tables_vault_and_key(templates):
    role = templates["prod"]["dynamodb"]["Resources"]["BackupRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    for statement in role["Policies"][0]["PolicyDocument"]["Statement"]:
        assert "*" not in statement["Resource"]
        assert all(not a.endswith("*") for a in statement["Action"])


@pytest.mark.parametrize("env", STATEFUL)
def test_recovery_points_and_the_vault_policy_itself_cannot_be_removed_in_staging_and_prod(env, templates):
    import json

    policy = json.loads(templates[env]["dynamodb"]["Resources"]["BackupVault"]["Properties"]["AccessPolicy"])
    (deny,) = policy["Statement"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", {"AWS": "*"})
    assert set(deny["Action"]) == {"backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle",
                                   "backup:DeleteBackupVaultAccessPolicy", "backup:PutBackupVaultAccessPolicy"}


def test_dev_recovery_points_may_be_deleted(templates):
    assert "AccessPolicy" not in templates["dev"]["dynamodb"]["Resources"]["BackupVault"]["Properties"]


@envs
def test_the_backup_role_may_use_the_backup_key_as_well_as_the_data_key(env, templates):
    role = templates[env]["dynamodb"]["Resources"]["BackupRole"]["Properties"]
    statements = {st["Sid"]: st for st in role["Policies"][0]["PolicyDocument"]["Statement"]}
    assert statements["UseTheDataAndBackupKeys"]["Resource"] == [{"Ref": "DataKeyArn"}, {"Ref": "BackupKeyArn"}]


@envs
def test_dynamodb_outputs_each_tables_name_and_arn_and_the_vault(env, templates):
    outputs = templates[env]["dynamodb"]["Outputs"]
    expected = {f"{name}Table{what}" for name in TABLES for what in ("Name", "Arn")} | {"BackupVaultName"}
    assert set(outputs) == expected
    assert outputs["ReviewsTableName"]["Value"] == {"Ref": "ReviewsTable"}
    assert outputs["ReviewsTableArn"]["Value"] == {"Fn::GetAtt": ["ReviewsTable", "Arn"]}


def test_a_key_attribute_typed_two_ways_is_a_config_error(tmp_path):
    def edit(data):
        data.setdefault("dynamodb", {})["tables"] = [{
            "name": "Reviews", "partition_key": {"name": "reviewId", "type": "S"},
            "indexes": [{"name": "ByScore", "partition_key": {"name": "reviewId", "type": "N"}}],
        }]

    with pytest.raises(ConfigError) as err:
        load_config("dev", write_config(tmp_path, "dev", edit))
    assert "dynamodb.tables.0" in str(err.value)
    assert "reviewId is typed both S and N" in str(err.value)


# --- msk ----------------------------------------------------------------------------------------------------


@envs
def test_kafka_brokers_and_storage_are_sized_per_env(env, templates):
    props = only(templates[env]["msk"], "AWS::MSK::Cluster")["Properties"]
    broker_type, ebs_gib = KAFKA_SIZES[env]
    assert props["NumberOfBrokerNodes"] == 3
    assert props["BrokerNodeGroupInfo"]["InstanceType"] == broker_type
    assert props["BrokerNodeGroupInfo"]["StorageInfo"] == {"EBSStorageInfo": {"VolumeSize": ebs_gib}}
    assert props["EnhancedMonitoring"] == KAFKA_MONITORING[env]


@envs
def test_kafka_runs_in_the_private_subnets_behind_its_security_group(env, templates):
    group = only(templates[env]["msk"], "AWS::MSK::Cluster")["Properties"]["BrokerNodeGroupInfo"]
    assert group["ClientSubnets"] == {"Ref": "PrivateSubnetIds"}
    assert group["SecurityGroups"] == [{"Ref": "KafkaSecurityGroupId"}]


@envs
def test_kafka_is_encrypted_at_rest_with_the_data_key_and_in_transit_with_tls_only(env, templates):
    encryption = only(templates[env]["msk"], "AWS::MSK::Cluster")["Properties"]["EncryptionInfo"]
    assert encryption == {"EncryptionAtRest": {"DataVolumeKMSKeyId": {"Ref": "DataKeyArn"}},
                          "EncryptionInTransit": {"ClientBroker": "TLS", "InCluster": True}}


@envs
def test_kafka_clients_authenticate_with_iam_only(env, templates):
    auth = only(templates[env]["msk"], "AWS::MSK::Cluster")["Properties"]["ClientAuthentication"]
    assert auth == {"Sasl": {"Iam": {"Enabled": True}}, "Unauthenticated": {"Enabled": False}}


def server_properties(template: dict) -> dict[str, str]:
    text = only(template, "AWS::MSK::Configuration")["Properties"]["ServerProperties"]
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@envs
def test_kafka_creates_no_topics_by_itself_and_writes_durably(env, configs, templates):
    props = server_properties(templates[env]["msk"])
    assert props["auto.create.topics.enable"] == "false"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    assert props["log.retention.hours"] == str(configs[env].kafka.retention_hours)


@pytest.mark.parametrize("brokers, expected", [(2, (2, 1)), (3, (3, 2)), (4, (3, 2)), (6, (3, 2))])
def test_replication_factor_is_three_where_brokers_allow_and_leaves_one_replica_to_lose(brokers, expected):
    assert msk.replication(brokers) == expected


@envs
def test_kafka_cluster_follows_the_latest_revision_of_its_versioned_configuration(env, configs, templates):
    t = templates[env]["msk"]
    configuration = t["Resources"]["KafkaConfiguration"]["Properties"]
    assert configuration["Name"] == f"{env}-performance-mgmt-kafka-3-8-x"
    assert configuration["KafkaVersionsList"] == [configs[env].kafka.version]
    info = only(t, "AWS::MSK::Cluster")["Properties"]["ConfigurationInfo"]
    assert info == {"Arn": {"Fn::GetAtt": ["KafkaConfiguration", "Arn"]},
                    "Revision": {"Fn::GetAtt": ["KafkaConfiguration", "LatestRevision.Revision"]}}


@envs
def test_kafka_and_its_broker_logs_are_retained_in_staging_and_prod(env, configs, templates):
    t = templates[env]["msk"]
    assert_retained(only(t, "AWS::MSK::Cluster"), env)
    assert_encrypted_log_group(only(t, "AWS::Logs::LogGroup"), configs[env])
    logs = only(t, "AWS::MSK::Cluster")["Properties"]["LoggingInfo"]
    assert logs == {"BrokerLogs": {"CloudWatchLogs": {"Enabled": True, "LogGroup": {"Ref": "BrokerLogGroup"}}}}


def test_msk_outputs_match_the_contract(templates):
    outputs = templates["prod"]["msk"]["Outputs"]
    assert set(outputs) == {"ClusterArn", "ClusterName", "BrokerLogGroupName"}
    assert outputs["ClusterArn"]["Value"] == {"Ref": "KafkaCluster"}
    assert outputs["ClusterName"]["Value"] == "prod-performance-mgmt-kafka"


def test_three_brokers_over_two_zones_is_a_config_error_that_says_how_to_fix_it(tmp_path):
    def edit(data):
        data.setdefault("network", {})["availability_zones"] = 2
        data.setdefault("kafka", {})["brokers"] = 3

    config_dir = write_config(tmp_path, "dev", edit)
    with pytest.raises(ConfigError) as err:
        load_config("dev", config_dir)
    message = str(err.value)
    assert message.startswith(f"{config_dir / 'dev.yaml'}: kafka.brokers: ")
    assert "3 brokers cannot spread over 2 availability zones" in message
    assert "(e.g. 2 or 4)" in message
    assert "network.availability_zones to 3" in message
    assert err.value.exit_code == 2


def test_four_brokers_over_two_zones_is_accepted(tmp_path):
    def edit(data):
        data.setdefault("network", {})["availability_zones"] = 2
        data.setdefault("kafka", {})["brokers"] = 4

    cfg = load_config("dev", write_config(tmp_path, "dev", edit))
    assert (cfg.kafka.brokers, cfg.network.availability_zones) == (4, 2)


# --- elasticache --------------------------------------------------------------------------------------------


@envs
def test_redis_node_type_and_count_are_sized_per_env(env, templates):
    props = only(templates[env]["elasticache"], "AWS::ElastiCache::ReplicationGroup")["Properties"]
    node_type, nodes = REDIS_SIZES[env]
    assert (props["CacheNodeType"], props["NumCacheClusters"]) == (node_type, nodes)
    assert (props["Engine"], props["EngineVersion"]) == ("valkey", "8.1")


@envs
def test_redis_fails_over_across_zones_exactly_when_it_has_replicas(env, templates):
    props = only(templates[env]["elasticache"], "AWS::ElastiCache::ReplicationGroup")["Properties"]
    replicated = env in STATEFUL  # dev runs one node
    assert props["AutomaticFailoverEnabled"] is replicated
    assert props["MultiAZEnabled"] is replicated


@envs
def test_redis_is_encrypted_at_rest_with_the_data_key_and_requires_tls(env, templates):
    props = only(templates[env]["elasticache"], "AWS::ElastiCache::ReplicationGroup")["Properties"]
    assert props["AtRestEncryptionEnabled"] is True
    assert props["KmsKeyId"] == {"Ref": "DataKeyArn"}
    assert props["TransitEncryptionEnabled"] is True
    assert props["TransitEncryptionMode"] == "required"


@envs
def test_cache_clients_authenticate_with_iam_and_no_static_token_exists(env, templates, bodies):
    t = templates[env]["elasticache"]
    props = only(t, "AWS::ElastiCache::ReplicationGroup")["Properties"]
    assert "AuthToken" not in props and "AuthToken" not in bodies[env]["elasticache"]
    assert props["UserGroupIds"] == [{"Ref": "UserGroup"}]
    users = {u["Properties"]["UserName"]: u["Properties"] for u in resources_of(t, "AWS::ElastiCache::User").values()}
    app = users[f"{env}-performance-mgmt-app"]
    assert app["UserId"] == app["UserName"] and app["AuthenticationMode"] == {"Type": "iam"}
    assert users["default"]["AccessString"].startswith("off")  # ElastiCache's default user is open: switched off
    group = only(t, "AWS::ElastiCache::UserGroup")["Properties"]
    assert group["UserIds"] == [{"Ref": "DisabledDefaultUser"}, {"Ref": "AppUser"}]
    assert {group["Engine"], app["Engine"]} == {"valkey"}


@envs
def test_redis_snapshots_daily_in_staging_and_prod_only(env, templates):
    props = only(templates[env]["elasticache"], "AWS::ElastiCache::ReplicationGroup")["Properties"]
    if env in STATEFUL:
        assert (props["SnapshotRetentionLimit"], props["SnapshotWindow"]) == (7, "03:00-04:00")
    else:
        assert props["SnapshotRetentionLimit"] == 0
        assert "SnapshotWindow" not in props
    assert props["PreferredMaintenanceWindow"] == "sun:05:00-sun:06:00"


@envs
def test_redis_is_snapshotted_on_delete_or_replace_in_staging_and_prod(env, templates):
    assert_retained(only(templates[env]["elasticache"], "AWS::ElastiCache::ReplicationGroup"), env,
                    deletion="Snapshot", replace="Snapshot")


@envs
def test_redis_slow_log_goes_to_an_encrypted_log_group_with_retention(env, configs, templates):
    t = templates[env]["elasticache"]
    assert_encrypted_log_group(only(t, "AWS::Logs::LogGroup"), configs[env])
    (delivery,) = only(t, "AWS::ElastiCache::ReplicationGroup")["Properties"]["LogDeliveryConfigurations"]
    assert delivery["LogType"] == "slow-log"
    assert delivery["DestinationDetails"] == {"CloudWatchLogsDetails": {"LogGroup": {"Ref": "SlowLogGroup"}}}


@envs
def test_redis_lives_in_the_private_subnets_behind_its_security_group(env, templates):
    t = templates[env]["elasticache"]
    assert only(t, "AWS::ElastiCache::SubnetGroup")["Properties"]["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
    props = only(t, "AWS::ElastiCache::ReplicationGroup")["Properties"]
    assert props["SecurityGroupIds"] == [{"Ref": "RedisSecurityGroupId"}]
    assert props["CacheParameterGroupName"] == {"Ref": "RedisParameterGroup"}
    assert only(t, "AWS::ElastiCache::ParameterGroup")["Properties"]["CacheParameterGroupFamily"] == "valkey8"


def test_redis_oss_7_gets_the_redis7_parameter_family_and_engine(configs):
    cfg = configs["prod"]
    cfg = cfg.model_copy(update={"redis": cfg.redis.model_copy(update={"engine": "redis", "version": "7.1"})})
    t = elasticache.BLUEPRINT.build(cfg).to_dict()
    assert only(t, "AWS::ElastiCache::ParameterGroup")["Properties"]["CacheParameterGroupFamily"] == "redis7"
    assert only(t, "AWS::ElastiCache::ReplicationGroup")["Properties"]["Engine"] == "redis"
    assert {u["Properties"]["Engine"] for u in resources_of(t, "AWS::ElastiCache::User").values()} == {"redis"}


def test_elasticache_outputs_match_the_contract(templates):
    outputs = templates["staging"]["elasticache"]["Outputs"]
    assert set(outputs) == {"ReplicationGroupId", "PrimaryEndpointAddress", "PrimaryEndpointPort",
                            "ReaderEndpointAddress", "ReaderEndpointPort", "SlowLogGroupName", "AppUserId",
                            "AppUserArn"}
    assert outputs["ReaderEndpointAddress"]["Value"] == {
        "Fn::GetAtt": ["RedisReplicationGroup", "ReaderEndPoint.Address"]}


# --- issue 13: what real AWS accepts, in every environment ---------------------------------------------------


@pytest.fixture(scope="module")
def upstream(configs):
    """env -> the network and security templates (the data stacks' producers), parsed."""
    from cfnlint.decode.decode import decode_str

    return {env: {key: _plain(decode_str(bp.build(cfg).to_yaml())[0])
                  for key, bp in (("network", network.BLUEPRINT), ("security", security.BLUEPRINT))}
            for env, cfg in configs.items()}


@envs
def test_kafka_and_the_cache_run_versions_aws_still_supports_on_the_tables_date(env, templates):
    from perfdeploy import aws_support

    on = aws_support.READ_ON
    cluster = only(templates[env]["msk"], "AWS::MSK::Cluster")["Properties"]
    kafka = aws_support.KAFKA_VERSIONS[cluster["KafkaVersion"]]
    assert kafka.end_of_support is None or (kafka.end_of_support - on).days > aws_support.WARN_DAYS
    group = only(templates[env]["elasticache"], "AWS::ElastiCache::ReplicationGroup")["Properties"]
    cache = aws_support.cache_version(group["Engine"], group["EngineVersion"])
    assert cache is not None and (cache.end_of_support is None or (cache.end_of_support - on).days > 90)


@envs
def test_subnets_are_placed_by_zone_id_outside_the_zones_msk_refuses(env, configs, upstream):
    from perfdeploy import aws_support

    subnets = resources_of(upstream[env]["network"], "AWS::EC2::Subnet")
    zones = [s["Properties"].get("AvailabilityZoneId") for s in subnets.values()]
    assert all("AvailabilityZone" not in s["Properties"] for s in subnets.values())  # names differ per account
    assert sorted(zones) == sorted(configs[env].network.zones() * 2)  # one public, one private per zone
    assert not set(zones) & aws_support.MSK_EXCLUDED_ZONE_IDS
    assert len(set(zones)) in aws_support.MSK_CLIENT_SUBNETS


@envs
def test_the_logs_key_serves_exactly_this_environments_log_groups(env, configs):
    from cfnlint.decode.decode import decode_str

    from perfdeploy.render import render_env

    rendered = render_env(configs[env])
    names = set()
    for stack in rendered.stacks:
        doc = _plain(decode_str(stack.body)[0])
        names |= {r["Properties"]["LogGroupName"] for r in resources_of(doc, "AWS::Logs::LogGroup").values()}
    security_doc = _plain(decode_str(rendered.stack("security").body)[0])
    [statement] = [st for st in security_doc["Resources"]["LogsKey"]["Properties"]["KeyPolicy"]["Statement"]
                   if st.get("Sid") == "AllowCloudWatchLogs"]
    arns = statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    allowed = {a["Fn::Sub"].split(":log-group:")[1] for a in arns}
    assert allowed == names, "every log group of the environment, and nothing else"
    assert statement["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.${AWS::URLSuffix}"}}


@envs
def test_no_static_secret_the_app_secret_rotates_and_redis_has_no_token(env, upstream):
    t = upstream[env]["security"]
    assert set(resources_of(t, "AWS::SecretsManager::Secret")) == {"AppSecret"}
    schedule = only(t, "AWS::SecretsManager::RotationSchedule")["Properties"]
    assert schedule["SecretId"] == {"Ref": "AppSecret"}
    assert schedule["RotationRules"] == {"ScheduleExpression": "rate(30 days)"}
    assert schedule["RotationLambdaARN"] == {"Fn::GetAtt": ["RotationFunction", "Arn"]}
    permission = only(t, "AWS::Lambda::Permission")["Properties"]
    assert (permission["Principal"], permission["SourceArn"]) == ("secretsmanager.amazonaws.com", {"Ref": "AppSecret"})
    assert "RedisAuthSecretArn" not in t["Outputs"]


@envs
def test_the_backup_key_is_its_own_rotated_key(env, upstream):
    key = upstream[env]["security"]["Resources"]["BackupKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert upstream[env]["security"]["Outputs"]["BackupKeyArn"]["Value"] == {"Fn::GetAtt": ["BackupKey", "Arn"]}


def test_prod_keeps_every_log_group_a_year_for_audit(configs):
    from cfnlint.decode.decode import decode_str

    from perfdeploy.render import render_env

    for stack in render_env(configs["prod"]).stacks:
        doc = _plain(decode_str(stack.body)[0])
        for lid, group in resources_of(doc, "AWS::Logs::LogGroup").items():
            assert group["Properties"]["RetentionInDays"] >= 365, f"{stack.key}/{lid}"
