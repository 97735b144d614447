"""The deploy command's one function: render in memory, lint, deploy, (record the release)."""

from __future__ import annotations

import select
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache

import click

from perfdeploy.aws import Aws
from perfdeploy.config import EnvConfig
from perfdeploy.console import plural
from perfdeploy.deploy.artifacts import Artifacts
from perfdeploy.deploy.engine import Deployer, DeployOptions
from perfdeploy.deploy.guard import check_consents
from perfdeploy.deploy.releases import Release, ReleaseStore, git_commit, new_release_id
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action, RunResult
from perfdeploy.deploy.rollback import Rollbacker, release_as_rendered, rollback_order
from perfdeploy.deploy.stacks import (
    deployed_stateful,
    deployed_template,
    describe,
    last_updated,
    same_template,
    stack_parameters,
)
from perfdeploy.deploy.states import SKIPPABLE
from perfdeploy.deploy.waiter import Interrupted
from perfdeploy.errors import UsageError
from perfdeploy.lint import gate
from perfdeploy.render import Rendered, RenderedStack, render_env


def render_checked(cfg: EnvConfig, reporter: Reporter) -> Rendered:
    """Render in memory (never into templates_out/) and pass the lint gate."""
    rendered = render_env(cfg)
    for notice in gate(rendered.templates(), rendered.region):
        reporter.notice(str(notice))
    return rendered


def approver(yes: bool, reporter: Reporter, stop: threading.Event) -> Callable[[RenderedStack, list[dict]], bool]:
    """--yes approves everything; otherwise each stack's changes are confirmed on the terminal, one prompt
    at a time (other stacks keep working meanwhile). Without a terminal that is a usage error."""
    if yes:
        return lambda spec, changes: True
    if not sys.stdin.isatty():
        raise UsageError("no terminal to approve changes on: pass --yes to approve every change set",
                         field="--yes")
    lock = threading.Lock()

    def ask(spec: RenderedStack, changes: list[dict]) -> bool:
        with lock, reporter.paused():
            return confirm(f"Execute {plural(len(changes), 'change')} in {spec.stack_name}?", stop)
    return ask


def confirm(question: str, stop: threading.Event) -> bool:
    """A y/N question on the terminal that gives up (Interrupted) once the run is stopped. The prompt is
    open in a stack's worker thread, where Ctrl-C does not arrive: a blocking read would hold the run's
    results until someone pressed Enter."""
    click.echo(f"{question} [y/N]: ", nl=False, err=True)
    while not stop.is_set():
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        if ready:
            return sys.stdin.readline().strip().lower() in ("y", "yes")
    click.echo("", err=True)
    raise Interrupted()


def cancel_prompt(keys: list[str]) -> bool:
    """After Ctrl-C, on a terminal: cancel the updates still in progress?"""
    if not sys.stdin.isatty():
        return False
    try:
        return click.confirm(f"Cancel the updates in progress ({', '.join(keys)})?", default=False, err=True)
    except (click.Abort, KeyboardInterrupt):
        return False


def deploy(cfg: EnvConfig, aws: Aws, options: DeployOptions, reporter: Reporter,
           stop: threading.Event | None = None) -> RunResult:
    """Render, lint, take the environment's lock, deploy, and record a release when every stack succeeded."""
    stop = stop or threading.Event()
    approve = approver(options.yes, reporter, stop)
    rendered = render_checked(cfg, reporter)
    check_allow_replace(rendered, options.allow_replace, aws)
    return deploy_rendered(rendered, aws, options, reporter, approve, stop)


def check_allow_replace(rendered: Rendered, allow_replace: frozenset[str], aws: Aws) -> None:
    """Each --allow-replace names a stack and a stateful resource in its new or its deployed template."""
    if allow_replace:
        names = {s.key: s.stack_name for s in rendered.stacks}
        deployed = cache(lambda key: deployed_stateful(aws.client("cloudformation"), names[key]))
        check_consents(allow_replace, {s.key: s.manifest.get("stateful_resources", []) for s in rendered.stacks},
                       deployed)


def deploy_rendered(rendered: Rendered, aws: Aws, options: DeployOptions, reporter: Reporter,
                    approve: Callable[[RenderedStack, list[dict]], bool],
                    stop: threading.Event | None = None) -> RunResult:
    store = ReleaseStore(Artifacts(aws))
    with store.lock(rendered.env, "deploy"):
        deployer = Deployer(aws, rendered, options, reporter, approve, stop=stop, cancel_on_interrupt=cancel_prompt)
        deployer.recorded = store.last_deployed(rendered.env)
        run = deployer.run()
        if run.ok and any(s.action in (Action.CREATED, Action.UPDATED) for s in run.stacks):
            _record(store, run, lambda: snapshot(deployer, rendered, "deploy"), reporter)
    return run


