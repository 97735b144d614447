import json

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.config import MUTABLE_TAGS
from perfdeploy.lint_rules._env import resources, sub_strings


class ReleasedImagesKept(CloudFormationLintRule):
    """A release records an image tag; a rollback to it needs that image. Lifecycle rules may expire only
    untagged images (a count or age rule on tagged ones would delete what an old release runs), and with
    immutable tags a mutable default tag such as latest could be pushed only once."""

    id = "E9112"
    shortdesc = "Images a release may name are kept"
    description = ("ECR lifecycle rules expire untagged images only; repositories use immutable tags; no image "
                   "tag parameter defaults to a mutable name")
    source_url = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html"
    tags = ["perfdeploy", "images"]

    def match(self, cfn):
        template, found = cfn.template, []
        for lid, rtype, props, _ in resources(template):
            if rtype != "AWS::ECR::Repository":
                continue
            if props.get("ImageTagMutability") != "IMMUTABLE":
                found.append(RuleMatch(["Resources", lid, "Properties"], f"{lid}: tags must be IMMUTABLE, so a "
                                       "release's tag names the image that ran"))
            text = (props.get("LifecyclePolicy") or {}).get("LifecyclePolicyText")
            if isinstance(text, str):
                for rule in json.loads(text).get("rules", []):
                    if rule.get("selection", {}).get("tagStatus") != "untagged":
                        found.append(RuleMatch(["Resources", lid, "Properties", "LifecyclePolicy"],
                                               f"{lid}: lifecycle rule {rule.get('rulePriority')} expires tagged "
                                               "images, which recorded releases may name; expire untagged only"))
        images = " ".join(text for path, text in sub_strings(template.get("Resources", {})) if "Image" in path)
        for name, param in (template.get("Parameters") or {}).items():
            default = param.get("Default") if isinstance(param, dict) else None
            if f"${{{name}}}" in images and isinstance(default, str) and default.lower() in MUTABLE_TAGS:
                found.append(RuleMatch(["Parameters", name, "Default"], f"{name} defaults to the mutable tag "
                                       f"'{default}'; give no default, deploy with --image-tag <git sha>"))
        return found
