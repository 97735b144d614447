from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import resources


class PlainHttpListener(CloudFormationLintRule):
    """Plain HTTP forwarding is allowed only with an environment's explicit allow_http; say so every time."""

    id = "I9105"
    shortdesc = "A listener forwards plain HTTP"
    description = "An HTTP listener forwards traffic instead of redirecting it to HTTPS (allow_http: true)"
    source_url = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html"
    tags = ["perfdeploy", "tls"]

    def match(self, cfn):
        matches = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::ElasticLoadBalancingV2::Listener" or props.get("Protocol") != "HTTP":
                continue
            if any(isinstance(a, dict) and a.get("Type") == "forward" for a in props.get("DefaultActions", [])):
                matches.append(RuleMatch(["Resources", lid], f"{lid} forwards plain HTTP (allow_http is set)"))
        return matches
