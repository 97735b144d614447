from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import resources


class DesiredCountLeftToScaling(CloudFormationLintRule):
    """With DesiredCount in the template, every update of the service sets the count back to it, whatever
    auto scaling chose (a prod service scaled to 12 drops to 3 under load). Without it CloudFormation
    creates the service with 1 task and leaves the count alone on updates."""

    id = "E9111"
    shortdesc = "Auto-scaled services leave DesiredCount out"
    description = "An ECS service that auto scaling scales (ecs:service:DesiredCount) does not set DesiredCount"
    source_url = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
                  "aws-resource-ecs-service.html#cfn-ecs-service-desiredcount")
    tags = ["perfdeploy", "ecs"]

    def match(self, cfn):
        template = cfn.template
        scaled = any(rtype == "AWS::ApplicationAutoScaling::ScalableTarget"
                     and props.get("ScalableDimension") == "ecs:service:DesiredCount"
                     for _, rtype, props, _ in resources(template))
        if not scaled:
            return []
        return [RuleMatch(["Resources", lid, "Properties", "DesiredCount"], f"{lid}: DesiredCount resets the "
                          "auto-scaled task count on every update; leave it out (ecs.min is the floor)")
                for lid, rtype, props, _ in resources(template)
                if rtype == "AWS::ECS::Service" and "DesiredCount" in props]
