from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy import aws_support
from perfdeploy.lint_rules._env import resources


class SubnetsByZoneId(CloudFormationLintRule):
    """Zone names (us-east-1a) map to different physical zones in every account: only a zone id keeps the
    subnets out of zones a service refuses (MSK: use1-az3)."""

    id = "E9110"
    shortdesc = "Subnets placed by Availability Zone id"
    description = "Every subnet sets AvailabilityZoneId (never AvailabilityZone), outside the zones MSK refuses"
    source_url = aws_support.MSK_ZONES_SOURCE
    tags = ["perfdeploy", "network"]

    def match(self, cfn):
        found = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::EC2::Subnet":
                continue
            zone = props.get("AvailabilityZoneId")
            if "AvailabilityZone" in props or zone is None:
                found.append(RuleMatch(["Resources", lid, "Properties"], f"{lid}: place the subnet by "
                                       "AvailabilityZoneId; a zone name means a different zone in every account"))
            elif isinstance(zone, str) and zone in aws_support.MSK_EXCLUDED_ZONE_IDS:
                found.append(RuleMatch(["Resources", lid, "Properties", "AvailabilityZoneId"],
                                       f"{lid}: MSK does not accept client subnets in {zone}"))
        return found
