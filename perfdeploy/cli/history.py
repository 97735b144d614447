"""releases, rollback: what was deployed, and going back to it."""

from __future__ import annotations

import click

from perfdeploy.cli.shared import aws_for, emit_json, env_config, finish
from perfdeploy.console import err, titled_table


@click.command()
@click.argument("env")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def releases(ctx: click.Context, env: str, as_json: bool) -> None:
    """List ENV's recorded releases, oldest first."""
    from perfdeploy.deploy.run import releases as read_releases

    cfg = env_config(ctx, env)
    found = read_releases(cfg, aws_for(ctx, cfg))
    if as_json:
        return emit_json({"env": env, "releases": [r.summary() for r in found]})
    err.print(titled_table(f"{env}: {len(found)} releases", ("id", "time", "kind", "commit", "image tag", "stacks"),
                           [(r.id, r.time, r.kind, (r.commit or "-")[:12], r.image_tag or "-", str(len(r.stacks)))
                            for r in found]))


@click.command()
@click.argument("env")
@click.option("--to", "to", metavar="RELEASE", help="The release to return to (default: the last good one).")
@click.option("--yes", "-y", is_flag=True, help="Approve every change set (required without a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON on stdout.")
@click.option("--skip-resource", multiple=True, metavar="STACK/LOGICAL_ID",
              help="A resource continue-update-rollback may skip when it is stuck (repeatable).")
@click.option("--allow-replace", multiple=True, metavar="STACK/LOGICAL_ID",
              help="Let the guard pass this stateful resource's replacement or removal (repeatable).")
@click.pass_context
def rollback(ctx: click.Context, env: str, to: str | None, yes: bool, as_json: bool, skip_resource,
             allow_replace) -> None:
    """Return ENV to the last good release (or --to RELEASE), from any CloudFormation state."""
    from perfdeploy.deploy.report import Reporter
    from perfdeploy.deploy.run import rollback as run_rollback

    cfg = env_config(ctx, env)
    run = run_rollback(env, cfg.region, aws_for(ctx, cfg), to, yes, tuple(skip_resource), frozenset(allow_replace),
                       Reporter())
    finish(run, as_json, "rollback")
