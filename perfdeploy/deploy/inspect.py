"""`status` and `outputs`: what is deployed, read-only."""

from __future__ import annotations

from perfdeploy.aws import Aws
from perfdeploy.blueprints import all_blueprints
from perfdeploy.config import EnvConfig
from perfdeploy.deploy.stacks import describe, same_template, stack_outputs
from perfdeploy.render import render_env


def status(cfg: EnvConfig, aws: Aws) -> dict:
    """Each stack's CloudFormation status, last update, and whether its template is what render makes now."""
    cfn = aws.client("cloudformation")
    stacks = []
    for spec in render_env(cfg).stacks:
        stack = describe(cfn, spec.stack_name)
        stacks.append({
            "key": spec.key,
            "stack_name": spec.stack_name,
            "status": stack["StackStatus"] if stack else "NOT_DEPLOYED",
            "last_updated": str(stack.get("LastUpdatedTime") or stack.get("CreationTime")) if stack else None,
            "template_current": same_template(cfn, spec.stack_name, spec.body) if stack else None,
        })
    return {"env": cfg.env, "region": cfg.region, "stacks": stacks}


def outputs(cfg: EnvConfig, aws: Aws) -> dict:
    """Every deployed stack's outputs."""
    cfn = aws.client("cloudformation")
    result = {}
    for key in all_blueprints():
        stack = describe(cfn, cfg.stack_name(key))
        if stack:
            result[key] = stack_outputs(stack)
    return {"env": cfg.env, "region": cfg.region, "stacks": result}
