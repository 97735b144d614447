from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import listify, resources, sub_strings

CONTEXT = "kms:EncryptionContext:aws:logs:arn"


class LogsKeyScoped(CloudFormationLintRule):
    """A key CloudWatch Logs may use for any log group of the account encrypts other teams' logs too, and
    a grant meant for us covers them. The key policy names this environment's log groups."""

    id = "E9120"
    shortdesc = "The logs key serves this environment's log groups only"
    description = (f"A key policy statement for the CloudWatch Logs service has a {CONTEXT} condition that names "
                   "log groups, without wildcards")
    source_url = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"
    tags = ["perfdeploy", "encryption"]

    def match(self, cfn):
        found = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::KMS::Key":
                continue
            for i, st in enumerate(listify((props.get("KeyPolicy") or {}).get("Statement", []))):
                service = str((st.get("Principal") or {}).get("Service", "")) if isinstance(st, dict) else ""
                if "logs." not in service:
                    continue
                path = ["Resources", lid, "Properties", "KeyPolicy", "Statement", i]
                values = [v for block in (st.get("Condition") or {}).values() if isinstance(block, dict)
                          for k, v in block.items() if k == CONTEXT]
                texts = [t for _, t in sub_strings(values)] + [v for v in listify(values) if isinstance(v, str)]
                if not values or any(t.rstrip().endswith("*") for t in texts):
                    found.append(RuleMatch(path, f"{lid}: CloudWatch Logs may use the key for any log group; name "
                                                 f"this environment's groups in a {CONTEXT} condition"))
        return found
