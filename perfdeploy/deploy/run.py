"""The deploy command's one function: render in memory, lint, deploy, (record the release)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import click

from perfdeploy.aws import Aws
from perfdeploy.config import EnvConfig
from perfdeploy.deploy.engine import Deployer, DeployOptions
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import RunResult
from perfdeploy.errors import UsageError
from perfdeploy.lint import gate
from perfdeploy.render import Rendered, RenderedStack, render_env


def render_checked(cfg: EnvConfig, reporter: Reporter) -> Rendered:
    """Render in memory (never into templates_out/) and pass the lint gate."""
    rendered = render_env(cfg)
    for notice in gate(rendered.templates(), rendered.region):
        reporter.notice(str(notice))
    return rendered


def approver(yes: bool, reporter: Reporter) -> Callable[[RenderedStack, list[dict]], bool]:
    """--yes approves everything; otherwise each stack's changes are confirmed on the terminal, one prompt
    at a time (other stacks keep working meanwhile). Without a terminal that is a usage error."""
    if yes:
        return lambda spec, changes: True
    if not sys.stdin.isatty():
        raise UsageError("no terminal to approve changes on: pass --yes to approve every change set",
                         field="--yes")
    lock = threading.Lock()

    def ask(spec: RenderedStack, changes: list[dict]) -> bool:
        with lock, reporter.lock:
            return click.confirm(f"Execute {len(changes)} changes in {spec.stack_name}?", default=False,
                                 err=True)
    return ask


def deploy(cfg: EnvConfig, aws: Aws, options: DeployOptions, reporter: Reporter,
           stop: threading.Event | None = None) -> RunResult:
    approve = approver(options.yes, reporter)
    rendered = render_checked(cfg, reporter)
    run = Deployer(aws, rendered, options, reporter, approve, stop=stop).run()
    return run
