"""Human progress on stderr: one line per resource event as it comes, each stack's changes and result.

Plain lines (CI logs read well); lines from concurrent stacks carry the stack key and never interleave.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from rich.live import Live
from rich.markup import escape
from rich.table import Table

from perfdeploy.console import Titled, err, one_line, plural, titled_table
from perfdeploy.deploy.results import Action, RunResult, StackResult

STYLE = {Action.CREATED: "green", Action.UPDATED: "green", Action.UNCHANGED: "dim", Action.FAILED: "red",
         Action.SKIPPED: "yellow", Action.REFUSED: "red", Action.INTERRUPTED: "yellow",
         Action.CANCELLED: "yellow", Action.DELETED: "green", Action.ROLLED_BACK: "green"}


def style(result: StackResult) -> str:
    """A result's colour: by its action, red whatever the action when it is a failure (a deploy ECS rolled
    back is `rolled_back` and failed)."""
    return STYLE[result.action] if result.ok or not result.action.ok else "red"


class Reporter:
    """Progress for a run. On a terminal a live table shows every stack's state under the event lines;
    in CI (no terminal) only the plain lines are printed."""

    def __init__(self, console=err, quiet: bool = False):
        self.console, self.quiet = console, quiet
        self.lock = threading.RLock()
        self.states: dict[str, str] = {}
        self._live: Live | None = None

    def begin(self, keys: list[str]) -> None:
        self.states = {key: "waiting" for key in keys}
        if not self.quiet and self.console.is_terminal:
            self._live = Live(self, console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    def end(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @contextmanager
    def paused(self):
        """Stop the live table while a prompt waits for an answer (prompts never interleave)."""
        with self.lock:
            live = self._live
            if live is not None:
                live.stop()
            try:
                yield
            finally:
                if live is not None:
                    live.start()

    def __rich__(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 1))
        for key, state in self.states.items():
            table.add_row(key, state)
        return table

    def _print(self, text: str, style: str | None = None) -> None:
        if self.quiet:
            return
        with self.lock:
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

    def notice(self, text: str) -> None:
        self._print(f"note: {text}", "yellow")

    def started(self, key: str) -> None:
        self.states[key] = "started"
        self._print(f"{key:<12} started")

    def event(self, key: str, event: dict) -> None:
        self.states[key] = f"{event['LogicalResourceId']} {event['ResourceStatus']}"
        reason = event.get("ResourceStatusReason", "")
        self._print(f"{key:<12} {event['LogicalResourceId']:<34} {event['ResourceStatus']:<22} {reason}".rstrip(),
                    "red" if event["ResourceStatus"].endswith("FAILED") else None)

    def deployment(self, key: str, text: str) -> None:
        """The ECS service deployment a stack update started: phase, traffic, bake time, outcome."""
        self.states[key] = f"deployment {text}"
        self._print(f"{key:<12} deployment {text}")

    def changes(self, key: str, changes: list[dict]) -> None:
        if self.quiet or not changes:
            return
        with self.lock:
            self.console.print(changes_table(key, changes))

    def finished(self, result: StackResult) -> None:
        self.states[result.key] = result.action.value
        reason = f": {result.reason}" if result.reason else ""
        self._print(f"{result.key:<12} {result.action.value}{reason} ({result.seconds:.1f}s)",
                    style(result))

    def summary(self, run: RunResult, verb: str = "deploy") -> None:
        """The run's table: one line per stack. A reason too long for its column is summarised there and
        printed in full under the table (the JSON always has it in full)."""
        if self.quiet:
            return
        outcome = "succeeded" if run.ok else "did not succeed"
        columns = ("stack", "result", "status", "seconds")
        rows = [(s.key, s.action.value, s.status or "-", f"{s.seconds:.1f}") for s in run.stacks]
        taken = sum(max(len(c), *(len(r[i]) for r in rows)) + 2 for i, c in enumerate(columns)) if rows else 0
        room = max(12, self.console.width - taken)  # what the reason column gets
        notes: list[str] = []
        cells = []
        for s in run.stacks:
            reason = " ".join(s.reason.split())
            if len(reason) > room or "\n" in s.reason.strip():
                notes.append(f"[{len(notes) + 1}] {s.key}: {s.reason}")
                reason = f"{one_line(reason, room - 5)} [{len(notes)}]"
            cells.append(escape(reason))
        rows = [(key, f"[{style(s)}]{action}[/]", status, seconds, cell)
                for s, (key, action, status, seconds), cell in zip(run.stacks, rows, cells, strict=True)]
        table = titled_table(f"{run.env}: {verb} {outcome} in {run.seconds:.1f}s",
                             (*columns, "reason"), rows, wrap=("reason",))
        with self.lock:
            self.console.print(table)
            for note in notes:
                self.console.print(note, markup=False, highlight=False, soft_wrap=True)


# CloudFormation's change actions as a column a reader scans (terraform's signs, which platform engineers
# know); a Modify's sign says whether the resource is replaced (Replacement True, Conditional or False).
SIGNS = {("Add", ""): "+", ("Remove", ""): "-", ("Modify", "False"): "~", ("Modify", "True"): "-/+",
         ("Modify", "Conditional"): "~/+"}
LEGEND = {"+": "add", "-": "remove", "~": "modify", "-/+": "replace", "~/+": "may replace (Conditional)"}


def sign(change: dict) -> str:
    """The change's sign (+, -, ~, -/+, ~/+), or CloudFormation's action word for rarer ones (Import)."""
    action = change["action"]
    replacement = (change.get("replacement") or "False") if action == "Modify" else ""
    return SIGNS.get((action, replacement), action)


def changes_table(key: str, changes: list[dict]) -> Titled:
    """A stack's changes: sign, logical id, resource type, each whole; the signs used are named in the
    title."""
    signs = [sign(c) for c in changes]
    legend = ", ".join(f"{s} {LEGEND[s]}" for s in LEGEND if s in signs)
    return titled_table(f"{key}: {plural(len(changes), 'change')}" + (f" ({legend})" if legend else ""),
                        ("", "resource", "type"),
                        [(s, c["logical_id"], c["type"]) for s, c in zip(signs, changes, strict=True)])


PLAN_COUNTS = (("create", "to create"), ("recreate", "to recreate"), ("update", "to update"),
               ("wait", "busy"), ("refuse", "refused"), ("unchanged", "unchanged"))


def plan_tables(plan, console=err) -> None:
    """A table per changing stack (sign, resource, type), then, like `cdk diff`,
    each modified resource's properties old -> new, the parameters and stack tags that change; and a
    one-line summary. Lines are plain and never cut: CI logs read them whole."""
    def line(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    for stack in plan.stacks:
        if stack.action == "unchanged":
            continue
        if stack.changes:
            console.print(changes_table(f"{stack.key} ({stack.action})", stack.changes))
        else:
            line(f"{stack.key} ({stack.action})")
        # A stack tag change shows once, not again under every resource that carries it (--json has all).
        stack_tags = {(f"Tags.{t['key']}", t["old"], t["new"]) for t in stack.tags}
        tagged = set()
        for change in stack.changes:
            for p in change.get("properties", []):
                if (p["path"], p["old"], p["new"]) in stack_tags:
                    tagged.add(change["logical_id"])
                    continue
                why = ", ".join(x for x in (f"recreation: {p['recreation']}" if p["recreation"] else "",
                                            p["cause"]) if x)
                line(f"  {change['logical_id']}.{p['path']}: {_shown(p['old'])} -> {_shown(p['new'])}"
                     + (f"  ({why})" if why else ""))
        for p in stack.parameters:
            line(f"  parameter {p['name']}: {_shown(p['old'])} -> {_shown(p['new'])}")
        for t in stack.tags:
            line(f"  tag {t['key']}: {_shown(t['old'])} -> {_shown(t['new'])}"
                 + (f" (on the stack and {len(tagged)} resources)" if tagged else ""))
        for reason in stack.refused:
            console.print(f"  [red]the guard would refuse:[/] {reason}", soft_wrap=True)
        if stack.note:
            line(f"  note: {stack.note}")
    counts = [f"{n} {label}" for action, label in PLAN_COUNTS
              if (n := sum(s.action == action for s in plan.stacks)) or action in ("create", "update", "unchanged")]
    refused = sum(bool(s.refused) for s in plan.stacks)
    line(f"{plan.env}: {', '.join(counts)}" + (f", {refused} the guard would refuse" if refused else ""))


def _shown(value) -> str:
    return "(none)" if value is None else str(value)
