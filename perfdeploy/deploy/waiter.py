"""Waiting on CloudFormation: polls that start fast and back off with jitter, read only new events, and
wait out throttling, 5xx and connection errors for a bounded time (saying so when it takes a while).
Any other error (an expired SSO token, missing credentials, access denied) ends the wait at once, in the
error's own words."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from perfdeploy.aws import is_transient
from perfdeploy.deploy.states import is_terminal
from perfdeploy.errors import DeployError


@dataclass
class Backoff:
    """Delays for polling: initial, growing by factor up to maximum, each with +/- jitter."""

    initial: float = 1.0
    factor: float = 1.5
    maximum: float = 15.0
    jitter: float = 0.2
    patience: float = 300.0      # seconds of transient errors in a row before the wait gives up
    announce_after: float = 20.0  # ... and after this long it says that it is retrying

    def delays(self):
        delay = self.initial
        while True:
            yield delay * (1 + random.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.maximum)


class Interrupted(Exception):
    """The run was interrupted (Ctrl-C) while waiting."""


class GaveUp(DeployError):
    """Transient errors went on for longer than the backoff's patience."""


def poll(check: Callable[[], object | None], backoff: Backoff, stop: threading.Event | None = None,
         say: Callable[[str], None] | None = None):
    """Call check() until it returns something other than None. Transient errors are waited out for
    `backoff.patience` seconds in a row (announced through `say` once they last `announce_after`); any
    other error is raised as it is."""
    failing_since: float | None = None
    announced = False
    for delay in backoff.delays():
        try:
            result = check()
            failing_since, announced = None, False
        except Exception as exc:  # noqa: BLE001 - only transient errors are swallowed, see below
            if not is_transient(exc):
                raise
            now = time.monotonic()
            failing_since = failing_since if failing_since is not None else now
            if now - failing_since >= backoff.patience:
                raise GaveUp(f"gave up after {now - failing_since:.0f}s of retries: {exc}") from exc
            if say is not None and not announced and now - failing_since >= backoff.announce_after:
                say(f"retrying ({exc}); giving up after {backoff.patience:.0f}s")
                announced = True
            result = None
        if result is not None:
            return result
        if stop is not None and stop.wait(delay):
            raise Interrupted()
        if stop is None:
            time.sleep(delay)
    raise AssertionError("unreachable")


class EventReader:
    """Reads a stack's events incrementally: each call returns only events not seen before, oldest first."""

    def __init__(self, cfn, stack: str):
        self.cfn, self.stack = cfn, stack
        self.seen: str | None = None
        self.first_failure: dict | None = None

    def mark(self) -> None:
        """Remember the newest existing event, so the next read starts after it."""
        events = self.cfn.describe_stack_events(StackName=self.stack).get("StackEvents", [])
        self.seen = events[0]["EventId"] if events else None

    def read(self) -> list[dict]:
        new: list[dict] = []
        token = None
        while True:
            kwargs = {"StackName": self.stack, **({"NextToken": token} if token else {})}
            page = self.cfn.describe_stack_events(**kwargs)
            for event in page.get("StackEvents", []):
                if event["EventId"] == self.seen:
                    token = None
                    break
                new.append(event)
            else:
                token = page.get("NextToken")
            if not token:
                break
        if new:
            self.seen = new[0]["EventId"]
        new.reverse()
        for event in new:
            if self.first_failure is None and event.get("ResourceStatus", "").endswith("_FAILED") \
                    and event.get("ResourceType") != "AWS::CloudFormation::Stack":
                self.first_failure = event
        return new


def wait_for_stack(cfn, stack_id: str, events: EventReader, on_event: Callable[[dict], None],
                   backoff: Backoff, stop: threading.Event | None = None,
                   say: Callable[[str], None] | None = None) -> dict:
    """Wait until the stack reaches a terminal state; report each new event; return the final description."""

    def check():
        for event in events.read():
            on_event(event)
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        return stack if is_terminal(stack["StackStatus"]) else None

    return poll(check, backoff, stop, say)
