"""The perfdeploy command line: parse arguments, call one layer function, print its result.

Errors are mapped to exit codes in one place (``Cli.invoke``); human output goes to stderr, ``--json`` to stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
from rich.markup import escape

from perfdeploy import __version__
from perfdeploy.config import DEFAULT_CONFIG_DIR, EnvConfig, load_config
from perfdeploy.console import err, titled_table
from perfdeploy.errors import (
    BAD_INPUT,
    DIFFERENCES,
    FAILED,
    INTERRUPTED,
    REFUSED,
    LintError,
    PerfdeployError,
    UsageError,
)


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


@cli.command()
@click.argument("envs", nargs=-1, required=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("templates_out"),
              show_default=True, help="Where templates go (one folder per environment).")
@click.option("--no-lint", is_flag=True, help="Skip the lint gate.")
@click.pass_context
def render(ctx: click.Context, envs: tuple[str, ...], out: Path, no_lint: bool) -> None:
    """Render ENV...'s templates and manifest into OUT/ENV/."""
    from perfdeploy.lint import gate
    from perfdeploy.render import render_env, write

    configs = [env_config(ctx, env) for env in envs]  # every config validated before anything is written
    rendered = [render_env(cfg) for cfg in configs]
    if not no_lint:
        for r in rendered:
            for notice in gate(r.templates(), r.region):
                err.print(str(notice), highlight=False, markup=False)
    for r in rendered:
        target = write(r, out)
        err.print(f"{r.env}: {len(r.stacks)} stacks -> {target}/")


@cli.command()
@click.argument("envs", nargs=-1, required=True)
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=Path("templates_out"),
              show_default=True, help="Folder of rendered templates.")
@click.option("--no-cache", is_flag=True, help="Lint every template, even ones already linted clean.")
@click.pass_context
def lint(ctx: click.Context, envs: tuple[str, ...], directory: Path, no_cache: bool) -> None:
    """Lint ENV...'s rendered templates: cfn-lint plus perfdeploy's house rules."""
    from perfdeploy.lint import lint_templates

    failed = 0
    for env in envs:
        cfg = env_config(ctx, env)
        folder = directory / env
        files = sorted(folder.glob("*.yaml"))
        if not files:
            raise PerfdeployError(f"{folder}: no rendered templates; run 'perfdeploy render {env}' first")
        findings = lint_templates({str(p): p.read_text() for p in files}, cfg.region, use_cache=not no_cache)
        for f in findings:
            err.print(str(f), highlight=False, markup=False)
        failed += sum(f.fails for f in findings)
        err.print(f"{env}: {len(files)} templates, {sum(f.fails for f in findings)} errors, "
                  f"{sum(not f.fails for f in findings)} notices")
    if failed:
        raise LintError(f"the lint gate found {failed} errors")


@cli.command()
@click.argument("env")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid"]), default="text", show_default=True)
@click.pass_context
def graph(ctx: click.Context, env: str, fmt: str) -> None:
    """Show ENV's deploy order and the edges between stacks."""
    from perfdeploy import graph as g
    from perfdeploy.blueprints import all_blueprints

    deps = g.dependencies(all_blueprints(), env_config(ctx, env))
    order = g.deploy_order(deps)
    click.echo(g.to_mermaid(order, deps) if fmt == "mermaid" else g.to_text(order, deps))


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
    if Action.INTERRUPTED in actions or Action.CANCELLED in actions:
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


