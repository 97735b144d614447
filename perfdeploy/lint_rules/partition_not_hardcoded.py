from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import sub_strings


class PartitionNotHardcoded(CloudFormationLintRule):
    """ARNs and endpoints the template builds work in every partition (aws, aws-cn, aws-us-gov) only with
    ${AWS::Partition} and ${AWS::URLSuffix}."""

    id = "E9117"
    shortdesc = "No hard-coded partition"
    description = "Fn::Sub/Fn::Join strings use ${AWS::Partition} (not arn:aws:) and ${AWS::URLSuffix}"
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html"
    tags = ["perfdeploy", "partition"]

    def match(self, cfn):
        found = []
        for path, text in sub_strings(cfn.template.get("Resources", {}), ("Resources",)):
            if "arn:aws:" in text:
                found.append(RuleMatch(list(path), f"'{text}' hard-codes the aws partition: use ${{AWS::Partition}}"))
            if "${AWS::Region}.amazonaws.com" in text:
                found.append(RuleMatch(list(path), f"'{text}': use ${{AWS::URLSuffix}} for the domain"))
        return found
