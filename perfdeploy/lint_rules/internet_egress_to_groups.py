from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import listify, resources

ANYWHERE = {"0.0.0.0/0", "::/0"}


class InternetEgressToGroups(CloudFormationLintRule):
    """A group open to the internet (the load balancer's) sends traffic only to named security groups: a
    CIDR egress (the VPC, or the default allow-all that stays unless SecurityGroupEgress is given inline)
    lets a compromised load balancer reach everything in it."""

    id = "E9119"
    shortdesc = "Internet-facing groups egress to groups only"
    description = ("A security group with ingress from 0.0.0.0/0 or ::/0 declares SecurityGroupEgress inline, each "
                   "rule to a DestinationSecurityGroupId")
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html"
    tags = ["perfdeploy", "network"]

    def match(self, cfn):
        found = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::EC2::SecurityGroup":
                continue
            ingress = [r for r in listify(props.get("SecurityGroupIngress", [])) if isinstance(r, dict)]
            # A computed CIDR (Fn::Join of a NAT address) is not a literal "anywhere"; only literals are compared.
            if not any(r.get(key) in ANYWHERE for r in ingress for key in ("CidrIp", "CidrIpv6")
                       if isinstance(r.get(key), str)):
                continue
            egress = [r for r in listify(props.get("SecurityGroupEgress", [])) if isinstance(r, dict)]
            if not egress or any("DestinationSecurityGroupId" not in r for r in egress):
                found.append(RuleMatch(["Resources", lid, "Properties"], f"{lid} is open to the internet: its "
                                       "egress must go to security groups only (inline SecurityGroupEgress)"))
        return found
