from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.iam_allowlist import granted_only_on_every_resource
from perfdeploy.lint_rules._env import resources


def _listify(value):
    return value if isinstance(value, list) else [value]


def policy_documents(props: dict):
    """(path, document) for every IAM policy document a role, policy or managed policy carries."""
    for i, policy in enumerate(props.get("Policies", []) or []):
        if isinstance(policy, dict):
            yield ["Policies", i, "PolicyDocument"], policy.get("PolicyDocument", {})
    if "PolicyDocument" in props:
        yield ["PolicyDocument"], props["PolicyDocument"]


def wildcard_problems(document: dict) -> list[tuple[int, str]]:
    """(statement index, problem) for each Allow statement that uses a forbidden wildcard."""
    problems = []
    for i, st in enumerate(_listify(document.get("Statement", []) if isinstance(document, dict) else [])):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = [a for a in _listify(st.get("Action", [])) if isinstance(a, str)]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append((i, f"action {action!r} grants a whole service"))
        if "*" in _listify(st.get("Resource", [])):
            outside = sorted(a for a in set(actions) if not granted_only_on_every_resource(a))
            if outside:
                problems.append((i, f"Resource '*' for {', '.join(outside)} (AWS scopes these to resources; "
                                    "see perfdeploy/iam_allowlist.py)"))
    return problems


class NoIamWildcards(CloudFormationLintRule):
    """Roles are scoped to our resources: no Action '*', no service-wide wildcards, Resource '*' only where
    AWS grants an action no other way."""

    id = "E9104"
    shortdesc = "No IAM wildcards"
    description = "IAM policies name actions and resources; Resource '*' only for allow-listed actions"
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"
    tags = ["perfdeploy", "iam"]

    def match(self, cfn):
        matches = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype not in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            for path, document in policy_documents(props):
                for index, problem in wildcard_problems(document):
                    matches.append(RuleMatch(["Resources", lid, "Properties", *path, "Statement", index],
                                             f"{lid}: {problem}"))
        return matches
