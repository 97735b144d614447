"""dynamodb: the service's tables (from config) with their indexes, and their daily AWS Backup.

Every table is encrypted with the data key, keeps point-in-time recovery, and in staging/prod is protected
against deletion three ways: DeletionProtectionEnabled, the retaining stack policies, and the stack policy
render writes for prod. On top of PITR (35 days, continuous), AWS Backup keeps a daily copy in a vault of
our own for the environment's retention, through a role that can back up these tables and nothing else.
The vault has its own KMS key (the security stack's backup key), so losing or disabling the data key does
not also lose the backups; in staging/prod its access policy forbids deleting recovery points and
removing or replacing the policy itself.
"""

from __future__ import annotations

import json

from awacs import backup as backup_actions
from awacs import dynamodb as dynamodb_actions
from awacs import kms as kms_actions
from awacs import sts
from awacs.aws import Allow, Bool, Condition, Deny, PolicyDocument, Principal, Statement, StringEquals
from troposphere import AccountId, GetAtt, Ref, Sub, Template
from troposphere.applicationautoscaling import (
    PredefinedMetricSpecification,
    ScalableTarget,
    ScalingPolicy,
    TargetTrackingScalingPolicyConfiguration,
)
from troposphere.backup import (
    BackupPlan,
    BackupPlanResourceType,
    BackupRuleResourceType,
    BackupSelection,
    BackupSelectionResourceType,
    BackupVault,
    LifecycleResourceType,
)
from troposphere.dynamodb import (
    AttributeDefinition,
    GlobalSecondaryIndex,
    KeySchema,
    PointInTimeRecoverySpecification,
    Projection,
    ProvisionedThroughput,
    SSESpecification,
    StreamSpecification,
    Table,
    TimeToLiveSpecification,
)
from troposphere.iam import Policy, Role

from perfdeploy.blueprints.base import Blueprint, Input, output, param, stateful, tag_map, tags
from perfdeploy.config import EnvConfig, TableConfig
from perfdeploy.config import KeySchema as KeyAttribute

BACKUP_SCHEDULE = "cron(0 3 * * ? *)"  # daily at 03:00 UTC, a quiet hour for the service
BACKUP_START_WINDOW_MINUTES = 60
BACKUP_COMPLETION_WINDOW_MINUTES = 360
TARGET_UTILIZATION_PERCENT = 70.0  # provisioned mode: scale to keep consumed/provisioned capacity near this


def table_name(cfg: EnvConfig, table: TableConfig) -> str:
    """`{env}-<Table>`, e.g. dev-Reviews: the name the application and the iam stack know the table by."""
    return f"{cfg.env}-{table.name}"


def table_id(table: TableConfig) -> str:
    return f"{table.name}Table"


def key_schema(partition: KeyAttribute, sort: KeyAttribute | None) -> list[KeySchema]:
    keys = [KeySchema(AttributeName=partition.name, KeyType="HASH")]
    if sort is not None:
        keys.append(KeySchema(AttributeName=sort.name, KeyType="RANGE"))
    return keys


def attribute_definitions(table: TableConfig) -> list[AttributeDefinition]:
    """One definition per key attribute of the table and its indexes (DynamoDB refuses any other)."""
    seen: dict[str, str] = {}
    for key in table.key_attributes():
        seen.setdefault(key.name, key.type)
    return [AttributeDefinition(AttributeName=name, AttributeType=type_) for name, type_ in seen.items()]


def provisioned(cfg: EnvConfig) -> bool:
    return cfg.dynamodb.billing == "provisioned"


def throughput(cfg: EnvConfig) -> ProvisionedThroughput:
    return ProvisionedThroughput(ReadCapacityUnits=cfg.dynamodb.read_capacity,
                                 WriteCapacityUnits=cfg.dynamodb.write_capacity)


def global_indexes(cfg: EnvConfig, table: TableConfig) -> list[GlobalSecondaryIndex]:
    indexes = []
    for index in table.indexes:
        gsi = GlobalSecondaryIndex(IndexName=index.name, KeySchema=key_schema(index.partition_key, index.sort_key),
                                   Projection=Projection(ProjectionType="ALL"))
        if provisioned(cfg):
            gsi.ProvisionedThroughput = throughput(cfg)
        indexes.append(gsi)
    return indexes


