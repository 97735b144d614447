"""The perfdeploy command line: parse arguments, call one layer function, print its result.

Errors are mapped to exit codes in one place (``Cli.invoke``); human output goes to stderr, ``--json`` to stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from perfdeploy import __version__
from perfdeploy.config import DEFAULT_CONFIG_DIR, EnvConfig, load_config
from perfdeploy.console import err
from perfdeploy.errors import INTERRUPTED, LintError, PerfdeployError


class Cli(click.Group):
    """Maps perfdeploy's error types to exit codes: one table for every command (see errors.py)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PerfdeployError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            ctx.exit(exc.exit_code)
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


def main() -> None:
    cli(prog_name="perfdeploy")
