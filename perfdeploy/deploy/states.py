"""Decisions over CloudFormation stack states, as data: one table per command, one test per row.

(AWS CDK keeps its rollback choice in a small table too; stacker's searching of English status reasons
is what we avoid.)
"""

from __future__ import annotations

from enum import StrEnum


class Deploy(StrEnum):
    CREATE = "create"        # no stack (or an empty one in review): CREATE change set
    UPDATE = "update"        # a stable stack: UPDATE change set (or unchanged)
    RECREATE = "recreate"    # failed first create: delete, then create (RetainExceptOnCreate made it safe)
    WAIT = "wait"            # an operation is in progress: wait for it, then decide again
    FIX_FORWARD = "fix_forward"  # a failure paused by `deploy --no-rollback`: an UPDATE from where it stopped
    REFUSE = "refuse"        # stuck failure: `perfdeploy rollback` first


DEPLOY_DECISIONS: dict[str | None, Deploy] = {
    None: Deploy.CREATE,
    "REVIEW_IN_PROGRESS": Deploy.CREATE,
    "CREATE_COMPLETE": Deploy.UPDATE,
    "UPDATE_COMPLETE": Deploy.UPDATE,
    "UPDATE_ROLLBACK_COMPLETE": Deploy.UPDATE,
    "IMPORT_COMPLETE": Deploy.UPDATE,
    "IMPORT_ROLLBACK_COMPLETE": Deploy.UPDATE,
    "ROLLBACK_COMPLETE": Deploy.RECREATE,
    "ROLLBACK_FAILED": Deploy.REFUSE,
    # Only reached with DisableRollback: a paused failure. CloudFormation accepts an update of it (the fixed
    # template; failed resources are retried), which is what --no-rollback is for; `perfdeploy rollback`
    # rolls it back instead. https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html
    "CREATE_FAILED": Deploy.FIX_FORWARD,
    "UPDATE_FAILED": Deploy.FIX_FORWARD,
    "UPDATE_ROLLBACK_FAILED": Deploy.REFUSE,
    "DELETE_FAILED": Deploy.REFUSE,
    "IMPORT_ROLLBACK_FAILED": Deploy.REFUSE,
}

# States whose deployed template is the one last deployed successfully: only these may be skipped as
# unchanged (never skip a stack in a failed state).
SKIPPABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})

SUCCESS = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "DELETE_COMPLETE"})


def deploy_decision(status: str | None) -> Deploy:
    """What deploy does with a stack in this state."""
    if status is not None and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        return Deploy.WAIT
    return DEPLOY_DECISIONS.get(status, Deploy.REFUSE)


def is_terminal(status: str) -> bool:
    return not status.endswith("_IN_PROGRESS")


def refusal_reason(status: str) -> str:
    return (f"the stack is in {status}: run 'perfdeploy rollback ENV' to bring it back to a stable state "
            "first (it continues or cancels the failed operation)")
