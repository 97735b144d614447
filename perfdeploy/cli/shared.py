"""What every command module shares: the error-to-exit-code map, the options every command takes, config and
AWS for a command, JSON and run summaries. Command modules import this module; it imports none of them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NoReturn

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from click.core import ParameterSource
from rich.markup import escape

from perfdeploy.config import DEFAULT_CONFIG_DIR, EnvConfig, environments, load_config
from perfdeploy.console import err
from perfdeploy.errors import BAD_INPUT, FAILED, INTERRUPTED, REFUSED, PerfdeployError, UsageError

DEBUG_VARIABLE = "PERFDEPLOY_DEBUG"  # set to 1 to see the traceback of an internal error


def fail(lines: list[str], code: int) -> NoReturn:
    """Print each line as 'error: ...' on stderr and exit with `code`: the one shape of every error."""
    for line in lines:
        err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
    raise click.exceptions.Exit(code)


def usage_line(exc: click.UsageError) -> str:
    """click's own usage errors in perfdeploy's shape: 'WHERE: what is wrong', one line. A bad value names
    its option; a malformed command line also points at the command's --help."""
    command = exc.ctx.command_path if exc.ctx else "perfdeploy"
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter) and exc.param:
        where = exc.param_hint or "/".join(exc.param.opts)
        where = ("/".join(where) if isinstance(where, list | tuple) else where).strip("'\"")
        return f"{where}: {exc.message}"
    message = exc.format_message().rstrip(".")
    return f"{command}: {message[:1].lower()}{message[1:]} (see '{command} --help')"


class Cli(click.Group):
    """Maps perfdeploy's error types to exit codes: one table for every command (see errors.py), and click's
    own usage errors to the same one-line shape, exit 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:  # an error in the options before the command
            fail([usage_line(exc)], BAD_INPUT)
        except PerfdeployError as exc:
            fail(exc.lines(), exc.exit_code)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from difflib import get_close_matches

            near = get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise click.UsageError(f"no command '{name}'{hint}", ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.exceptions.Abort:  # a prompt answered with Ctrl-C or end of input
            fail(["interrupted at a prompt; nothing more was done"], INTERRUPTED)
        except click.UsageError as exc:  # the command's own arguments (parsed here, under the group)
            fail([usage_line(exc)], BAD_INPUT)
        except PerfdeployError as exc:
            fail(exc.lines(), exc.exit_code)
        except (NoCredentialsError, NoRegionError, ProfileNotFound) as exc:
            fail([f"{exc}: set AWS_PROFILE (or --profile) and a region, or point --endpoint-url at the local "
                  "emulator"], BAD_INPUT)
        except ClientError as exc:  # AWS said no to something we did not foresee
            fail([aws_error_line(exc)], FAILED)
        except EndpointConnectionError as exc:  # nothing answers: the endpoint or region given is wrong
            from perfdeploy.aws import unreachable

            fail(unreachable(exc, (ctx.obj or {}).get("endpoint_url")).lines(), BAD_INPUT)
        except BotoCoreError as exc:
            fail([f"AWS: {exc}"], FAILED)
        except KeyboardInterrupt:
            fail(["interrupted"], INTERRUPTED)
        except OSError as exc:  # a file perfdeploy reads or writes
            fail([f"{exc.filename or 'I/O'}: {exc.strerror or exc}"], FAILED)
        except Exception as exc:
            if _is_region_refusal(exc):  # a region botocore knows and this cfn-lint does not (yet)
                fail([region_refusal_line(exc)], BAD_INPUT)
            if os.environ.get(DEBUG_VARIABLE):
                raise
            fail([internal_error_line(exc)], FAILED)  # a bug: still one line, and the way to see more

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        help_epilog(ctx, formatter)
        super().format_epilog(ctx, formatter)


class EnvCommand(click.Command):
    """A command on an environment: its help names the environments found."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        help_epilog(ctx, formatter)
        super().format_epilog(ctx, formatter)


def help_epilog(ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """The environments found, at the end of every help (in the folder --config-dir named, when known)."""
    formatter.write_paragraph()
    formatter.write_text(environments_line(ctx))


def environments_line(ctx: click.Context) -> str:
    root = ctx.find_root()
    folder = Path((root.obj or {}).get("config_dir") or root.params.get("config_dir") or DEFAULT_CONFIG_DIR)
    found = environments(folder) if folder.is_dir() else []
    return (f"Environments (ENV) in {folder}/: {', '.join(found)}." if found else
            f"No environments found in {folder}/ (one <env>.yaml each; see --config-dir).")


def aws_error_line(exc: ClientError) -> str:
    """An AWS error as one line; one whose answer was a web page says what answered."""
    from perfdeploy.endpoint import web_page_line

    return web_page_line(exc) or f"AWS: {' '.join(str(exc).split())}"


def internal_error_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:200]
    return (f"internal error: {type(exc).__name__}: {text}. This is a bug in perfdeploy; {DEBUG_VARIABLE}=1 "
            "shows the traceback to report")


