"""`perfdeploy rollback`: the environment back to a recorded release, from any CloudFormation state.

Per stack, the first step comes from its state (ROLLBACK_DECISIONS, one table); then the stack returns to
the target release's template and parameters through a change set, the guard applying.

Order: producers before consumers, so a consumer's chained inputs are read from its producer's outputs
*after* the producer has rolled back (a producer that replaced a resource has a new id by then; the id
recorded in the old release is gone). One exception: when the producer's target release no longer has an
output that a consumer uses today, that consumer rolls back first, so it stops using the resource before
its producer removes it.
"""

from __future__ import annotations

import time
from enum import StrEnum

from botocore.exceptions import ClientError

from perfdeploy.aws import AWS_ERRORS, error_code
from perfdeploy.deploy import operations
from perfdeploy.deploy.engine import Deployer, StackFailure
from perfdeploy.deploy.releases import Release
from perfdeploy.deploy.results import Action, StackResult
from perfdeploy.deploy.stacks import describe, stack_outputs
from perfdeploy.deploy.waiter import GaveUp, Interrupted, poll
from perfdeploy.render import Rendered, RenderedStack


class Step(StrEnum):
    RESTORE = "restore"            # stable: change set to the release's template and parameters
    CANCEL = "cancel"              # update in progress: cancel it, then restore
    CANNOT_CANCEL = "cannot_cancel"  # a create in progress cannot be cancelled
    WAIT = "wait"                  # another operation in progress: wait, then decide again
    CONTINUE = "continue"          # UPDATE_ROLLBACK_FAILED: continue-update-rollback, then restore
    ROLL_BACK_PAUSED = "rollback_paused"  # a paused failure (deploy --no-rollback): rollback-stack
    DELETE = "delete"              # a failed first create: delete it
    MANUAL = "manual"              # needs a human: say what


ROLLBACK_DECISIONS: dict[str | None, Step] = {
    None: Step.RESTORE,                       # not deployed: created from the release
    "CREATE_COMPLETE": Step.RESTORE,
    "UPDATE_COMPLETE": Step.RESTORE,
    "UPDATE_ROLLBACK_COMPLETE": Step.RESTORE,
    "IMPORT_COMPLETE": Step.RESTORE,
    "IMPORT_ROLLBACK_COMPLETE": Step.RESTORE,
    "UPDATE_IN_PROGRESS": Step.CANCEL,
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": Step.WAIT,
    "CREATE_IN_PROGRESS": Step.CANNOT_CANCEL,
    "UPDATE_ROLLBACK_FAILED": Step.CONTINUE,
    "CREATE_FAILED": Step.ROLL_BACK_PAUSED,
    "UPDATE_FAILED": Step.ROLL_BACK_PAUSED,
    "ROLLBACK_COMPLETE": Step.DELETE,
    "ROLLBACK_FAILED": Step.MANUAL,
    "DELETE_FAILED": Step.MANUAL,
    "REVIEW_IN_PROGRESS": Step.DELETE,
}


def rollback_step(status: str | None) -> Step:
    if status in ROLLBACK_DECISIONS:
        return ROLLBACK_DECISIONS[status]
    return Step.WAIT if status and status.endswith("_IN_PROGRESS") else Step.MANUAL


def rollback_order(target: Release, current: Release | None) -> dict[str, set[str]]:
    """key -> keys that must finish first. Producers first, except where a producer's target release drops
    an output a consumer uses now: then that consumer goes first."""
    deps: dict[str, set[str]] = {key: set() for key in target.stacks}
    wiring = current.stacks if current else target.stacks
    for consumer in target.stacks:
        inputs = {**_inputs(target.stacks[consumer]), **_inputs(wiring.get(consumer, {}))}
        for ref in inputs.values():
            producer = ref["stack"]
            if producer not in target.stacks or producer == consumer:
                continue
            dropped = ref["output"] not in target.stacks[producer]["manifest"]["outputs"]
            if dropped:
                deps[producer].add(consumer)
            else:
                deps[consumer].add(producer)
    return deps


def _inputs(stack: dict) -> dict[str, dict]:
    params = stack.get("manifest", {}).get("parameters", {})
    return {name: v for name, v in params.items() if isinstance(v, dict) and "stack" in v}


