from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.config import GITHUB_OIDC_HOST
from perfdeploy.lint_rules._env import env_of, listify, resources


def web_identity_statements(props: dict):
    for i, st in enumerate(listify((props.get("AssumeRolePolicyDocument") or {}).get("Statement", []))):
        if isinstance(st, dict) and "sts:AssumeRoleWithWebIdentity" in listify(st.get("Action", [])):
            yield i, st


class CiSubjectPerEnvironment(CloudFormationLintRule):
    """A CI role is assumable by exactly one subject, the environment's own: a wildcard (StringLike) or a
    subject shared by environments lets a job for dev assume prod's role."""

    id = "E9113"
    shortdesc = "One CI subject per environment"
    description = ("Web-identity trust matches the token's sub with StringEquals and no wildcard; for GitHub, "
                   "the subject names the environment (repo:OWNER/REPO:environment:ENV)")
    source_url = ("https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-"
                  "deployments/about-security-hardening-with-openid-connect")
    tags = ["perfdeploy", "iam"]

    def match(self, cfn):
        env, found = env_of(cfn.template), []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::IAM::Role":
                continue
            for i, st in web_identity_statements(props):
                path = ["Resources", lid, "Properties", "AssumeRolePolicyDocument", "Statement", i]
                condition = st.get("Condition") or {}
                like = {k for k in (condition.get("StringLike") or {}) if k.endswith(":sub")}
                subjects = {k: v for k, v in (condition.get("StringEquals") or {}).items() if k.endswith(":sub")}
                if like or not subjects:
                    found.append(RuleMatch(path, f"{lid}: match the token's sub with StringEquals (one subject), "
                                                 "not StringLike or nothing"))
                for key, value in subjects.items():
                    for subject in listify(value):
                        if not isinstance(subject, str):
                            continue
                        if "*" in subject or "?" in subject:
                            found.append(RuleMatch(path, f"{lid}: the subject {subject!r} has a wildcard"))
                        elif key.startswith(GITHUB_OIDC_HOST) and env and not subject.endswith(f":environment:{env}"):
                            found.append(RuleMatch(path, f"{lid}: GitHub subject {subject!r} is not this "
                                                   f"environment's (…:environment:{env})"))
        return found