def table(cfg: EnvConfig, spec: TableConfig) -> Table:
    """One table: KMS (data key), PITR, deletion protection outside dev, retained in staging/prod."""
    resource = Table(
        table_id(spec),
        TableName=table_name(cfg, spec),
        AttributeDefinitions=attribute_definitions(spec),
        KeySchema=key_schema(spec.partition_key, spec.sort_key),
        BillingMode="PROVISIONED" if provisioned(cfg) else "PAY_PER_REQUEST",
        SSESpecification=SSESpecification(SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=param("DataKeyArn")),
        PointInTimeRecoverySpecification=PointInTimeRecoverySpecification(PointInTimeRecoveryEnabled=True),
        DeletionProtectionEnabled=cfg.stateful,
        Tags=tags(cfg, table_name(cfg, spec)),
    )
    if spec.indexes:
        resource.GlobalSecondaryIndexes = global_indexes(cfg, spec)
    if provisioned(cfg):
        resource.ProvisionedThroughput = throughput(cfg)
    if spec.ttl_attribute:
        resource.TimeToLiveSpecification = TimeToLiveSpecification(AttributeName=spec.ttl_attribute, Enabled=True)
    if spec.stream:
        resource.StreamSpecification = StreamSpecification(StreamViewType=spec.stream)
    return stateful(resource, cfg)


def auto_scaling(cfg: EnvConfig, spec: TableConfig) -> list:
    """Provisioned mode only: target tracking on reads and writes of the table and of each index.

    No RoleARN: Application Auto Scaling uses its DynamoDB service-linked role, created on first use.
    """
    targets = [("", "table", Sub(f"table/${{{table_id(spec)}}}"))]
    targets += [(index.name, "index", Sub(f"table/${{{table_id(spec)}}}/index/{index.name}"))
                for index in spec.indexes]
    minimum = {"Read": cfg.dynamodb.read_capacity, "Write": cfg.dynamodb.write_capacity}
    resources: list = []
    for suffix, scope, resource_id in targets:
        for mode in ("Read", "Write"):
            target_id = f"{spec.name}{suffix}{mode}ScalableTarget"
            resources.append(ScalableTarget(
                target_id,
                ServiceNamespace="dynamodb",
                ResourceId=resource_id,
                ScalableDimension=f"dynamodb:{scope}:{mode}CapacityUnits",
                MinCapacity=minimum[mode],
                MaxCapacity=cfg.dynamodb.max_capacity,
            ))
            resources.append(ScalingPolicy(
                f"{spec.name}{suffix}{mode}ScalingPolicy",
                PolicyName=f"{table_name(cfg, spec)}{'-' + suffix if suffix else ''}-{mode.lower()}",
                PolicyType="TargetTrackingScaling",
                ScalingTargetId=Ref(target_id),
                TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
                    TargetValue=TARGET_UTILIZATION_PERCENT,
                    PredefinedMetricSpecification=PredefinedMetricSpecification(
                        PredefinedMetricType=f"DynamoDB{mode}CapacityUtilization"),
                ),
            ))
    return resources


# Without the last two, one call (delete or overwrite the policy) would undo the protection. Once set, the
# policy can be changed by nobody: a different policy needs a new vault.
VAULT_DENIED_ACTIONS = [backup_actions.DeleteRecoveryPoint, backup_actions.UpdateRecoveryPointLifecycle,
                        backup_actions.DeleteBackupVaultAccessPolicy, backup_actions.PutBackupVaultAccessPolicy]


def vault_access_policy() -> PolicyDocument:
    """Nobody deletes or shortens a recovery point by hand, or lifts this policy; the plan's lifecycle still
    expires recovery points."""
    return PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Sid="DenyManualRecoveryPointDeletionAndPolicyChanges",
        Effect=Deny,
        Principal=Principal("AWS", "*"),
        Action=VAULT_DENIED_ACTIONS,
        Resource=["*"],
    )])


def vault_name(cfg: EnvConfig) -> str:
    """"-backups", not the earlier "-backup-vault": the key cannot change in place, so the vault with its own
    key is a new vault beside the old one (which keeps its recovery points until they expire)."""
    return cfg.resource_name("backups")


def backup_vault(cfg: EnvConfig) -> BackupVault:
    vault = BackupVault(
        "BackupVault",
        BackupVaultName=vault_name(cfg),
        EncryptionKeyArn=param("BackupKeyArn"),
        BackupVaultTags=tag_map(cfg, vault_name(cfg)),
    )
    if cfg.stateful:
        vault.AccessPolicy = json.loads(vault_access_policy().to_json())  # the property takes JSON, not awacs
    return stateful(vault, cfg)


