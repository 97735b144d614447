from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import is_stateful_env, resources
from perfdeploy.safety import RETAINING_DELETION_POLICIES, RETAINING_REPLACE_POLICIES, STATEFUL_TYPES


class StatefulRetained(CloudFormationLintRule):
    """In staging and prod, data must survive a stack delete and a replacement."""

    id = "E9101"
    shortdesc = "Stateful resources are retained in staging and prod"
    description = ("Tables, Kafka, Redis, keys, buckets, secrets, log groups, repositories and backup vaults "
                   "need a retaining DeletionPolicy and UpdateReplacePolicy outside dev")
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html"
    tags = ["perfdeploy", "data-safety"]

    def match(self, cfn):
        if not is_stateful_env(cfn.template):
            return []
        matches = []
        for lid, rtype, _, res in resources(cfn.template):
            if rtype not in STATEFUL_TYPES:
                continue
            if res.get("DeletionPolicy") not in RETAINING_DELETION_POLICIES:
                matches.append(RuleMatch(["Resources", lid], f"{lid} ({rtype}) must have DeletionPolicy "
                                         "RetainExceptOnCreate, Retain or Snapshot in staging/prod"))
            if res.get("UpdateReplacePolicy") not in RETAINING_REPLACE_POLICIES:
                matches.append(RuleMatch(["Resources", lid], f"{lid} ({rtype}) must have UpdateReplacePolicy "
                                         "Retain or Snapshot in staging/prod"))
        return matches
