"""cost: an estimated monthly cost per stack and in total, from the rendered templates; no AWS."""

from __future__ import annotations

import click

from perfdeploy.cli.shared import EnvCommand, config_options, emit_json, env_config, json_option
from perfdeploy.console import err, titled_table


def dollars(value: float) -> str:
    return f"${value:,.2f}"


@click.command(cls=EnvCommand)
@click.argument("env")
@click.option("--lines", "show_lines", is_flag=True, help="Show every priced line, not only each stack's total.")
@json_option("the estimate, every line,")
@config_options
@click.pass_context
def cost(ctx: click.Context, env: str, show_lines: bool, as_json: bool) -> None:
    """Estimate ENV's monthly cost per stack (us-east-1 on-demand prices shipped with perfdeploy)."""
    from perfdeploy.cost.estimate import NOT_INCLUDED, estimate_rendered
    from perfdeploy.render import render_env

    result = estimate_rendered(render_env(env_config(ctx, env)))
    if as_json:
        emit_json(result.to_json())
        return
    if show_lines:
        rows = [(s.key, line.item, f"{line.quantity:,.2f} {line.unit}",
                 "?" if line.monthly is None else dollars(line.monthly)) for s in result.stacks for line in s.lines]
        err.print(titled_table(f"{env}: every line", ("stack", "item", "quantity", "monthly"), rows))
    rows = [(s.key, dollars(s.monthly), _largest(s)) for s in result.stacks]
    rows.append(("total", dollars(result.total), "" if result.complete else "incomplete: see the notes"))
    err.print(titled_table(f"{env}: estimated monthly cost ({result.prices.currency}, {result.prices.region} "
                           f"on-demand, prices of {result.prices.as_of})", ("stack", "monthly", "mostly"), rows))
    for note in result.notes():
        err.print(f"note: {note}", markup=False)
    tasks, requests = result.workload.tasks, result.workload.requests_per_month / 1e6
    err.print(f"assumed: {tasks} task{'' if tasks == 1 else 's'} serving {requests:,.1f}M requests a month "
              "(usage in perfdeploy/cost/prices.yaml)", markup=False)
    err.print(f"not included: {'; '.join(NOT_INCLUDED)}", markup=False)


def _largest(stack) -> str:
    priced = [line for line in stack.lines if line.monthly]
    return max(priced, key=lambda line: line.monthly).item if priced else "-"
