"""What every command module shares: the error-to-exit-code map, config and AWS for a command, JSON and
run summaries. Command modules import this module; it imports none of them."""

from __future__ import annotations

import json

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
from rich.markup import escape

from perfdeploy.config import EnvConfig, load_config
from perfdeploy.console import err
from perfdeploy.errors import BAD_INPUT, FAILED, INTERRUPTED, REFUSED, PerfdeployError


class Cli(click.Group):
    """Maps perfdeploy's error types to exit codes: one table for every command (see errors.py)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PerfdeployError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            ctx.exit(exc.exit_code)
        except (NoCredentialsError, NoRegionError, ProfileNotFound) as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}: set AWS_PROFILE (or --profile) and a region, "
                      "or point --endpoint-url at the local emulator", soft_wrap=True)
            ctx.exit(BAD_INPUT)
        except (ClientError, BotoCoreError) as exc:  # AWS said no to something we did not foresee
            err.print(f"[bold red]error:[/] AWS: {escape(str(exc))}", soft_wrap=True)
            ctx.exit(FAILED)
        except KeyboardInterrupt:
            err.print("interrupted")
            ctx.exit(INTERRUPTED)


def env_config(ctx: click.Context, env: str) -> EnvConfig:
    """Load an environment's config, applying a --region override (and saying so)."""
    cfg = load_config(env, ctx.obj["config_dir"])
    region = ctx.obj["region"]
    if region and region != cfg.region:
        err.print(f"{env}: region {region} (overrides {cfg.region} from config)")
        cfg = cfg.model_copy(update={"region": region})
    return cfg


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def aws_for(ctx: click.Context, cfg: EnvConfig):
    from perfdeploy.aws import Aws

    return Aws(cfg.region, ctx.obj["profile"], ctx.obj["endpoint_url"])


def finish(run, as_json: bool, verb: str) -> None:
    """Print a run's summary (stderr) or JSON (stdout) and exit with the code its results call for."""
    from perfdeploy.deploy.report import Reporter
    from perfdeploy.deploy.results import Action

    if as_json:
        emit_json(run.to_json())
    Reporter().summary(run, verb)
    actions = {s.action for s in run.stacks}
    if run.interrupted:
        raise SystemExit(INTERRUPTED)
    if Action.REFUSED in actions:
        raise SystemExit(REFUSED)
    if not run.ok:
        raise SystemExit(FAILED)


def deploy_options(f):
    """The selection options deploy and plan share."""
    f = click.option("--stack", "only", multiple=True, metavar="KEY",
                     help="Only this stack (repeatable); inputs come from the deployed upstream stacks.")(f)
    f = click.option("--image-tag", help="The image tag the ecs stack runs (default: from config).")(f)
    return f
