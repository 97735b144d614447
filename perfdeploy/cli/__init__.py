"""The perfdeploy command line: parse arguments, call one layer function, print its result.

One module per command family; ``shared`` holds what they all use (the error-to-exit-code map in
``Cli.invoke``, config and AWS for a command, run summaries). Human output goes to stderr, ``--json`` to stdout.
"""

from __future__ import annotations

from pathlib import Path

import click

from perfdeploy import __version__
from perfdeploy.cli import build, costing, deploying, examples, history, inspecting, operating
from perfdeploy.cli.shared import Cli
from perfdeploy.config import DEFAULT_CONFIG_DIR
from perfdeploy.local.command import local


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="perfdeploy")
@click.option("--config-dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_CONFIG_DIR,
              show_default=True, help="Folder with defaults.yaml and <env>.yaml.")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile.")
@click.option("--region", help="Override the environment's region (the output says so).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="AWS endpoint, e.g. the local emulator's.")
@click.pass_context
def cli(ctx: click.Context, config_dir: Path, profile: str | None, region: str | None,
        endpoint_url: str | None) -> None:
    """Render, lint and deploy the Performance Management Service's CloudFormation stacks."""
    ctx.obj = {"config_dir": config_dir, "profile": profile, "region": region, "endpoint_url": endpoint_url}


for command in (build.render, build.lint, build.graph, deploying.deploy, deploying.plan, deploying.bootstrap,
                history.releases, history.rollback, inspecting.status, inspecting.outputs, operating.destroy,
                operating.drift, costing.cost, local):
    cli.add_command(command)
examples.attach(cli)


def main() -> None:
    cli(prog_name="perfdeploy")
