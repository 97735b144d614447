from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.config import AUDIT_RETENTION_DAYS
from perfdeploy.lint_rules._env import env_of, resources


class AuditRetention(CloudFormationLintRule):
    """Prod's logs (application, flow, and the rest) are audit evidence: at least a year."""

    id = "E9122"
    shortdesc = "Prod keeps logs a year"
    description = f"In prod every log group keeps its events at least {AUDIT_RETENTION_DAYS} days"
    source_url = "https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html"
    tags = ["perfdeploy", "logs"]

    def match(self, cfn):
        if env_of(cfn.template) != "prod":
            return []
        return [RuleMatch(["Resources", lid, "Properties", "RetentionInDays"], f"{lid}: prod keeps logs at "
                          f"least {AUDIT_RETENTION_DAYS} days (got {props.get('RetentionInDays')})")
                for lid, rtype, props, _ in resources(cfn.template)
                if rtype == "AWS::Logs::LogGroup" and isinstance(props.get("RetentionInDays"), int)
                and props["RetentionInDays"] < AUDIT_RETENTION_DAYS]