def release_as_rendered(target: Release, region: str, deps: dict[str, set[str]]) -> Rendered:
    """The target release as a Rendered environment the engine can deploy (order from `deps`)."""
    stacks = []
    for key, stack in target.stacks.items():
        # Chained inputs are read live (ids may have changed); everything else is what the release recorded.
        parameters = {name: spec if isinstance(spec, dict) and "stack" in spec else stack["parameters"][name]
                      for name, spec in stack["manifest"]["parameters"].items() if name in stack["parameters"]}
        manifest = {**stack["manifest"], "parameters": parameters, "depends_on": sorted(deps[key]),
                    "rollback_triggers": []}
        stacks.append(RenderedStack(key, manifest["stack_name"], stack["template"], manifest))
    return Rendered(target.env, region, tuple(stacks), {"env": target.env, "stacks": [s.manifest for s in stacks]})


class Rollbacker(Deployer):
    """The engine, with a state-driven first step per stack and rollback's result names."""

    def __init__(self, *args, skip_resources: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_resources = skip_resources
        self.cancelled: set[str] = set()

    def prepare(self, selected: list[str], deps: dict[str, set[str]]) -> None:
        super().prepare(selected, deps)
        for spec in self.rendered.stacks:  # consumers that go first read their producers' outputs as they are
            self.outputs[spec.key] = stack_outputs(describe(self.cfn, spec.stack_name))

    def deploy_stack(self, key: str) -> StackResult:
        spec = self.rendered.stack(key)
        start = time.monotonic()
        try:
            first = self._first_step(spec)
        except Interrupted:
            return self._done(StackResult(key, spec.stack_name, Action.INTERRUPTED,
                                          reason="the run was interrupted"), start)
        except (StackFailure, GaveUp, *AWS_ERRORS) as exc:  # this stack's failure; the others carry on
            return self._done(StackResult(key, spec.stack_name, Action.FAILED, reason=str(exc)), start)
        if first is not None:
            return self._done(first, start)
        result = super().deploy_stack(key)
        result.action = {Action.CREATED: Action.ROLLED_BACK, Action.UPDATED: Action.ROLLED_BACK,
                         Action.UNCHANGED: Action.CANCELLED if key in self.cancelled else Action.UNCHANGED,
                         }.get(result.action, result.action)
        return result

    def _done(self, result: StackResult, start: float) -> StackResult:
        result.seconds = time.monotonic() - start
        self.report.finished(result)
        return result

    def _first_step(self, spec: RenderedStack) -> StackResult | None:
        """Bring the stack to a state a change set can start from; a result when that ends its part."""
        for _ in range(5):  # each step leads to a settled state; a few rounds at most
            stack = describe(self.cfn, spec.stack_name)
            step = rollback_step(stack and stack["StackStatus"])
            name = spec.stack_name
            if step is Step.RESTORE:
                return None
            if step is Step.CANNOT_CANCEL:
                return StackResult(spec.key, name, Action.SKIPPED, stack["StackStatus"],
                                   reason="a create in progress cannot be cancelled: it continues; check "
                                          "'perfdeploy status' and roll back again once it has finished")
            if step is Step.MANUAL:
                return StackResult(spec.key, name, Action.FAILED, stack["StackStatus"],
                                   reason=f"{stack['StackStatus']} needs a hand: delete the stack keeping the "
                                          "resources that failed (aws cloudformation delete-stack "
                                          "--retain-resources ...), then deploy")
            if step is Step.CANCEL:
                self.report.notice(f"{spec.key}: cancelling the update in progress")
                try:
                    operations.cancel_update(self.cfn, name)
                except ClientError as exc:
                    if error_code(exc) != "ValidationError":
                        raise
                    # The update left UPDATE_IN_PROGRESS before the cancel reached it: decide again.
                    self.report.notice(f"{spec.key}: the update finished before it could be cancelled")
                    continue
                self.cancelled.add(spec.key)
            elif step is Step.CONTINUE:
                skip = [r.split("/", 1)[1] for r in self.skip_resources if r.startswith(f"{spec.key}/")]
                self.report.notice(f"{spec.key}: continuing the failed update rollback"
                                   + (f", skipping {', '.join(skip)}" if skip else ""))
                operations.continue_update_rollback(self.cfn, name, skip)
            elif step is Step.ROLL_BACK_PAUSED:
                self.report.notice(f"{spec.key}: rolling back the paused failure ({stack['StackStatus']})")
                operations.rollback_stack(self.cfn, name)
            elif step is Step.DELETE:
                self._delete_and_wait(stack["StackId"])
                return StackResult(spec.key, name, Action.DELETED, "DELETE_COMPLETE",
                                   reason="a failed first create: deleted")
            self._wait_settled(spec)
        raise StackFailure("the stack did not settle into a state a rollback can start from")

    def _wait_settled(self, spec: RenderedStack) -> None:
        poll(lambda: self._settled(spec.stack_name), self.backoff, self.stop, self._say(spec.key))
