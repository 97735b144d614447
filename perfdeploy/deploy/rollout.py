"""Following the ECS service deployment that an ecs stack update starts: phase, traffic shifts, bake time
left, and whether ECS rolled it back (docs/progressive-delivery.md).

CloudFormation waits on the service until its deployment ends (for blue/green, canary and linear that takes
the bake times: up to 36 hours), so the follower runs beside the stack wait and reads the ECS API:
ListServiceDeployments finds the deployment the update started (the one created after the change set was
executed), DescribeServiceDeployments says where it is ("View service history using Amazon ECS service
deployments", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html). A
deployment ECS rolled back (an alarm, the circuit breaker, a manual stop) makes the stack's result
``rolled_back`` and the run fail. An endpoint without these actions (the local emulator) gets one notice,
"not followed", and the deploy goes on as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from perfdeploy.aws import error_code, is_transient
from perfdeploy.deploy.results import Action, StackResult
from perfdeploy.deploy.waiter import Backoff

# ServiceDeployment.status values (botocore's ECS model).
FINISHED = frozenset({"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"})
ROLLING_BACK = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"})
# What an endpoint that lacks the API answers (AWS's JSON protocols; the local emulator says the same).
NO_SUCH_API = frozenset({"UnknownOperationException", "InvalidAction", "UnsupportedOperation"})
NO_SERVICE_YET = frozenset({"ServiceNotFoundException", "ClusterNotFoundException"})
CLOCK_SKEW = timedelta(minutes=5)   # deployments are listed from a little before the update, then told apart by ARN
SETTLE_SECONDS = 120.0              # after the stack settles, how long the deployment may take to report its end
LOOKS_FOR_NONE = 3                  # looks after the stack settled that find no new deployment: there is none


@dataclass
class Deployment:
    """One ECS service deployment as the run saw it (the ``deployment`` of a stack's result)."""

    strategy: str
    state: str                  # ECS's status (SUCCESSFUL, ROLLBACK_SUCCESSFUL, ...), or "not_followed"
    seconds: float = 0.0
    arn: str = ""
    reason: str = ""

    @property
    def rolled_back(self) -> bool:
        return self.state in ROLLING_BACK

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "state": self.state, "seconds": round(self.seconds, 1),
                "rolled_back": self.rolled_back, "arn": self.arn, "reason": self.reason}


class NotFollowed(Exception):
    """The ECS API cannot be read here (an endpoint without it, no permission): say so once, carry on."""