def _record(store: ReleaseStore, run: RunResult, release: Callable[[], Release], reporter: Reporter) -> None:
    """Record the run's release; Ctrl-C meanwhile leaves the run's results whole, without a release."""
    try:
        recorded = release()
        store.record(recorded)
        run.release = recorded.id
    except KeyboardInterrupt:
        run.stopped = True
        reporter.notice("interrupted: no release was recorded for this run ('perfdeploy releases' lists them)")


def snapshot(deployer: Deployer, rendered: Rendered, kind: str) -> Release:
    """What is deployed now, stack by stack: the run's stacks as deployed, the others as read back."""
    stacks = {}
    for spec in rendered.stacks:
        params = deployer.parameters.get(spec.key)
        body = spec.body
        seen = deployer.seen.get(spec.key, {})
        if params is None:  # not part of this run (--stack): record what is deployed
            stack = describe(deployer.cfn, spec.stack_name)
            if stack is None:
                continue
            params = stack_parameters(stack)
            body = deployed_template(deployer.cfn, spec.stack_name)
            seen = {"stack_id": stack["StackId"], "last_updated": last_updated(stack)}  # described before read
        stacks[spec.key] = {"manifest": spec.manifest, "template": body, "parameters": params, **seen}
    image_tag = next((p.get("ImageTag") for p in (s["parameters"] for s in stacks.values()) if "ImageTag" in p), None)
    return Release(new_release_id(), rendered.env, datetime.now(UTC).isoformat(timespec="seconds"), git_commit(),
                   image_tag, kind, stacks)


def releases(cfg: EnvConfig, aws: Aws) -> list[Release]:
    return ReleaseStore(Artifacts(aws)).all(cfg.env)


def rollback(env: str, region: str, aws: Aws, to: str | None, yes: bool, skip_resources: tuple[str, ...],
             allow_replace: frozenset[str], reporter: Reporter, stop: threading.Event | None = None,
             approve: Callable[[RenderedStack, list[dict]], bool] | None = None,
             execution_roles: bool = False) -> RunResult:
    """Return the environment to release `to` (default: the last good one) and record that as a release."""
    stop = stop or threading.Event()
    approve = approve or approver(yes, reporter, stop)
    store = ReleaseStore(Artifacts(aws))
    with store.lock(env, "rollback"):
        ids = store.ids(env)
        if not ids:
            raise UsageError(f"{env} has no recorded release to roll back to (releases are recorded by "
                             "successful deploys)", field="ENV")
        current = store.load(env, ids[-1])
        target = store.load(env, to) if to else _last_good(aws, current, store, ids)
        reporter.notice(f"rolling {env} back to release {target.id} ({target.time}, image {target.image_tag})")
        rendered = release_as_rendered(target, region, rollback_order(target, current))
        check_allow_replace(rendered, allow_replace, aws)
        options = DeployOptions(yes=yes, args={}, allow_replace=allow_replace, skip_image_check=True,
                                execution_roles=execution_roles)
        roller = Rollbacker(aws, rendered, options, reporter, approve, stop=stop, skip_resources=skip_resources,
                            cancel_on_interrupt=cancel_prompt)
        roller.recorded = store.last_deployed(env)
        run = roller.run()
        if run.ok:
            _record(store, run, lambda: snapshot(roller, rendered, "rollback"), reporter)
    return run


def _last_good(aws: Aws, latest: Release, store: ReleaseStore, ids: list[str]) -> Release:
    """The latest release, unless it is exactly what is deployed: then the one before it."""
    cfn = aws.client("cloudformation")
    deployed_is_latest = True
    for stack in latest.stacks.values():
        name = stack["manifest"]["stack_name"]
        live = describe(cfn, name)
        if live is None or live["StackStatus"] not in SKIPPABLE or stack_parameters(live) != stack["parameters"] \
                or not same_template(cfn, name, stack["template"]):
            deployed_is_latest = False
            break
    if not deployed_is_latest:
        return latest
    if len(ids) < 2:
        raise UsageError(f"what is deployed is release {latest.id}, the only one recorded: there is nothing "
                         "older to roll back to", field="--to")
    return store.load(latest.env, ids[-2])
