"""security: the KMS keys every other stack encrypts with, and the service's generated secret with the
function that rotates it.

No IAM role names appear in key policies: the roles come later in the graph. The account root statement
delegates use of each key to IAM policies (the roles in the iam stack), and service principals that
encrypt on their own behalf (CloudWatch Logs, CloudWatch alarms publishing to SNS) are named explicitly.
The logs key encrypts this environment's log groups only: the policy names each of them.

The backups have a key of their own: a mistake or an attacker that disables the data key must not also make
the recovery points unreadable. No static secret lives on: Redis clients authenticate with IAM (no token),
and the application secret is rotated every ``ROTATION_DAYS`` by a small function in this stack.
"""

from __future__ import annotations

from awacs import kms as kms_actions
from awacs import logs as logs_actions
from awacs import secretsmanager as sm_actions
from awacs import sts
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from awacs.aws import ArnEquals as ArnEqualsCondition
from troposphere import AccountId, GetAtt, Ref, Sub, Template
from troposphere.awslambda import Code, Function, LoggingConfig, Permission
from troposphere.iam import Policy, Role
from troposphere.kms import Alias, Key
from troposphere.logs import LogGroup
from troposphere.secretsmanager import GenerateSecretString, RotationRules, RotationSchedule, Secret

from perfdeploy.blueprints import alb, elasticache, msk, network, tracing
from perfdeploy.blueprints.base import Blueprint, output, stateful, tags
from perfdeploy.config import EnvConfig

KEYS = {
    "Data": "tables, Kafka, Redis and the image repository",
    "Backup": "the AWS Backup vault of the tables (apart from the data key)",
    "Logs": "CloudWatch log groups",
    "Secrets": "Secrets Manager secrets",
    "Notifications": "SNS alarm topics",
}

APP_SECRET_KEY = "signingKey"
APP_SECRET_LENGTH = 48
APP_SECRET_EXCLUDED = "\"@/\\'"
ROTATION_DAYS = 30
ROTATION_RUNTIME = "python3.13"
# The four steps Secrets Manager calls a rotation function with, for a secret only the application reads:
# create the next value (AWSPENDING), nothing to set or test elsewhere, then make it AWSCURRENT. Tasks
# read the secret when they start, so new tasks take the new value and running ones keep theirs.
ROTATION_CODE = """\
import json

import boto3

sm = boto3.client("secretsmanager")


def handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
            return
        except sm.exceptions.ResourceNotFoundException:
            pass
        value = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
        value[KEY] = sm.get_random_password(PasswordLength=LENGTH, ExcludeCharacters=EXCLUDED)["RandomPassword"]
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(value),
                            VersionStages=["AWSPENDING"])
    elif step == "finishSecret":
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
        if current != token:
            sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                           RemoveFromVersionId=current)
"""


def root_statement() -> Statement:
    """Let the account's IAM policies grant use of the key (AWS's default key policy statement)."""
    return Statement(
        Sid="EnableIamPolicies",
        Effect=Allow,
        Principal=Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")),
        Action=[kms_actions.Action("*")],
        Resource=["*"],
    )


def logs_statement(cfg: EnvConfig) -> Statement:
    """CloudWatch Logs encrypts log groups of this account, and only those, with the logs key."""
    return Statement(
        Sid="AllowCloudWatchLogs",
        Effect=Allow,
        Principal=Principal("Service", Sub("logs.${AWS::Region}.${AWS::URLSuffix}")),
        Action=[kms_actions.Encrypt, kms_actions.Decrypt, kms_actions.ReEncryptFrom, kms_actions.ReEncryptTo,
                kms_actions.GenerateDataKey, kms_actions.GenerateDataKeyWithoutPlaintext,
                kms_actions.DescribeKey],
        Resource=["*"],
        # Only this environment's log groups, each by name: not every log group of the account.
        Condition=Condition(ArnEqualsCondition(
            "kms:EncryptionContext:aws:logs:arn",
            [Sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{name}")
             for name in log_group_names(cfg)],
        )),
    )


def rotation_function_name(cfg: EnvConfig) -> str:
    return cfg.resource_name("rotate-app-secret")


def log_group_names(cfg: EnvConfig) -> list[str]:
    """Every log group of the environment, by the name the stack that owns it gives it."""
    names = [network.flow_log_group_name(cfg), msk.broker_log_group_name(cfg),
             elasticache.slow_log_group_name(cfg), tracing.app_log_group_name(cfg),
             tracing.container_insights_log_group_name(cfg), f"/aws/lambda/{rotation_function_name(cfg)}"]
    if cfg.alb.waf:
        names.append(alb.waf_log_group_name(cfg))
    return names


def alarms_statement() -> Statement:
    """CloudWatch alarms publish to SNS topics encrypted with the notifications key."""
    return Statement(
        Sid="AllowCloudWatchAlarmsToPublish",
        Effect=Allow,
        Principal=Principal("Service", "cloudwatch.amazonaws.com"),
        Action=[kms_actions.Decrypt, kms_actions.GenerateDataKey],
        Resource=["*"],
        Condition=Condition(StringEquals("aws:SourceAccount", AccountId)),
    )


def key_policy(cfg: EnvConfig, name: str) -> PolicyDocument:
    statements = [root_statement()]
    if name == "Logs":
        statements.append(logs_statement(cfg))
    if name == "Notifications":
        statements.append(alarms_statement())
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def key(cfg: EnvConfig, name: str, purpose: str) -> Key:
    return stateful(Key(
        f"{name}Key",
        Description=f"{cfg.env} {cfg.service}: {purpose}",
        EnableKeyRotation=True,
        KeyPolicy=key_policy(cfg, name),
        PendingWindowInDays=30 if cfg.stateful else 7,
        Tags=tags(cfg, cfg.resource_name(f"{name.lower()}-key")),
    ), cfg)


