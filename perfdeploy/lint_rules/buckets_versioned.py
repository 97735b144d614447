from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import listify, resources


class BucketsVersioned(CloudFormationLintRule):
    """An object deleted or overwritten by mistake (or by an attacker) is gone unless the bucket keeps
    versions; a lifecycle keeps the old versions from growing for ever."""

    id = "E9121"
    shortdesc = "Buckets are versioned, with a lifecycle"
    description = ("Every S3 bucket enables versioning and has an enabled lifecycle rule that expires objects and "
                   "noncurrent versions")
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html"
    tags = ["perfdeploy", "data-safety"]

    def match(self, cfn):
        found = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::S3::Bucket":
                continue
            if (props.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
                found.append(RuleMatch(["Resources", lid, "Properties"], f"{lid}: enable versioning"))
            rules = [r for r in listify((props.get("LifecycleConfiguration") or {}).get("Rules", []))
                     if isinstance(r, dict) and r.get("Status") == "Enabled"]
            if not any("NoncurrentVersionExpiration" in r for r in rules) or not any(
                    "ExpirationInDays" in r or "ExpirationDate" in r for r in rules):
                found.append(RuleMatch(["Resources", lid, "Properties"], f"{lid}: add a lifecycle rule that "
                                       "expires objects and noncurrent versions"))
        return found
