from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import ref_name, resources


class WafLogged(CloudFormationLintRule):
    """A web ACL without logging blocks requests nobody can look into afterwards."""

    id = "E9118"
    shortdesc = "Web ACLs log"
    description = "Every WAFv2 web ACL has a logging configuration in the same template"
    source_url = "https://docs.aws.amazon.com/waf/latest/developerguide/logging.html"
    tags = ["perfdeploy", "waf"]

    def match(self, cfn):
        logged = {ref_name(props.get("ResourceArn")) for _, rtype, props, _ in resources(cfn.template)
                  if rtype == "AWS::WAFv2::LoggingConfiguration"}
        return [RuleMatch(["Resources", lid], f"{lid}: the web ACL has no AWS::WAFv2::LoggingConfiguration")
                for lid, rtype, _, _ in resources(cfn.template) if rtype == "AWS::WAFv2::WebACL" and lid not in logged]
