import json

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import is_stateful_env, listify, resources

PROTECTED_ACTIONS = {"backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle",
                     "backup:DeleteBackupVaultAccessPolicy", "backup:PutBackupVaultAccessPolicy"}


def _key(value):
    return repr(value)


class BackupVaultProtected(CloudFormationLintRule):
    """Backups must not fall with the data: the vault has a key of its own, and (staging/prod) its policy
    denies deleting recovery points and removing or replacing the policy itself."""

    id = "E9114"
    shortdesc = "Backup vaults: own key, policy that protects itself"
    description = ("A backup vault is not encrypted with the key of the tables it backs up; in staging/prod its "
                   "access policy denies DeleteRecoveryPoint, UpdateRecoveryPointLifecycle and deleting or "
                   "replacing the policy")
    source_url = "https://docs.aws.amazon.com/aws-backup/latest/devguide/creating-a-vault-access-policy.html"
    tags = ["perfdeploy", "data-safety"]

    def match(self, cfn):
        template, found = cfn.template, []
        table_keys = {_key((p.get("SSESpecification") or {}).get("KMSMasterKeyId"))
                      for _, t, p, _ in resources(template) if t == "AWS::DynamoDB::Table"}
        for lid, rtype, props, _ in resources(template):
            if rtype != "AWS::Backup::BackupVault":
                continue
            if _key(props.get("EncryptionKeyArn")) in table_keys:
                found.append(RuleMatch(["Resources", lid, "Properties", "EncryptionKeyArn"], f"{lid}: encrypted "
                                       "with the tables' own key; give the vault a key of its own"))
            if not is_stateful_env(template):
                continue
            policy = props.get("AccessPolicy") or {}
            policy = json.loads(policy) if isinstance(policy, str) else policy  # the property takes JSON text too
            denied = {a for st in listify(policy.get("Statement", []))
                      if isinstance(st, dict) and st.get("Effect") == "Deny" for a in listify(st.get("Action", []))}
            missing = sorted(PROTECTED_ACTIONS - denied)
            if missing:
                found.append(RuleMatch(["Resources", lid, "Properties"], f"{lid}: the access policy must deny "
                                       f"{', '.join(missing)}"))
        return found