class Follower:
    """Follows one service's new deployment in a background thread while the stack update runs."""

    def __init__(self, ecs, rollout: dict, key: str, report, backoff: Backoff,
                 stop: threading.Event | None = None, settle_seconds: float = SETTLE_SECONDS):
        self.ecs, self.key, self.report, self.backoff = ecs, key, report, backoff
        self.cluster, self.service = rollout["cluster"], rollout["service"]
        self.strategy, self.bake_minutes = rollout["strategy"], rollout.get("bake_time_minutes")
        self.stop = stop or threading.Event()
        self.settle_seconds = settle_seconds
        self.known: set[str] = set()
        self.since = datetime.now(UTC) - CLOCK_SKEW
        self.arn = ""
        self.latest: dict = {}
        self.unavailable = ""
        self.baking_since: float | None = None
        self._shown: tuple = ()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    # The ECS API -----------------------------------------------------------------------------------

    def _call(self, method: str, **kwargs) -> dict:
        try:
            return getattr(self.ecs, method)(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in NO_SUCH_API:
                raise NotFollowed(f"the endpoint has no ECS {_operation(method)} "
                                  f"({exc.response.get('Error', {}).get('Message', code)})") from None
            if code in ("AccessDeniedException", "AccessDenied"):
                raise NotFollowed(f"not allowed to call ECS {_operation(method)} (ecs:{_operation(method)})") from None
            raise

    def _listed(self) -> list[dict]:
        """The service's deployments created since shortly before the update, oldest first."""
        found, token = [], None
        while True:
            kwargs = {"cluster": self.cluster, "service": self.service, "createdAt": {"after": self.since},
                      **({"nextToken": token} if token else {})}
            try:
                page = self._call("list_service_deployments", **kwargs)
            except ClientError as exc:
                if error_code(exc) in NO_SERVICE_YET:  # a first deploy: the service does not exist yet
                    return []
                raise
            found += page.get("serviceDeployments", [])
            token = page.get("nextToken")
            if not token:
                return sorted(found, key=lambda d: d.get("createdAt") or self.since)

    def mark(self) -> None:
        """Before the change set executes: remember the deployments that are not this update's."""
        try:
            self.known = {d["serviceDeploymentArn"] for d in self._listed()}
        except NotFollowed as exc:
            self._give_up(str(exc))
        except (ClientError, BotoCoreError) as exc:
            if not is_transient(exc):
                self._give_up(f"ECS answered {exc}")

    def observe(self) -> None:
        """One look: find this update's deployment, read it, and report what changed."""
        if self.unavailable:
            return
        try:
            if not self.arn:
                new = [d for d in self._listed() if d["serviceDeploymentArn"] not in self.known]
                if not new:
                    return
                # The oldest new one is the update's; a later one is CloudFormation rolling the service back.
                self.arn = new[0]["serviceDeploymentArn"]
            answer = self._call("describe_service_deployments", serviceDeploymentArns=[self.arn])
        except NotFollowed as exc:
            self._give_up(str(exc))
            return
        except (ClientError, BotoCoreError) as exc:
            if not is_transient(exc):
                self._give_up(f"ECS answered {exc}")
            return
        found = answer.get("serviceDeployments", [])
        if found:
            self.latest = found[0]
            self._show(self.latest)

    def _give_up(self, reason: str) -> None:
        if not self.unavailable:
            self.unavailable = reason
            self.report.notice(f"{self.key}: ECS deployment not followed: {reason}")

    # Progress --------------------------------------------------------------------------------------

    def _show(self, d: dict) -> None:
        status, stage = d.get("status", ""), d.get("lifecycleStage", "")
        target = d.get("targetServiceRevision") or {}
        production, test = target.get("requestedProductionTrafficWeight"), target.get("requestedTestTrafficWeight")
        if stage == "BAKE_TIME" and self.baking_since is None:
            self.baking_since = time.monotonic()
        left = self.bake_left()
        shown = (status, stage, production, test, None if left is None else int(left // 60))
        if shown == self._shown:
            return
        self._shown = shown
        parts = [status.lower().replace("_", " ") or "pending"]
        if stage:
            parts.append(f"stage {stage}")
        if production is not None:
            parts.append(f"production traffic {_percent(production)} on the new revision")
        if test is not None and stage in ("TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT"):
            parts.append(f"test traffic {_percent(test)}")
        if left is not None:
            parts.append(f"bake time {_minutes(left)} left")
        triggered = (d.get("alarms") or {}).get("triggeredAlarmNames") or []
        if triggered:
            parts.append(f"alarm {', '.join(triggered)} in ALARM")
        self.report.deployment(self.key, "; ".join(parts))

    def bake_left(self) -> float | None:
        """Seconds of bake time left, counted from when the deployment was first seen baking."""
        if self.baking_since is None or (self.latest.get("lifecycleStage") != "BAKE_TIME"):
            return None
        bake = (self.latest.get("deploymentConfiguration") or {}).get("bakeTimeInMinutes", self.bake_minutes)
        if bake is None:
            return None
        return max(0.0, bake * 60 - (time.monotonic() - self.baking_since))

    # The thread ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.mark()
        if self.unavailable:
            return
        self._thread = threading.Thread(target=self._run, name=f"rollout-{self.key}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for delay in self.backoff.delays():
            if self._done.wait(delay) or self.stop.is_set():
                return
            self.observe()

    def finish(self) -> Deployment | None:
        """After the stack settled: stop the thread, read the deployment until it reports its end."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self.unavailable:
            return Deployment(self.strategy, "not_followed", reason=self.unavailable)
        deadline = time.monotonic() + self.settle_seconds
        delays, looks = self.backoff.delays(), 0
        while not self.stop.is_set():
            self.observe()
            looks += 1
            if self.unavailable:
                return Deployment(self.strategy, "not_followed", reason=self.unavailable)
            if not self.arn and looks >= LOOKS_FOR_NONE:
                break  # CloudFormation changed the service without a new deployment (a tag, the desired count)
            if self.latest.get("status") in FINISHED or time.monotonic() > deadline:
                break
            self.stop.wait(next(delays))
        if not self.latest:
            return None
        return Deployment(self.strategy, self.latest.get("status", ""), _seconds(self.latest), self.arn,
                          _why(self.latest))


class _NoFollower:
    """A stack with no ECS service: nothing to follow."""

    def settle(self, result: StackResult) -> bool:
        return False


class _Following:
    def __init__(self, follower: Follower):
        self.follower = follower

    def settle(self, result: StackResult) -> bool:
        """Put the deployment on the stack's result; True when ECS rolled it back (or could not), which
        decides the result: ``rolled_back`` (the run fails) or ``failed``."""
        deployment = self.follower.finish()
        if deployment is None:
            return False
        result.deployment = deployment.to_json()
        if deployment.state == "not_followed":
            return False  # the notice said why
        self.follower.report.deployment(result.key, f"{deployment.state.lower().replace('_', ' ')} "
                                                    f"after {deployment.seconds:.0f}s"
                                                    + (f": {deployment.reason}" if deployment.reason else ""))
        if deployment.rolled_back:
            result.action = Action.ROLLED_BACK
            result.reason = "ECS rolled the new deployment back" + (f": {deployment.reason}"
                                                                     if deployment.reason else "")
            return True
        if deployment.state == "ROLLBACK_FAILED":
            result.action = Action.FAILED
            result.reason = "ECS could not roll the new deployment back" + (f": {deployment.reason}"
                                                                             if deployment.reason else "")
            return True
        return False


@contextmanager
def follow(aws, manifest: dict, changes: list[dict], key: str, report, backoff: Backoff,
           stop: threading.Event | None = None) -> Iterator[_Following | _NoFollower]:
    """Follow the stack's ECS service deployment while the body (executing the change set) runs; only when
    the change set adds or modifies the service (nothing else starts a deployment)."""
    rollout = manifest.get("rollout")
    if not rollout or not any(c.get("type") == "AWS::ECS::Service" and c.get("action") in ("Add", "Modify")
                              for c in changes):
        yield _NoFollower()
        return
    follower = Follower(aws.client("ecs"), rollout, key, report, backoff, stop)
    follower.start()
    try:
        yield _Following(follower)
    finally:
        follower._done.set()  # settle() joins the thread; an exception in the body must not leave it polling


def _why(d: dict) -> str:
    reasons = []
    triggered = (d.get("alarms") or {}).get("triggeredAlarmNames") or []
    if triggered:
        reasons.append(f"alarm {', '.join(triggered)} went to ALARM")
    if (d.get("deploymentCircuitBreaker") or {}).get("status") == "TRIGGERED":
        reasons.append("the deployment circuit breaker tripped")
    rollback = (d.get("rollback") or {}).get("reason")
    if rollback:
        reasons.append(rollback)
    if not reasons and d.get("statusReason"):
        reasons.append(d["statusReason"])
    return "; ".join(reasons)


def _seconds(d: dict) -> float:
    start, end = d.get("startedAt") or d.get("createdAt"), d.get("finishedAt") or d.get("stoppedAt")
    if isinstance(start, datetime) and isinstance(end, datetime):
        return max(0.0, (end - start).total_seconds())
    if isinstance(start, datetime):
        return max(0.0, (datetime.now(UTC) - start).total_seconds())
    return 0.0


def _percent(weight: float) -> str:
    return f"{weight:g}%"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min" if seconds >= 60 else f"{int(seconds)} s"


def _operation(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))
