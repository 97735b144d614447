"""Deploy an environment's rendered stacks: ready pool over the graph, change sets, output chaining.

Per stack: decide from its CloudFormation state (states.py), skip when nothing differs, otherwise a change
set (guarded, approved), executed and waited for; its outputs fill its consumers' parameters.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from perfdeploy.aws import AWS_ERRORS, Aws
from perfdeploy.deploy import changeset, operations, rollout
from perfdeploy.deploy.artifacts import Artifacts
from perfdeploy.deploy.executor import DEFAULT_CONCURRENCY, PoolInterrupted, run_pool
from perfdeploy.deploy.guard import allowed_in, consent_flags, refusals, refused_changes, relaxed_policy
from perfdeploy.deploy.image import missing_image_reason
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action, RunResult, StackResult
from perfdeploy.deploy.stacks import (
    body_hash,
    describe,
    failure_reason,
    last_updated,
    same_template,
    stack_outputs,
    stack_parameters,
)
from perfdeploy.deploy.states import SKIPPABLE, Deploy, deploy_decision, refusal_reason
from perfdeploy.deploy.triggers import Trigger, read_triggers
from perfdeploy.deploy.waiter import Backoff, EventReader, GaveUp, Interrupted, poll, wait_for_stack
from perfdeploy.errors import ConfigError, SafetyRefusal
from perfdeploy.render import MAX_INLINE_BYTES, Rendered, RenderedStack

IMAGE_ARG = "image_tag"


class StackFailure(Exception):
    """A stack cannot be deployed (a precondition failed); its dependents are skipped."""


@dataclass(frozen=True)
class DeployOptions:
    yes: bool = False
    args: dict[str, str] = field(default_factory=dict)     # deploy-time arguments, e.g. image_tag
    only: tuple[str, ...] = ()                               # --stack KEY (repeatable)
    force: bool = False
    skip_image_check: bool = False
    no_rollback: bool = False
    fail_fast: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    allow_replace: frozenset[str] = frozenset()
    ignore_triggers: bool = False
    execution_roles: bool = False  # change sets run as each stack's CloudFormation execution role (iam stack)


class Deployer:
    def __init__(self, aws: Aws, rendered: Rendered, options: DeployOptions, reporter: Reporter,
                 approve: Callable[[RenderedStack, list[dict]], bool], backoff: Backoff | None = None,
                 stop: threading.Event | None = None,
                 cancel_on_interrupt: Callable[[list[str]], bool] = lambda keys: False):
        self.aws, self.rendered, self.options, self.report = aws, rendered, options, reporter
        self.cancel_on_interrupt = cancel_on_interrupt
        self.approve = approve
        self.backoff = backoff or Backoff()
        self.stop = stop or threading.Event()
        self.cfn = aws.client("cloudformation")
        aws.on_retry = reporter.notice   # botocore's own long retries of a call say so
        self.artifacts = Artifacts(aws)
        self.outputs: dict[str, dict[str, str]] = {}
        self.parameters: dict[str, dict[str, str]] = {}  # what each stack was deployed with, for releases
        self.seen: dict[str, dict[str, str]] = {}        # each stack's id and last update as the run left it
        # What the last release recorded of each stack (ReleaseStore.last_deployed): lets a no-op skip reading
        # templates that nothing has updated since.
        self.recorded: dict[str, dict[str, str]] = {}
        self._triggers: dict[tuple[str, str], Trigger] = {}

    # The run ------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        start = time.monotonic()
        selected = self.selection()
        deps = {key: set(self.rendered.stack(key).manifest["depends_on"]) for key in selected}
        try:
            self.prepare(selected, deps)
        except KeyboardInterrupt:  # Ctrl-C before any stack started: each one says so
            results = {k: self._placeholder(k, Action.INTERRUPTED, "not started: the run was interrupted")
                       for k in selected}
            return RunResult(self.rendered.env, self.rendered.region, list(results.values()),
                             time.monotonic() - start)
        self.report.begin(selected)
        try:
            results = run_pool(deps, self.deploy_stack, self._placeholder, self.options.concurrency,
                               self.options.fail_fast, self.stop)
        except PoolInterrupted as exc:
            results = exc.results
            self.report.end()
            try:
                self._after_interrupt(results)
            except KeyboardInterrupt:  # Ctrl-C again: the results as they stand
                pass
        finally:
            self.report.end()
        ordered = [results[s.key] for s in self.rendered.stacks if s.key in results]
        return RunResult(self.rendered.env, self.rendered.region, ordered, time.monotonic() - start)

    def prepare(self, selected: list[str], deps: dict[str, set[str]]) -> None:
        """What the run reads before any stack starts: deployed upstreams (--stack) and rollback triggers."""
        self._read_unselected_upstreams(deps)
        self._triggers = read_triggers(self.aws, self.rendered, selected, self.options.ignore_triggers, self.report)

    def _after_interrupt(self, results: dict[str, StackResult]) -> None:
        """Ctrl-C: name the stacks still in flight on AWS; on a terminal offer to cancel their updates
        (a create cannot be cancelled: it continues, and `perfdeploy status` shows it)."""
        in_flight = []
        for result in results.values():
            if result.action is not Action.INTERRUPTED:
                continue
            try:
                stack = describe(self.cfn, result.stack_name)
            except AWS_ERRORS:  # cannot tell: the result stays as it is
                continue
            result.status = stack["StackStatus"] if stack else ""
            if result.status.endswith("_IN_PROGRESS"):
                in_flight.append(result)
        if not in_flight:
            return
        self.report.notice("still in progress on AWS: " + ", ".join(f"{r.key} ({r.status})" for r in in_flight))
        updates = [r for r in in_flight if r.status == "UPDATE_IN_PROGRESS"]
        creates = [r for r in in_flight if r.status != "UPDATE_IN_PROGRESS"]
        if creates:
            self.report.notice(f"{', '.join(r.key for r in creates)}: cannot be cancelled; they continue "
                               "('perfdeploy status' shows them)")
        if updates and self.cancel_on_interrupt([r.key for r in updates]):
            for r in updates:
                try:
                    operations.cancel_update(self.cfn, r.stack_name)
                except AWS_ERRORS as exc:  # e.g. the update finished meanwhile: nothing left to cancel
                    r.reason = f"could not cancel the update: {exc}"
                    continue
                r.action, r.reason = Action.CANCELLED, "update cancelled after Ctrl-C"

    def selection(self) -> list[str]:
        keys = [s.key for s in self.rendered.stacks]
        for key in self.options.only:
            if key not in keys:
                raise ConfigError(f"unknown stack '{key}' (stacks: {', '.join(keys)})", field="--stack")
        return [k for k in keys if not self.options.only or k in self.options.only]

    def _read_unselected_upstreams(self, deps: dict[str, set[str]]) -> None:
        """With --stack, inputs from stacks outside the selection come from what is deployed."""
        for upstream in sorted({u for ups in deps.values() for u in ups} - set(deps)):
            name = self.rendered.stack(upstream).stack_name
            stack = describe(self.cfn, name)
            if stack is None or not stack["StackStatus"].endswith("_COMPLETE") or \
                    stack["StackStatus"] == "ROLLBACK_COMPLETE":
                raise ConfigError(f"the {upstream} stack ({name}) is not deployed, so its outputs cannot be "
                                  f"read: deploy it too (--stack {upstream}) or deploy the whole environment",
                                  field="--stack")
            self.outputs[upstream] = stack_outputs(stack)
        if not self.options.only:
            return
        selected = set(deps)
        stale = sorted(s.key for s in self.rendered.stacks if s.key not in selected
                       and selected & set(s.manifest["depends_on"]) and describe(self.cfn, s.stack_name))
        if stale:
            self.report.notice(f"deployed dependents that may now have stale inputs: {', '.join(stale)} "
                               "(deploy them next)")

    def _placeholder(self, key: str, action: Action, reason: str) -> StackResult:
        return StackResult(key, self.rendered.stack(key).stack_name, action, reason=reason)

    # One stack ----------------------------------------------------------------------------------

    def deploy_stack(self, key: str) -> StackResult:
        spec = self.rendered.stack(key)
        start = time.monotonic()
        result = StackResult(key, spec.stack_name, Action.FAILED)
        self.report.started(key)
        try:
            self._deploy(spec, result)
        except Interrupted:
            result.action, result.reason = Action.INTERRUPTED, "the run was interrupted"
        except changeset.ChangeSetFailed as exc:
            result.action, result.reason = Action.FAILED, f"change set failed: {exc}"
        except (StackFailure, GaveUp) as exc:
            result.action, result.reason = Action.FAILED, str(exc)
        except AWS_ERRORS as exc:  # an answer nobody foresaw is this stack's failure, not the run's
            result.action, result.reason = Action.FAILED, str(exc)
        except SafetyRefusal as exc:
            result.action, result.reason = Action.REFUSED, str(exc)
        result.seconds = time.monotonic() - start
        if result.outputs:
            self.outputs[key] = result.outputs
        self.report.finished(result)
        return result

    def _deploy(self, spec: RenderedStack, result: StackResult) -> None:
        say = self._say(spec.key)
        stack = describe(self.cfn, spec.stack_name)
        decision = deploy_decision(stack and stack["StackStatus"])
        if decision is Deploy.WAIT:
            self.report.notice(f"{spec.key}: {stack['StackStatus']}; waiting for the operation in progress")
            stack = poll(lambda: self._settled(spec.stack_name), self.backoff, self.stop, say) or None
            decision = deploy_decision(stack and stack["StackStatus"])
        # Read after any wait: the operation that finished may have changed what is deployed (the kept image).
        params = self.parameters_for(spec, stack)
        if decision is Deploy.REFUSE:
            result.status = stack["StackStatus"]
            raise SafetyRefusal(refusal_reason(stack["StackStatus"]))
        if decision is Deploy.RECREATE:
            self.report.notice(f"{spec.key}: ROLLBACK_COMPLETE (a failed first create): deleting it and "
                               "creating it again (RetainExceptOnCreate kept nothing that matters)")
            self._delete_and_wait(stack["StackId"])
            stack, decision = None, Deploy.CREATE
        if decision is Deploy.FIX_FORWARD:
            self.report.notice(f"{spec.key}: {stack['StackStatus']} (paused by --no-rollback): updating it from "
                               "where it stopped; 'perfdeploy rollback' rolls it back instead")
        if decision is Deploy.UPDATE and not self.options.force and self.is_unchanged(spec, stack, params):
            self._unchanged(spec, stack, params, result)
            return
        self._check_image(spec, params)
        kind = "CREATE" if decision is Deploy.CREATE else "UPDATE"
        cs = changeset.create(self.cfn, spec.stack_name, kind, self.template_arg(spec), params,
                              spec.manifest["tags"], spec.manifest["capabilities"], self._rollback_config(spec),
                              self.backoff, self.stop, say, role_arn=self.role_arn(spec))
        try:
            if cs.empty:
                if decision is Deploy.FIX_FORWARD:
                    result.status = stack["StackStatus"]
                    raise StackFailure(f"still {stack['StackStatus']}: nothing differs from the update that "
                                       "failed, so there is nothing to fix it forward with; change the template, "
                                       "or roll it back with 'perfdeploy rollback ENV'")
                self._unchanged(spec, stack, params, result)
                return
            result.changes = cs.changes
            self.report.changes(spec.key, cs.changes)
            refused = refusals(spec.key, cs.changes, self.options.allow_replace)
            if refused:
                flags = consent_flags(spec.key, refused_changes(spec.key, cs.changes, self.options.allow_replace))
                raise SafetyRefusal("the change set would lose data: " + "; ".join(refused) +
                                    f". To let it go ahead: {flags}")
            if self.stop.is_set():
                raise Interrupted()
            if not self.approve(spec, cs.changes):
                result.action, result.reason = Action.SKIPPED, "not approved"
                return
            if self.stop.is_set():  # Ctrl-C while the prompt was open: nothing new executes
                raise Interrupted()
            with rollout.follow(self.aws, spec.manifest, cs.changes, spec.key, self.report, self.backoff,
                                self.stop) as deployment:
                final = self._execute(spec, cs, stack)
        finally:
            changeset.delete(self.cfn, cs)  # a no-op once executed
        result.status = final["StackStatus"]
        if deployment.settle(result):  # ECS rolled its new deployment back: rolled_back, and the run fails
            return
        if final["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            result.action = Action.FAILED
            result.reason = failure_reason(final)
            return
        self._protect(spec, final)
        result.action = Action.CREATED if kind == "CREATE" else Action.UPDATED
        result.outputs = stack_outputs(final)
        self._deployed(spec, final, params)

    def _unchanged(self, spec: RenderedStack, stack: dict, params: dict[str, str], result: StackResult) -> None:
        """Nothing to change through a change set. Termination protection and the stack policy are not part
        of one (a difference in them alone is "no changes" to CloudFormation), so they are applied here."""
        applied = self._protect(spec, stack)
        result.action = Action.UPDATED if applied else Action.UNCHANGED
        result.reason = "; ".join(applied)
        result.status = stack["StackStatus"]
        result.outputs = stack_outputs(stack)
        self._deployed(spec, stack, params)

    def _deployed(self, spec: RenderedStack, stack: dict, params: dict[str, str]) -> None:
        """What the release of this run records of the stack: its parameters, and the id and last update
        of the description that showed it holding this template."""
        self.parameters[spec.key] = params
        self.seen[spec.key] = {"stack_id": stack["StackId"], "last_updated": last_updated(stack)}

    def _say(self, key: str):
        return lambda text: self.report.notice(f"{key}: {text}")

    def _execute(self, spec: RenderedStack, cs: changeset.ChangeSet, stack: dict | None) -> dict:
        events = EventReader(self.cfn, cs.stack_id)
        events.mark()
        policy = spec.manifest["stack_policy"]
        allowed = allowed_in(spec.key, cs.changes, self.options.allow_replace) if policy and stack else []
        if allowed:  # relax the prod policy for exactly the named resources, and restore it whatever happens
            self.cfn.set_stack_policy(StackName=cs.stack_id, StackPolicyBody=_json(relaxed_policy(policy, allowed)))
        try:
            changeset.execute(self.cfn, cs, self.options.no_rollback)
            final = wait_for_stack(self.cfn, cs.stack_id, events, lambda e: self.report.event(spec.key, e),
                                   self.backoff, self.stop, self._say(spec.key))
        finally:
            if allowed:
                self.cfn.set_stack_policy(StackName=cs.stack_id, StackPolicyBody=_json(policy))
        final["_first_failure"] = events.first_failure
        return final

    # Pieces -------------------------------------------------------------------------------------

    def parameters_for(self, spec: RenderedStack, stack: dict | None) -> dict[str, str]:
        """The stack's parameter values: chained outputs, and deploy-time arguments. An argument not given
        keeps its deployed value (a deploy without --image-tag must not roll the service to the config's
        default image); only a new stack takes the default."""
        deployed = stack_parameters(stack)
        params: dict[str, str] = {}
        for name, value in spec.manifest["parameters"].items():
            if isinstance(value, dict) and "stack" in value:
                upstream = self.outputs.get(value["stack"], {})
                if value["output"] not in upstream:
                    raise StackFailure(f"the {value['stack']} stack has no output {value['output']}")
                params[name] = upstream[value["output"]]
            elif isinstance(value, dict) and "arg" in value:
                params[name] = self.options.args.get(value["arg"]) or deployed.get(name) or value["default"]
            else:
                params[name] = str(value)
        return params

    def _settled(self, name: str) -> dict | None:
        """The stack once no operation is in progress ({} when it is gone); None while one is."""
        stack = describe(self.cfn, name)
        if stack is None:
            return {}
        return stack if deploy_decision(stack["StackStatus"]) is not Deploy.WAIT else None

    def is_unchanged(self, spec: RenderedStack, stack: dict, params: dict[str, str]) -> bool:
        """CDK's canSkipDeploy: same template, parameters, tags and termination protection; stable state."""
        if stack["StackStatus"] not in SKIPPABLE:
            return False
        deployed_tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
        if stack_parameters(stack) != params or deployed_tags != spec.manifest["tags"]:
            return False
        if bool(stack.get("EnableTerminationProtection")) != spec.manifest["termination_protection"]:
            return False
        return self.recorded_as(spec, stack) or same_template(self.cfn, spec.stack_name, spec.body)

    def recorded_as(self, spec: RenderedStack, stack: dict) -> bool:
        """True when the last release recorded this very stack (its id and last update) holding this template.
        Any update since, by perfdeploy or anyone else, moves LastUpdatedTime (API reference, Stack), and
        then the deployed template is read and compared as before."""
        recorded = self.recorded.get(spec.key) or {}
        updated = last_updated(stack)
        return bool(updated) and recorded.get("stack_id") == stack["StackId"] and \
            recorded.get("last_updated") == updated and recorded.get("sha256") == body_hash(spec.body)

    def template_arg(self, spec: RenderedStack) -> dict[str, str]:
        if len(spec.body.encode()) <= MAX_INLINE_BYTES:
            return {"TemplateBody": spec.body}
        return {"TemplateURL": self.artifacts.put_template(self.rendered.env, spec.key, spec.body)}

    def role_arn(self, spec: RenderedStack) -> str | None:
        """The stack's execution role with --execution-roles (a manifest without one: older releases)."""
        if not self.options.execution_roles:
            return None
        name = spec.manifest.get("execution_role") or f"{spec.stack_name}-cfn"
        return f"arn:{self.aws.partition}:iam::{self.aws.account_id}:role/{name}"

    def _check_image(self, spec: RenderedStack, params: dict[str, str]) -> None:
        for name, value in spec.manifest["parameters"].items():
            # A missing tag (new stack, no --image-tag, no default) is refused even with --skip-image-check.
            if isinstance(value, dict) and value.get("arg") == IMAGE_ARG and not (
                    self.options.skip_image_check and params.get(name)):
                registry = self.outputs.get("registry", {})
                reason = missing_image_reason(self.aws.client("ecr"), registry.get("RepositoryName", ""),
                                              params[name], registry.get("RepositoryUri", ""),
                                              env=self.rendered.env)
                if reason:
                    raise StackFailure(reason)

    def _rollback_config(self, spec: RenderedStack) -> dict:
        """Always given: CloudFormation keeps a stack's saved triggers when RollbackConfiguration is left out,
        and only an explicit empty list detaches them (API reference, RollbackConfiguration). So a stack
        without triggers this run (dev, rollback, --ignore-triggers, an alarm gone) sheds the old ones."""
        wanted = [(t["stack"], t["output"]) for t in spec.manifest.get("rollback_triggers") or []]
        triggers = [{"Arn": self._triggers[w].arn, "Type": self._triggers[w].type} for w in wanted
                    if w in self._triggers]
        if not triggers:
            return {"RollbackTriggers": []}
        return {"RollbackTriggers": triggers, "MonitoringTimeInMinutes": spec.manifest["rollback_monitoring_minutes"]}

    def _protect(self, spec: RenderedStack, stack: dict) -> list[str]:
        """Termination protection and the stack policy as the manifest says, applied where they differ from
        what the stack has (neither goes through a change set). Returns what was changed."""
        applied = []
        protect = spec.manifest["termination_protection"]
        if bool(stack.get("EnableTerminationProtection")) != protect:
            self.cfn.update_termination_protection(StackName=stack["StackId"], EnableTerminationProtection=protect)
            applied.append(f"termination protection {'enabled' if protect else 'disabled'}")
        policy = spec.manifest["stack_policy"]
        if policy:
            deployed = self.cfn.get_stack_policy(StackName=stack["StackId"]).get("StackPolicyBody")
            if deployed is None or json.loads(deployed) != policy:
                self.cfn.set_stack_policy(StackName=stack["StackId"], StackPolicyBody=_json(policy))
                applied.append("stack policy set")
        return applied

    def _delete_and_wait(self, stack_id: str) -> None:
        operations.delete_stack(self.cfn, stack_id)

        def deleted():
            status = self.cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
            if status == "DELETE_FAILED":
                raise StackFailure(f"{stack_id}: DELETE_FAILED while deleting the failed first create")
            return status if status == "DELETE_COMPLETE" else None

        poll(deleted, self.backoff, self.stop)


def _json(value) -> str:
    return json.dumps(value)
