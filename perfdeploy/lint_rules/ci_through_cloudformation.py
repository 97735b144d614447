from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._env import listify, resources
from perfdeploy.lint_rules.ci_subject_per_environment import web_identity_statements
from perfdeploy.lint_rules.no_iam_wildcards import policy_documents

# What a CI role needs to deploy through perfdeploy and CloudFormation: stacks and change sets, the artifacts
# bucket, image pushes, passing the execution roles, reading the rollback trigger alarm, and reading the ECS
# service deployment a stack update starts (deploy follows it: perfdeploy/deploy/rollout.py). Read-only: nothing
# here changes a resource outside CloudFormation.
CI_SERVICES = {"cloudformation", "s3", "ecr"}
CI_ACTIONS = {"iam:PassRole", "cloudwatch:DescribeAlarms", "ecs:ListServiceDeployments",
              "ecs:DescribeServiceDeployments"}


class CiThroughCloudFormation(CloudFormationLintRule):
    """A CI role that can change resources directly (ecs:UpdateService, ...) makes rollouts CloudFormation
    does not know about, which the next deploy reverts. CI may only run change sets, each executed by an
    execution role (cloudformation:RoleArn), and pass roles to CloudFormation only."""

    id = "E9115"
    shortdesc = "CI deploys through CloudFormation"
    description = ("A web-identity (CI) role allows only CloudFormation, the artifacts bucket, ECR pushes, "
                   "iam:PassRole to CloudFormation, cloudwatch:DescribeAlarms and reading ECS service deployments; "
                   "CreateChangeSet only with a "
                   "cloudformation:RoleArn condition")
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html"
    tags = ["perfdeploy", "iam"]

    def match(self, cfn):
        found = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::IAM::Role" or not list(web_identity_statements(props)):
                continue
            for path, document in policy_documents(props):
                for i, st in enumerate(listify((document or {}).get("Statement", []))):
                    if not isinstance(st, dict) or st.get("Effect") != "Allow":
                        continue
                    where = ["Resources", lid, "Properties", *path, "Statement", i]
                    condition = st.get("Condition") or {}
                    for action in (a for a in listify(st.get("Action", [])) if isinstance(a, str)):
                        if action.split(":")[0] not in CI_SERVICES and action not in CI_ACTIONS:
                            found.append(RuleMatch(where, f"{lid}: CI may not call {action} itself; it deploys "
                                                          "through CloudFormation change sets"))
                        elif action == "cloudformation:CreateChangeSet" and not any(
                                "cloudformation:RoleArn" in (block or {}) for block in condition.values()):
                            found.append(RuleMatch(where, f"{lid}: CreateChangeSet without a "
                                                          "cloudformation:RoleArn condition would run as CI"))
                        elif action == "iam:PassRole" and "cloudformation.amazonaws.com" not in str(condition):
                            found.append(RuleMatch(where, f"{lid}: CI passes roles to CloudFormation only "
                                                          "(iam:PassedToService)"))
        return found