def backup_role(cfg: EnvConfig, tables: tuple[TableConfig, ...]) -> Role:
    """What AWS Backup needs to back up these tables (the DynamoDB part of AWS's
    AWSBackupServiceRolePolicyForBackup), scoped to our tables, their backups, our vault and our two keys
    (the data key the tables are encrypted with, the backup key the vault encrypts with)."""
    keys = [param("DataKeyArn"), param("BackupKeyArn")]
    table_arns = [GetAtt(table_id(t), "Arn") for t in tables]
    return Role(
        "BackupRole",
        RoleName=cfg.resource_name("backup-role"),
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Effect=Allow,
            Principal=Principal("Service", "backup.amazonaws.com"),
            Action=[sts.AssumeRole],
            Condition=Condition(StringEquals("aws:SourceAccount", AccountId)),
        )]),
        Policies=[Policy(PolicyName="back-up-tables", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[
            Statement(
                Sid="BackUpTables",
                Effect=Allow,
                Action=[dynamodb_actions.DescribeTable, dynamodb_actions.CreateBackup,
                        dynamodb_actions.StartAwsBackupJob, dynamodb_actions.ListTagsOfResource],
                Resource=table_arns,
            ),
            Statement(
                Sid="ManageTableBackups",
                Effect=Allow,
                Action=[dynamodb_actions.DescribeBackup, dynamodb_actions.DeleteBackup],
                Resource=[Sub(f"${{{table_id(t)}.Arn}}/backup/*") for t in tables],
            ),
            Statement(
                Sid="UseOurVault",
                Effect=Allow,
                Action=[backup_actions.DescribeBackupVault],
                Resource=[GetAtt("BackupVault", "BackupVaultArn")],
            ),
            Statement(
                Sid="UseTheDataAndBackupKeys",
                Effect=Allow,
                Action=[kms_actions.Decrypt, kms_actions.GenerateDataKey, kms_actions.DescribeKey],
                Resource=keys,
            ),
            Statement(
                Sid="GrantTheKeysToAwsServices",
                Effect=Allow,
                Action=[kms_actions.CreateGrant],
                Resource=keys,
                Condition=Condition(Bool("kms:GrantIsForAWSResource", "true")),
            ),
        ]))],
        Tags=tags(cfg, cfg.resource_name("backup-role")),
    )


def backup_plan(cfg: EnvConfig) -> BackupPlan:
    return BackupPlan(
        "BackupPlan",
        BackupPlan=BackupPlanResourceType(
            BackupPlanName=cfg.resource_name("tables"),
            BackupPlanRule=[BackupRuleResourceType(
                RuleName="daily",
                TargetBackupVault=Ref("BackupVault"),
                ScheduleExpression=BACKUP_SCHEDULE,
                StartWindowMinutes=BACKUP_START_WINDOW_MINUTES,
                CompletionWindowMinutes=BACKUP_COMPLETION_WINDOW_MINUTES,
                Lifecycle=LifecycleResourceType(DeleteAfterDays=cfg.dynamodb.backup_retention_days),
                RecoveryPointTags=tag_map(cfg),
            )],
        ),
        BackupPlanTags=tag_map(cfg, cfg.resource_name("tables")),
    )


def backup_selection(cfg: EnvConfig, tables: tuple[TableConfig, ...]) -> BackupSelection:
    """The tables by ARN (not by tag: a tag can be removed by mistake, a template edit is reviewed)."""
    return BackupSelection(
        "BackupSelection",
        BackupPlanId=Ref("BackupPlan"),
        BackupSelection=BackupSelectionResourceType(
            SelectionName=cfg.resource_name("tables"),
            IamRoleArn=GetAtt("BackupRole", "Arn"),
            Resources=[GetAtt(table_id(t), "Arn") for t in tables],
        ),
    )


class DynamoDbBlueprint(Blueprint):
    key = "dynamodb"
    description = "DynamoDB tables with indexes, KMS and PITR; AWS Backup vault, plan, selection and role"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {"DataKeyArn": Input("security", "DataKeyArn"), "BackupKeyArn": Input("security", "BackupKeyArn")}

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        tables = cfg.dynamodb.tables
        for spec in tables:
            t.add_resource(table(cfg, spec))
            if provisioned(cfg):
                for resource in auto_scaling(cfg, spec):
                    t.add_resource(resource)
        t.add_resource(backup_vault(cfg))
        t.add_resource(backup_role(cfg, tables))
        t.add_resource(backup_plan(cfg))
        t.add_resource(backup_selection(cfg, tables))

        for spec in tables:
            output(t, f"{spec.name}TableName", Ref(table_id(spec)), f"Name of the {spec.name} table")
            output(t, f"{spec.name}TableArn", GetAtt(table_id(spec), "Arn"), f"ARN of the {spec.name} table")
        output(t, "BackupVaultName", Ref("BackupVault"), "AWS Backup vault holding the daily table backups")
        return t


BLUEPRINT = DynamoDbBlueprint()
