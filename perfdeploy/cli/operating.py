"""destroy, drift: operating a deployed environment."""

from __future__ import annotations

import click

from perfdeploy.cli.shared import EnvCommand, aws_for, aws_options, emit_json, env_config, finish, json_option
from perfdeploy.console import err, plural
from perfdeploy.errors import DIFFERENCES, FAILED


@click.command(cls=EnvCommand)
@click.argument("env")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for the environment's name (required without a "
                                                "terminal).")
@click.option("--force-prod", is_flag=True, help="Allow destroying prod (lifts termination protection; retained "
                                                 "and deletion-protected resources stay).")
@click.option("--concurrency", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Stacks deleted at once.")
@json_option("the run, with what was retained,")
@aws_options
@click.pass_context
def destroy(ctx: click.Context, env: str, yes: bool, force_prod: bool, concurrency: int, as_json: bool) -> None:
    """Delete ENV's stacks, consumers before producers, and list what was retained.
    """
    from perfdeploy.deploy.destroy import DestroyOptions
    from perfdeploy.deploy.destroy import destroy as run_destroy
    from perfdeploy.deploy.report import Reporter

    cfg = env_config(ctx, env)
    run = run_destroy(cfg, aws_for(ctx, cfg), DestroyOptions(yes=yes, force_prod=force_prod,
                                                             concurrency=concurrency), Reporter())
    if run.retained:
        err.print(f"{env}: retained {plural(len(run.retained), 'resource')}; delete by hand only when no longer needed "
                  "(docs/operations.md):", highlight=False, soft_wrap=True)
        for kept in run.retained:
            err.print(f"  {kept.describe()}", markup=False, highlight=False, soft_wrap=True)
    else:
        err.print(f"{env}: nothing retained")
    finish(run, as_json, "destroy")


@click.command(cls=EnvCommand)
@click.argument("env")
@json_option("the drift report")
@aws_options
@click.pass_context
def drift(ctx: click.Context, env: str, as_json: bool) -> None:
    """Detect drift in ENV's deployed stacks; exit 4 when anything drifted.
    """
    from perfdeploy.deploy.drift import detect_drift, drift_lines
    from perfdeploy.deploy.report import Reporter
    from perfdeploy.render import render_env

    cfg = env_config(ctx, env)
    report = detect_drift(render_env(cfg), aws_for(ctx, cfg), Reporter())
    if as_json:
        emit_json(report.to_json())
    for line in drift_lines(report):
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    for stack in report.errors:
        err.print(f"{stack.key}: {stack.status}: {stack.reason}", markup=False, highlight=False, soft_wrap=True)
    if report.errors:
        raise SystemExit(FAILED)  # an incomplete answer is not "no drift", even where drift was found
    if report.drifted:
        raise SystemExit(DIFFERENCES)
    err.print(f"{env}: no drift")
