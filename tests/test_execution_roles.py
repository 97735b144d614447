"""deploy --execution-roles: each change set is executed by its stack's CloudFormation execution role, the
only way the CI deploy role may create one (its CreateChangeSet requires cloudformation:RoleArn)."""

from __future__ import annotations

from fakes import FakeAws, FakeCloudFormation, tiny_environment

from perfdeploy.deploy.engine import Deployer, DeployOptions
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.waiter import Backoff

FAST = Backoff(initial=0.001, maximum=0.002)


def run(execution_roles: bool) -> list[dict]:
    cfn = FakeCloudFormation()
    rendered = tiny_environment({"security": [], "network": ["security"]})
    Deployer(FakeAws(cfn), rendered, DeployOptions(yes=True, execution_roles=execution_roles), Reporter(quiet=True),
             lambda spec, changes: True, backoff=FAST).run()
    return [kwargs for op, kwargs in cfn.calls if op == "create_change_set"]


def test_with_execution_roles_each_change_set_runs_as_its_stacks_role():
    roles = {c["StackName"]: c["RoleARN"] for c in run(True)}
    assert roles == {
        "dev-performance-mgmt-security": "arn:aws:iam::123456789012:role/dev-performance-mgmt-security-cfn",
        "dev-performance-mgmt-network": "arn:aws:iam::123456789012:role/dev-performance-mgmt-network-cfn",
    }


def test_without_the_option_cloudformation_uses_the_callers_credentials():
    assert {c["RoleARN"] for c in run(False)} == {None}


def test_the_manifest_names_the_role_the_iam_stack_creates():
    from perfdeploy.blueprints import iam
    from perfdeploy.config import load_config
    from perfdeploy.render import render_env

    cfg = load_config("prod")
    rendered = render_env(cfg)
    roles = {r.RoleName for r in iam.execution_roles(cfg)}
    assert {s.manifest["execution_role"] for s in rendered.stacks} == roles
