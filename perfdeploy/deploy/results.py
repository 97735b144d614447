"""A stack's result in a run: an action with a reason (stacker's status idea), and the run's summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    DELETED = "deleted"
    ROLLED_BACK = "rolled_back"

    @property
    def ok(self) -> bool:
        return self in (Action.CREATED, Action.UPDATED, Action.UNCHANGED, Action.DELETED, Action.ROLLED_BACK)


@dataclass
class StackResult:
    key: str
    stack_name: str
    action: Action
    status: str = ""                      # CloudFormation's stack status at the end, when known
    seconds: float = 0.0
    changes: list[dict] = field(default_factory=list)
    reason: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    # The ECS service deployment the stack's update started (deploy/rollout.py): strategy, state, seconds.
    deployment: dict | None = None

    @property
    def ok(self) -> bool:
        """The action succeeded and, in a deploy, ECS did not roll the service's new deployment back
        (a rollback is the outcome of the rollback command, but a deploy that ECS undid has failed)."""
        rolled_back = (self.deployment or {}).get("rolled_back", False)
        return self.action.ok and not rolled_back

    def to_json(self) -> dict:
        data = asdict(self)
        data["action"] = self.action.value
        data["seconds"] = round(self.seconds, 2)
        del data["outputs"]
        if self.deployment is None:
            del data["deployment"]
        return data


@dataclass
class RunResult:
    env: str
    region: str
    stacks: list[StackResult]
    seconds: float = 0.0
    release: str | None = None
    stopped: bool = False                 # Ctrl-C came outside any stack (e.g. while recording the release)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stacks)

    @property
    def interrupted(self) -> bool:
        """Ctrl-C ended the run somewhere (exit 130)."""
        return self.stopped or any(s.action in (Action.INTERRUPTED, Action.CANCELLED) for s in self.stacks)

    def to_json(self) -> dict:
        return {"env": self.env, "release": self.release, "region": self.region, "ok": self.ok,
                "seconds": round(self.seconds, 2), "stacks": [s.to_json() for s in self.stacks]}
