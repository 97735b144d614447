from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import resources


class LogRetention(CloudFormationLintRule):
    """Log groups without retention keep (and bill for) every line forever."""

    id = "E9103"
    shortdesc = "Log groups set a retention"
    description = "Every AWS::Logs::LogGroup sets RetentionInDays"
    source_url = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/Working-with-log-groups-and-streams.html"
    tags = ["perfdeploy", "logs"]

    def match(self, cfn):
        return [RuleMatch(["Resources", lid, "Properties"], f"{lid}: log group has no RetentionInDays")
                for lid, rtype, props, _ in resources(cfn.template)
                if rtype == "AWS::Logs::LogGroup" and "RetentionInDays" not in props]
