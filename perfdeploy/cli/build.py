"""render, lint, graph: from config to checked templates; no AWS."""

from __future__ import annotations

from pathlib import Path

import click

from perfdeploy.cli.shared import env_config
from perfdeploy.console import err
from perfdeploy.errors import LintError, PerfdeployError


@click.command()
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


@click.command()
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


@click.command()
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
