"""status, outputs: reading what is deployed."""

from __future__ import annotations

import click

from perfdeploy.cli.shared import EnvCommand, aws_for, aws_options, emit_json, env_config, json_option
from perfdeploy.console import err, titled_table, when


@click.command(cls=EnvCommand)
@click.argument("env")
@json_option("the status")
@aws_options
@click.pass_context
def status(ctx: click.Context, env: str, as_json: bool) -> None:
    """Show each stack's status, last update and whether its template is current.
    """
    from perfdeploy.deploy.inspect import status as read_status

    cfg = env_config(ctx, env)
    data = read_status(cfg, aws_for(ctx, cfg))
    if as_json:
        return emit_json(data)
    current = {True: "current", False: "differs", None: "-"}
    err.print(titled_table(f"{env} ({cfg.region}): stacks {cfg.stack_name('KEY')}",
                           ("stack", "status", "last update (UTC)", "template"),
                           [(s["key"], s["status"], when(s["last_updated"]), current[s["template_current"]])
                            for s in data["stacks"]], wrap=("last update (UTC)",)))


@click.command(cls=EnvCommand)
@click.argument("env")
@json_option("the outputs")
@aws_options
@click.pass_context
def outputs(ctx: click.Context, env: str, as_json: bool) -> None:
    """Show every deployed stack's outputs.
    """
    from perfdeploy.deploy.inspect import outputs as read_outputs

    cfg = env_config(ctx, env)
    data = read_outputs(cfg, aws_for(ctx, cfg))
    if as_json:
        return emit_json(data)
    for key, values in data["stacks"].items():
        err.print(f"[bold]{key}[/]", markup=True)
        for name, value in sorted(values.items()):
            err.print(f"  {name} = {value}", markup=False)
