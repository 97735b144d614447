"""deploy, plan, bootstrap: changing what is deployed, or showing what would change."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import click

from perfdeploy.cli.shared import (
    EnvCommand,
    aws_for,
    aws_options,
    deploy_options,
    emit_json,
    env_config,
    finish,
    json_option,
    stack_resources,
)
from perfdeploy.console import err
from perfdeploy.errors import DIFFERENCES


@click.command(cls=EnvCommand)
@click.argument("env")
@deploy_options
@click.option("--yes", "-y", is_flag=True, help="Approve every change set (required without a terminal).")
@json_option("the run")
@click.option("--force", is_flag=True, help="Create change sets even for stacks that look unchanged.")
@click.option("--skip-image-check", is_flag=True, help="Do not check that the image tag is in the registry.")
@click.option("--no-rollback", is_flag=True, help="Keep a failed update in place for debugging.")
@click.option("--fail-fast", is_flag=True, help="Start no new stack after one fails.")
@click.option("--concurrency", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Stacks deployed at once.")
@click.option("--allow-replace", multiple=True, metavar="STACK/LOGICAL_ID", callback=stack_resources,
              help="Let the guard pass this stateful resource's replacement or removal (repeatable).")
@click.option("--ignore-triggers", is_flag=True, help="Deploy although the rollback-trigger alarm is in ALARM.")
@aws_options
@click.pass_context
def deploy(ctx: click.Context, env: str, only, image_tag, execution_roles, yes, as_json, force, skip_image_check,
           no_rollback, fail_fast, concurrency, allow_replace, ignore_triggers) -> None:
    """Deploy ENV: change sets in dependency order, concurrently, outputs chained into parameters."""
    from perfdeploy.deploy.engine import DeployOptions
    from perfdeploy.deploy.preflight import preflight
    from perfdeploy.deploy.report import Reporter
    from perfdeploy.deploy.run import deploy as run_deploy

    cfg = env_config(ctx, env)
    options = DeployOptions(yes=yes, args={"image_tag": image_tag} if image_tag else {}, only=tuple(only),
                            force=force, skip_image_check=skip_image_check, no_rollback=no_rollback,
                            fail_fast=fail_fast, concurrency=concurrency, allow_replace=frozenset(allow_replace),
                            ignore_triggers=ignore_triggers, execution_roles=execution_roles)
    aws = aws_for(ctx, cfg)
    preflight(cfg, aws, ctx.obj["config_dir"], image_tag)
    run = run_deploy(cfg, aws, options, Reporter())
    finish(run, as_json, "deploy")


@click.command(cls=EnvCommand)
@click.argument("env")
@deploy_options
@click.option("--allow-replace", multiple=True, metavar="STACK/LOGICAL_ID", callback=stack_resources,
              help="Show the guard's verdict as deploy would give it with this consent.")
@json_option("the plan")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when nothing changes, 4 when something does.")
@aws_options
@click.pass_context
def plan(ctx: click.Context, env: str, only, image_tag, execution_roles, allow_replace, as_json: bool,
         detailed_exitcode: bool) -> None:
    """Show what deploy would change in ENV: a change set per differing stack, described, then deleted."""
    from perfdeploy.cost.diff import plan_cost
    from perfdeploy.cost.estimate import estimate_rendered
    from perfdeploy.deploy.engine import DeployOptions
    from perfdeploy.deploy.plan import make_plan
    from perfdeploy.deploy.preflight import preflight
    from perfdeploy.deploy.report import Reporter, plan_tables
    from perfdeploy.deploy.run import check_allow_replace, render_checked

    cfg = env_config(ctx, env)
    reporter = Reporter()
    options = DeployOptions(args={"image_tag": image_tag} if image_tag else {}, only=tuple(only),
                            allow_replace=frozenset(allow_replace), execution_roles=execution_roles)
    aws = aws_for(ctx, cfg)
    preflight(cfg, aws, ctx.obj["config_dir"], image_tag)
    rendered = render_checked(cfg, reporter)
    check_allow_replace(rendered, options.allow_replace, aws)
    with ThreadPoolExecutor(1) as pool:  # the estimate is CPU, the plan mostly waits on AWS: both at once
        priced = pool.submit(estimate_rendered, rendered)
        result = make_plan(aws, rendered, options, reporter)
        cost = plan_cost(aws, rendered, result, priced.result())
    if as_json:
        emit_json({**result.to_json(), "cost": cost.to_json() if cost else None})
    plan_tables(result)
    err.print(cost.summary() if cost else "estimated monthly cost: unavailable (a deployed template could "
              "not be read)", markup=False)
    if detailed_exitcode and result.changed:
        raise SystemExit(DIFFERENCES)


@click.command(cls=EnvCommand)
@click.argument("env")
@json_option("the bucket's name and region")
@aws_options
@click.pass_context
def bootstrap(ctx: click.Context, env: str, as_json: bool) -> None:
    """Create (or re-harden) the artifacts bucket of ENV's account and region: large templates, releases.

    Deploy creates the bucket on first need; bootstrap creates it ahead of time, or re-applies its
    settings to an existing one.
    """
    from perfdeploy.deploy.artifacts import Artifacts

    cfg = env_config(ctx, env)
    bucket = Artifacts(aws_for(ctx, cfg)).ensure(harden=True)
    if as_json:
        emit_json({"env": env, "region": cfg.region, "bucket": bucket})
    err.print(f"artifacts bucket {bucket}: encrypted, versioned, public access blocked, TLS only")