def alias(cfg: EnvConfig, name: str) -> Alias:
    return Alias(f"{name}KeyAlias", AliasName=f"alias/{cfg.resource_name(name.lower())}",
                 TargetKeyId=Ref(f"{name}Key"))


def app_secret(cfg: EnvConfig) -> Secret:
    return stateful(Secret(
        "AppSecret",
        Name=f"{cfg.env}/{cfg.service}/app-secrets",
        Description=f"Application secrets of {cfg.service} in {cfg.env} (generated; rotated every "
                    f"{ROTATION_DAYS} days)",
        KmsKeyId=Ref("SecretsKey"),
        GenerateSecretString=GenerateSecretString(
            SecretStringTemplate='{"username": "performance-mgmt"}',
            GenerateStringKey=APP_SECRET_KEY,
            PasswordLength=APP_SECRET_LENGTH,
            ExcludeCharacters=APP_SECRET_EXCLUDED,
        ),
        Tags=tags(cfg),
    ), cfg)


def rotation(cfg: EnvConfig) -> list:
    """The function that rotates the app secret, its role and log group, and the schedule that calls it."""
    name = rotation_function_name(cfg)
    group = stateful(LogGroup("RotationLogGroup", LogGroupName=f"/aws/lambda/{name}",
                              RetentionInDays=cfg.logs.retention_days, KmsKeyId=GetAtt("LogsKey", "Arn"),
                              Tags=tags(cfg)), cfg)
    role = Role(
        "RotationRole",
        RoleName=cfg.resource_name("secret-rotation-role"),
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Effect=Allow, Principal=Principal("Service", "lambda.amazonaws.com"), Action=[sts.AssumeRole],
            Condition=Condition(StringEquals("aws:SourceAccount", AccountId)))]),
        Policies=[Policy(PolicyName="rotate-app-secret", PolicyDocument=PolicyDocument(
            Version="2012-10-17",
            Statement=[
                Statement(Sid="RotateTheAppSecret", Effect=Allow,
                          Action=[sm_actions.DescribeSecret, sm_actions.GetSecretValue, sm_actions.PutSecretValue,
                                  sm_actions.UpdateSecretVersionStage],
                          Resource=[Ref("AppSecret")]),
                Statement(Sid="NewRandomValues", Effect=Allow, Action=[sm_actions.GetRandomPassword],
                          Resource=["*"]),
                Statement(Sid="UseTheSecretsKeyViaSecretsManager", Effect=Allow,
                          Action=[kms_actions.Decrypt, kms_actions.GenerateDataKey],
                          Resource=[GetAtt("SecretsKey", "Arn")],
                          Condition=Condition(StringEquals(
                              "kms:ViaService", Sub("secretsmanager.${AWS::Region}.${AWS::URLSuffix}")))),
                Statement(Sid="WriteOurLogs", Effect=Allow,
                          Action=[logs_actions.CreateLogStream, logs_actions.PutLogEvents],
                          Resource=[GetAtt("RotationLogGroup", "Arn")]),
            ],
        ))],
        Tags=tags(cfg),
    )
    code = (f"KEY = {APP_SECRET_KEY!r}\nLENGTH = {APP_SECRET_LENGTH}\nEXCLUDED = {APP_SECRET_EXCLUDED!r}\n"
            + ROTATION_CODE)
    function = Function(
        "RotationFunction",
        FunctionName=name,
        Description=f"Rotates {cfg.env}/{cfg.service}/app-secrets",
        Runtime=ROTATION_RUNTIME,
        Handler="index.handler",
        Code=Code(ZipFile=code),
        Role=GetAtt("RotationRole", "Arn"),
        Timeout=30,
        MemorySize=128,
        LoggingConfig=LoggingConfig(LogGroup=Ref("RotationLogGroup")),
        Tags=tags(cfg),
    )
    permission = Permission(
        "RotationInvokePermission",
        FunctionName=GetAtt("RotationFunction", "Arn"),
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
        SourceArn=Ref("AppSecret"),  # this secret's rotation only (confused-deputy guard)
    )
    schedule = RotationSchedule(
        "AppSecretRotation",
        SecretId=Ref("AppSecret"),
        RotationLambdaARN=GetAtt("RotationFunction", "Arn"),
        RotationRules=RotationRules(ScheduleExpression=f"rate({ROTATION_DAYS} days)"),
        # The first rotation waits for the schedule: creating the stack does not rotate what it just made.
        RotateImmediatelyOnUpdate=False,
        DependsOn="RotationInvokePermission",
    )
    return [group, role, function, permission, schedule]


class SecurityBlueprint(Blueprint):
    key = "security"
    description = "KMS keys (data, backup, logs, secrets, notifications), the generated app secret and its rotation"

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        for name, purpose in KEYS.items():
            t.add_resource(key(cfg, name, purpose))
            t.add_resource(alias(cfg, name))
            output(t, f"{name}KeyArn", GetAtt(f"{name}Key", "Arn"), f"ARN of the {name.lower()} KMS key")
        t.add_resource(app_secret(cfg))
        for resource in rotation(cfg):
            t.add_resource(resource)
        output(t, "AppSecretArn", Ref("AppSecret"), "ARN of the application secrets")
        return t


BLUEPRINT = SecurityBlueprint()
