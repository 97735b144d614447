"""render, lint, graph: from config to checked templates; no AWS."""

from __future__ import annotations

from pathlib import Path

import click

from perfdeploy.cli.shared import EnvCommand, config_options, env_config
from perfdeploy.console import err, plural
from perfdeploy.errors import ConfigError, LintError


@click.command(cls=EnvCommand)
@click.argument("envs", nargs=-1, required=True, metavar="ENV...")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("templates_out"),
              show_default=True, help="Where templates go (one folder per environment).")
@click.option("--no-lint", is_flag=True, help="Skip the lint gate.")
@config_options
@click.pass_context
def render(ctx: click.Context, envs: tuple[str, ...], out: Path, no_lint: bool) -> None:
    """Render ENV...'s templates and manifest into OUT/ENV/.
    """
    from perfdeploy.lint import gate, prepare_gate
    from perfdeploy.render import render_envs, write

    configs = [env_config(ctx, env) for env in envs]  # every config validated before anything is written
    regions = {cfg.region for cfg in configs}
    rendered = render_envs(configs, meanwhile=None if no_lint else lambda: prepare_gate(regions))
    if not no_lint:
        for region in dict.fromkeys(r.region for r in rendered):  # one gate per region, over all its templates
            templates = {name: body for r in rendered if r.region == region for name, body in r.templates().items()}
            for notice in gate(templates, region):
                err.print(str(notice), highlight=False, markup=False)
    try:
        out.mkdir(parents=True, exist_ok=True)  # a folder that cannot be made fails before any file is written
        for r in rendered:
            target = write(r, out)
            err.print(f"{r.env}: {plural(len(r.stacks), 'stack')} -> {target}/")
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename or out}: {exc.strerror or exc}", field="--out") from None


@click.command(cls=EnvCommand)
@click.argument("envs", nargs=-1, required=True, metavar="ENV...")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=Path("templates_out"),
              show_default=True, help="Folder of rendered templates.")
@click.option("--no-cache", is_flag=True, help="Lint every template, even ones already linted clean.")
@config_options
@click.pass_context
def lint(ctx: click.Context, envs: tuple[str, ...], directory: Path, no_cache: bool) -> None:
    """Lint ENV...'s rendered templates: cfn-lint plus perfdeploy's house rules.
    """
    from perfdeploy.lint import lint_templates

    failed = 0
    for env in envs:
        cfg = env_config(ctx, env)
        folder = directory / env
        files = sorted(folder.glob("*.yaml"))
        if not files:
            raise ConfigError(f"no rendered templates; run 'perfdeploy render {env}' first", file=str(folder))
        findings = lint_templates({str(p): p.read_text() for p in files}, cfg.region, use_cache=not no_cache)
        for f in findings:
            err.print(str(f), highlight=False, markup=False)
        errors = sum(f.fails for f in findings)
        failed += errors
        err.print(f"{env}: {plural(len(files), 'template')}, {plural(errors, 'error')}, "
                  f"{plural(len(findings) - errors, 'notice')}")
    if failed:
        raise LintError(f"the lint gate found {plural(failed, 'error')}")


@click.command(cls=EnvCommand)
@click.argument("env")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid"]), default="text", show_default=True,
              help="Plain text, or a Mermaid diagram for docs.")
@config_options
@click.pass_context
def graph(ctx: click.Context, env: str, fmt: str) -> None:
    """Show ENV's deploy order and the edges between stacks.
    """
    from perfdeploy import graph as g
    from perfdeploy.blueprints import all_blueprints

    deps = g.dependencies(all_blueprints(), env_config(ctx, env))
    order = g.deploy_order(deps)
    click.echo(g.to_mermaid(order, deps) if fmt == "mermaid" else g.to_text(order, deps))