def region_refusal_line(exc: Exception) -> str:
    from cfnlint.version import __version__ as cfnlint_version

    named = re.search(r"Regions \[([^\]]*)\]", str(exc))
    regions = named.group(1).replace("'", "") if named else "this region"
    return (f"cfn-lint {cfnlint_version} has no resource schemas for {regions}, so the lint gate cannot check "
            "templates for it; a newer cfn-lint may (pip install -U cfn-lint)")


def _is_region_refusal(exc: Exception) -> bool:
    return type(exc).__name__ == "InvalidRegionException" and type(exc).__module__.startswith("cfnlint")


# The options every command on an environment takes, before the command or after it (as the AWS CLI,
# sceptre and CDK take them). Given twice, the later one wins.
def _check_region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from perfdeploy.regions import check_region

    if value is None:
        return None
    try:
        return check_region(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _check_endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from perfdeploy.endpoint import ENDPOINT_VARIABLE, check_endpoint_url

    if not value:
        return None
    from_env = ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT
    return check_endpoint_url(value, ENDPOINT_VARIABLE if from_env else "--endpoint-url")


def _remember(check):
    """A subcommand-level option's callback: check the value, then put it where the group's would go."""
    def callback(ctx: click.Context, param: click.Parameter, value):
        value = check(ctx, param, value) if check else value
        if value is not None:
            ctx.find_root().obj[param.name] = value
        return value
    return callback


HELP = {
    "config_dir": "Folder with defaults.yaml and one <env>.yaml per environment.",
    "profile": "AWS profile (default: AWS_PROFILE).",
    "region": "Override the environment's region (the output says so).",
    "endpoint_url": "AWS endpoint, e.g. the local emulator's (default: AWS_ENDPOINT_URL).",
}


def root_options(f):
    """The group's copies: with defaults and environment variables."""
    f = click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", callback=_check_endpoint,
                     help=HELP["endpoint_url"])(f)
    f = click.option("--region", callback=_check_region, help=HELP["region"])(f)
    f = click.option("--profile", envvar="AWS_PROFILE", help=HELP["profile"])(f)
    f = click.option("--config-dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_CONFIG_DIR,
                     show_default=True, help=HELP["config_dir"])(f)
    return f


def config_options(f):
    """--config-dir and --region after the command (every command on an environment)."""
    f = click.option("--region", expose_value=False, callback=_remember(_check_region), help=HELP["region"])(f)
    f = click.option("--config-dir", type=click.Path(path_type=Path, file_okay=False), expose_value=False,
                     callback=_remember(None), help=HELP["config_dir"])(f)
    return f


def aws_options(f):
    """--config-dir, --region, --profile and --endpoint-url after the command (every command that calls AWS)."""
    f = click.option("--endpoint-url", expose_value=False, callback=_remember(_check_endpoint),
                     help=HELP["endpoint_url"])(f)
    f = click.option("--profile", expose_value=False, callback=_remember(None), help=HELP["profile"])(f)
    return config_options(f)


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
    from perfdeploy.endpoint import check_endpoint_variables

    check_endpoint_variables()
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
    f = click.option("--image-tag", help="The image tag the ecs stack runs (a new ecs stack needs one).")(f)
    f = execution_roles_option(f)
    return f


def stack_resources(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """STACK/LOGICAL_ID values, in shape (whether that stack and resource exist is checked once rendered)."""
    for item in values:
        key, _, logical_id = item.partition("/")
        if not key or not logical_id or "/" in logical_id:
            raise UsageError(f"'{item}' is not STACK/LOGICAL_ID (e.g. dynamodb/GoalsTable)", field=param.opts[0])
    return values


def json_option(what: str):
    """--json: machine output on stdout (human output stays on stderr)."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout.")


def execution_roles_option(f):
    """--execution-roles: CloudFormation changes each stack as its execution role (how CI deploys)."""
    return click.option("--execution-roles", is_flag=True,
                        help="Run each change set as the stack's CloudFormation execution role (iam stack), "
                             "as CI's deploy role must.")(f)
