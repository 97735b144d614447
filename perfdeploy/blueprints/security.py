"""security: the KMS keys every other stack encrypts with, and the service's generated secrets.

No IAM role names appear in key policies: the roles come later in the graph. The account root statement
delegates use of each key to IAM policies (the roles in the iam stack), and service principals that
encrypt on their own behalf (CloudWatch Logs, CloudWatch alarms publishing to SNS) are named explicitly.
"""

from __future__ import annotations

from awacs import kms as kms_actions
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from awacs.aws import ArnLike as ArnLikeCondition
from troposphere import AccountId, GetAtt, Ref, Sub, Template
from troposphere.kms import Alias, Key
from troposphere.secretsmanager import GenerateSecretString, Secret

from perfdeploy.blueprints.base import Blueprint, output, stateful, tags
from perfdeploy.config import EnvConfig

KEYS = {
    "Data": "tables, Kafka, Redis, backups and the image repository",
    "Logs": "CloudWatch log groups",
    "Secrets": "Secrets Manager secrets",
    "Notifications": "SNS alarm topics",
}

# Characters Redis accepts in an AUTH token: printable ASCII without / " @ and space; no punctuation is safest.
REDIS_TOKEN_LENGTH = 64


def root_statement() -> Statement:
    """Let the account's IAM policies grant use of the key (AWS's default key policy statement)."""
    return Statement(
        Sid="EnableIamPolicies",
        Effect=Allow,
        Principal=Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")),
        Action=[kms_actions.Action("*")],
        Resource=["*"],
    )


def logs_statement() -> Statement:
    """CloudWatch Logs encrypts log groups of this account, and only those, with the logs key."""
    return Statement(
        Sid="AllowCloudWatchLogs",
        Effect=Allow,
        Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
        Action=[kms_actions.Encrypt, kms_actions.Decrypt, kms_actions.ReEncryptFrom, kms_actions.ReEncryptTo,
                kms_actions.GenerateDataKey, kms_actions.GenerateDataKeyWithoutPlaintext,
                kms_actions.DescribeKey],
        Resource=["*"],
        Condition=Condition(ArnLikeCondition(
            "kms:EncryptionContext:aws:logs:arn",
            Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"),
        )),
    )


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


def key_policy(name: str) -> PolicyDocument:
    statements = [root_statement()]
    if name == "Logs":
        statements.append(logs_statement())
    if name == "Notifications":
        statements.append(alarms_statement())
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def key(cfg: EnvConfig, name: str, purpose: str) -> Key:
    return stateful(Key(
        f"{name}Key",
        Description=f"{cfg.env} {cfg.service}: {purpose}",
        EnableKeyRotation=True,
        KeyPolicy=key_policy(name),
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
        Description=f"Application secrets of {cfg.service} in {cfg.env} (generated; rotate by updating)",
        KmsKeyId=Ref("SecretsKey"),
        GenerateSecretString=GenerateSecretString(
            SecretStringTemplate='{"username": "performance-mgmt"}',
            GenerateStringKey="signingKey",
            PasswordLength=48,
            ExcludeCharacters="\"@/\\'",
        ),
        Tags=tags(cfg),
    ), cfg)


def redis_auth_secret(cfg: EnvConfig) -> Secret:
    return stateful(Secret(
        "RedisAuthSecret",
        Name=f"{cfg.env}/{cfg.service}/redis-auth-token",
        Description=f"Redis AUTH token of {cfg.service} in {cfg.env}",
        KmsKeyId=Ref("SecretsKey"),
        GenerateSecretString=GenerateSecretString(
            PasswordLength=REDIS_TOKEN_LENGTH,
            ExcludePunctuation=True,  # Redis refuses / " @ in a token; no punctuation at all is safest
        ),
        Tags=tags(cfg),
    ), cfg)


class SecurityBlueprint(Blueprint):
    key = "security"
    description = "KMS keys (data, logs, secrets, notifications) and generated secrets"

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        for name, purpose in KEYS.items():
            t.add_resource(key(cfg, name, purpose))
            t.add_resource(alias(cfg, name))
            output(t, f"{name}KeyArn", GetAtt(f"{name}Key", "Arn"), f"ARN of the {name.lower()} KMS key")
        t.add_resource(app_secret(cfg))
        t.add_resource(redis_auth_secret(cfg))
        output(t, "AppSecretArn", Ref("AppSecret"), "ARN of the application secrets")
        output(t, "RedisAuthSecretArn", Ref("RedisAuthSecret"), "ARN of the Redis AUTH token secret")
        return t


BLUEPRINT = SecurityBlueprint()
