from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import ref_name, resources


class NoStaticSecrets(CloudFormationLintRule):
    """A secret that never changes is valid for ever once it leaks. Every secret has a rotation schedule;
    ElastiCache clients authenticate with IAM (short-lived tokens) rather than a static AUTH token."""

    id = "E9123"
    shortdesc = "No static secret without rotation"
    description = ("Every Secrets Manager secret has a RotationSchedule in its template; no ElastiCache "
                   "replication group uses an AuthToken")
    source_url = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html"
    tags = ["perfdeploy", "secrets"]

    def match(self, cfn):
        template, found = cfn.template, []
        rotated = {ref_name(props.get("SecretId")) for _, rtype, props, _ in resources(template)
                   if rtype == "AWS::SecretsManager::RotationSchedule"}
        for lid, rtype, props, _ in resources(template):
            if rtype == "AWS::SecretsManager::Secret" and lid not in rotated:
                found.append(RuleMatch(["Resources", lid], f"{lid}: the secret has no RotationSchedule"))
            if rtype == "AWS::ElastiCache::ReplicationGroup" and "AuthToken" in props:
                found.append(RuleMatch(["Resources", lid, "Properties", "AuthToken"], f"{lid}: a static AUTH "
                                       "token; authenticate with IAM (UserGroupIds with an iam user)"))
        return found
