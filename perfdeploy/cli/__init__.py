"""The perfdeploy command line: parse arguments, call one layer function, print its result.

One module per command family; ``shared`` holds what they all use (the error-to-exit-code map in
``Cli``, the options every command takes, config and AWS for a command, run summaries). Human output goes
to stderr, ``--json`` to stdout.
"""

from __future__ import annotations

import gc
from pathlib import Path

import click

from perfdeploy import __version__
from perfdeploy.cli import build, costing, deploying, examples, history, inspecting, operating
from perfdeploy.cli.emulator import local
from perfdeploy.cli.shared import Cli, root_options


@click.group("perfdeploy", cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="perfdeploy", help="Show the version and exit.")
@root_options
@click.pass_context
def cli(ctx: click.Context, config_dir: Path, profile: str | None, region: str | None,
        endpoint_url: str | None) -> None:
    """Render, lint and deploy the Performance Management Service's CloudFormation stacks.

    --config-dir, --profile, --region and --endpoint-url may also follow the command.
    """
    ctx.obj = {"config_dir": config_dir, "profile": profile, "region": region, "endpoint_url": endpoint_url}


for command in (build.render, build.lint, build.graph, deploying.deploy, deploying.plan, deploying.bootstrap,
                history.releases, history.rollback, inspecting.status, inspecting.outputs, operating.destroy,
                operating.drift, costing.cost, local):
    cli.add_command(command)
examples.attach(cli)


def main() -> None:
    try:
        cli(prog_name="perfdeploy")
    finally:
        # The run is over and its output flushed: what is left is the interpreter's teardown, whose last
        # garbage collection walks every object botocore's models and pydantic's validators made (~0.2 s of
        # a ~1 s no-op deploy). Frozen objects are ignored by all future collections
        # (https://docs.python.org/3/library/gc.html#gc.freeze); modules are still torn down and files closed.
        gc.freeze()
