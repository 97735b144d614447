"""releases, rollback: what was deployed, and going back to it."""

from __future__ import annotations

import click

from perfdeploy.cli.shared import (
    EnvCommand,
    aws_for,
    aws_options,
    emit_json,
    env_config,
    execution_roles_option,
    finish,
    json_option,
    stack_resources,
)
from perfdeploy.console import err, plural, titled_table, when


def short_commit(commit: str | None) -> str:
    """A commit as a table shows it: git's short form, keeping '-dirty' (the tree had uncommitted changes)."""
    if not commit:
        return "-"
    sha, dirty, _ = commit.partition("-dirty")
    return sha[:7] + dirty  # git's own short form


@click.command(cls=EnvCommand)
@click.argument("env")
@json_option("the releases")
@aws_options
@click.pass_context
def releases(ctx: click.Context, env: str, as_json: bool) -> None:
    """List ENV's recorded releases, oldest first; an id is what rollback --to takes.
    """
    from perfdeploy.deploy.run import releases as read_releases

    cfg = env_config(ctx, env)
    found = read_releases(cfg, aws_for(ctx, cfg))
    if as_json:
        return emit_json({"env": env, "releases": [r.summary() for r in found]})
    err.print(titled_table(f"{env}: {plural(len(found), 'release')}", ("id", "time", "kind", "commit", "image tag"),
                           [(r.id, when(r.time), r.kind, short_commit(r.commit), r.image_tag or "-")
                            for r in found], wrap=("time", "image tag")))


@click.command(cls=EnvCommand)
@click.argument("env")
@click.option("--to", "to", metavar="RELEASE", help="The release to return to (default: the last good one).")
@click.option("--yes", "-y", is_flag=True, help="Approve every change set (required without a terminal).")
@json_option("the run")
@click.option("--skip-resource", multiple=True, metavar="STACK/LOGICAL_ID", callback=stack_resources,
              help="A resource continue-update-rollback may skip when it is stuck (repeatable).")
@click.option("--allow-replace", multiple=True, metavar="STACK/LOGICAL_ID", callback=stack_resources,
              help="Let the guard pass this stateful resource's replacement or removal (repeatable).")
@execution_roles_option
@aws_options
@click.pass_context
def rollback(ctx: click.Context, env: str, to: str | None, yes: bool, as_json: bool, skip_resource,
             allow_replace, execution_roles) -> None:
    """Return ENV to the last good release (or --to RELEASE), from any CloudFormation state."""
    from perfdeploy.deploy.preflight import preflight
    from perfdeploy.deploy.report import Reporter
    from perfdeploy.deploy.run import rollback as run_rollback

    cfg = env_config(ctx, env)
    aws = aws_for(ctx, cfg)
    preflight(cfg, aws, ctx.obj["config_dir"])
    run = run_rollback(env, cfg.region, aws, to, yes, tuple(skip_resource), frozenset(allow_replace),
                       Reporter(), execution_roles=execution_roles)
    finish(run, as_json, "rollback")