@cli.command()
@click.argument("env")
@deploy_options
@click.option("--yes", "-y", is_flag=True, help="Approve every change set (required without a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON on stdout.")
@click.option("--force", is_flag=True, help="Create change sets even for stacks that look unchanged.")
@click.option("--skip-image-check", is_flag=True, help="Do not check that the image tag is in the registry.")
@click.option("--no-rollback", is_flag=True, help="Keep a failed update in place for debugging.")
@click.option("--fail-fast", is_flag=True, help="Start no new stack after one fails.")
@click.option("--concurrency", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Stacks deployed at once.")
@click.option("--allow-replace", multiple=True, metavar="STACK/LOGICAL_ID",
              help="Let the guard pass this stateful resource's replacement or removal (repeatable).")
@click.option("--ignore-triggers", is_flag=True, help="Deploy although the rollback-trigger alarm is in ALARM.")
@click.pass_context
def deploy(ctx: click.Context, env: str, only, image_tag, yes, as_json, force, skip_image_check, no_rollback,
           fail_fast, concurrency, allow_replace, ignore_triggers) -> None:
    """Deploy ENV: change sets in dependency order, concurrently, outputs chained into parameters."""
    from perfdeploy.deploy.engine import DeployOptions
    from perfdeploy.deploy.report import Reporter
    from perfdeploy.deploy.run import deploy as run_deploy

    for item in allow_replace:
        if item.count("/") != 1:
            raise UsageError(f"'{item}' is not STACK/LOGICAL_ID", field="--allow-replace")
    cfg = env_config(ctx, env)
    options = DeployOptions(yes=yes, args={"image_tag": image_tag} if image_tag else {}, only=tuple(only),
                            force=force, skip_image_check=skip_image_check, no_rollback=no_rollback,
                            fail_fast=fail_fast, concurrency=concurrency, allow_replace=frozenset(allow_replace),
                            ignore_triggers=ignore_triggers)
    run = run_deploy(cfg, aws_for(ctx, cfg), options, Reporter())
    finish(run, as_json, "deploy")


@cli.command()
@click.argument("env")
@deploy_options
@click.option("--allow-replace", multiple=True, metavar="STACK/LOGICAL_ID",
              help="Show the guard's verdict as deploy would give it with this consent.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when nothing changes, 4 when something does.")
@click.pass_context
def plan(ctx: click.Context, env: str, only, image_tag, allow_replace, as_json: bool, detailed_exitcode: bool) -> None:
    """Show what deploy would change in ENV: a change set per differing stack, described, then deleted."""
    from perfdeploy.deploy.engine import DeployOptions
    from perfdeploy.deploy.plan import make_plan
    from perfdeploy.deploy.report import Reporter, plan_tables
    from perfdeploy.deploy.run import render_checked

    cfg = env_config(ctx, env)
    reporter = Reporter()
    options = DeployOptions(args={"image_tag": image_tag} if image_tag else {}, only=tuple(only),
                            allow_replace=frozenset(allow_replace))
    result = make_plan(aws_for(ctx, cfg), render_checked(cfg, reporter), options, reporter)
    if as_json:
        emit_json(result.to_json())
    plan_tables(result)
    if detailed_exitcode and result.changed:
        raise SystemExit(DIFFERENCES)


@cli.command()
@click.argument("env")
@click.pass_context
def bootstrap(ctx: click.Context, env: str) -> None:
    """Create (or re-harden) the artifacts bucket of ENV's account and region: large templates, releases."""
    from perfdeploy.deploy.artifacts import Artifacts

    cfg = env_config(ctx, env)
    bucket = Artifacts(aws_for(ctx, cfg)).ensure(harden=True)
    err.print(f"artifacts bucket {bucket}: encrypted, versioned, public access blocked, TLS only")


@cli.command()
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


@cli.command()
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


@cli.command()
@click.argument("env")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, env: str, as_json: bool) -> None:
    """Show each stack's status, last update and whether its template is current."""
    from perfdeploy.deploy.inspect import status as read_status

    cfg = env_config(ctx, env)
    data = read_status(cfg, aws_for(ctx, cfg))
    if as_json:
        return emit_json(data)
    current = {True: "current", False: "differs", None: "-"}
    err.print(titled_table(f"{env} ({cfg.region})", ("stack", "status", "last update", "template"),
                           [(s["key"], s["status"], s["last_updated"] or "-", current[s["template_current"]])
                            for s in data["stacks"]]))


@cli.command()
@click.argument("env")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outputs(ctx: click.Context, env: str, as_json: bool) -> None:
    """Show every deployed stack's outputs."""
    from perfdeploy.deploy.inspect import outputs as read_outputs

    cfg = env_config(ctx, env)
    data = read_outputs(cfg, aws_for(ctx, cfg))
    if as_json:
        return emit_json(data)
    for key, values in data["stacks"].items():
        err.print(f"[bold]{key}[/]", markup=True)
        for name, value in sorted(values.items()):
            err.print(f"  {name} = {value}", markup=False)


def main() -> None:
    cli(prog_name="perfdeploy")


from perfdeploy.local.command import local  # noqa: E402

cli.add_command(local)

from perfdeploy.ops_commands import destroy, drift  # noqa: E402

cli.add_command(destroy)
cli.add_command(drift)
