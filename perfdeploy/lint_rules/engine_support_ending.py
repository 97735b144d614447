from cfnlint.rules import CloudFormationLintRule

from perfdeploy.lint_rules.engine_supported import matches


class EngineSupportEnding(CloudFormationLintRule):
    """A warning ahead of E9106: the version reaches its end of support within 90 days. A notice, so the
    gate does not fail yet; plan the upgrade."""

    id = "I9107"
    shortdesc = "Engine version near its end of support"
    description = "A Kafka or ElastiCache engine version reaches its end of support within 90 days"
    source_url = "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/extended-support.html"
    tags = ["perfdeploy", "versions"]

    def match(self, cfn):
        return matches(self, cfn.template, "warning")
