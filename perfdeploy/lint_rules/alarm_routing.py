import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import listify, resources

ALARM_REF = re.compile(r'ALARM\("?\$\{([^}]+)\}"?\)')


def _rule_text(value) -> str:
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
        value = value[0] if isinstance(value, list) else value
    return value if isinstance(value, str) else ""


class AlarmRouting(CloudFormationLintRule):
    """One incident pages once: the composite alarm pages, its children notify another topic. OK
    notifications only where the pager needs them (to resolve an incident), not one mail per alarm."""

    id = "E9116"
    shortdesc = "Alarms page once, OK only to the pager"
    description = ("A composite alarm's children do not notify the composite's topic; OKActions only on alarms "
                   "that notify the composite's (paging) topic")
    source_url = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Composite_Alarm.html"
    tags = ["perfdeploy", "monitoring"]

    def match(self, cfn):
        template, found = cfn.template, []
        alarms = {lid: props for lid, rtype, props, _ in resources(template) if rtype == "AWS::CloudWatch::Alarm"}
        for lid, rtype, props, _ in resources(template):
            if rtype != "AWS::CloudWatch::CompositeAlarm":
                continue
            paging = [repr(a) for a in listify(props.get("AlarmActions", []))]
            for child in ALARM_REF.findall(_rule_text(props.get("AlarmRule"))):
                child = child.removesuffix(".Arn")
                if any(repr(a) in paging for a in listify(alarms.get(child, {}).get("AlarmActions", []))):
                    found.append(RuleMatch(["Resources", child, "Properties", "AlarmActions"],
                                           f"{child} pages as well as the composite {lid}: one incident, two "
                                           "pages; notify the warning topic"))
            for other, other_props in alarms.items():
                ok = [repr(a) for a in listify(other_props.get("OKActions", []))]
                if ok and not all(a in paging for a in ok):
                    found.append(RuleMatch(["Resources", other, "Properties", "OKActions"],
                                           f"{other}: OK notifications only to the paging topic, which resolves "
                                           "incidents on OK"))
                elif ok and not any(repr(a) in paging for a in listify(other_props.get("AlarmActions", []))):
                    found.append(RuleMatch(["Resources", other, "Properties", "OKActions"],
                                           f"{other}: sends OK to the pager but never pages"))
        return found
