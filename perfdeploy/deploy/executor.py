"""The ready pool: a stack starts the moment the stacks it takes inputs from have finished, at most
``concurrency`` at once. Not level by level: one slow stack never holds back an unrelated one.

When a stack fails, its dependents are skipped ("dependency has failed") and independent branches carry
on; with fail_fast nothing new starts. Ctrl-C sets ``stop``: nothing new starts, stacks in flight are
told to stop waiting, and the pool reports what happened to each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from perfdeploy.deploy.results import Action, StackResult
from perfdeploy.graph import dependents

DEFAULT_CONCURRENCY = 4


class PoolInterrupted(Exception):
    """Raised after an interrupted run has settled; carries every stack's result."""

    def __init__(self, results: dict[str, StackResult]):
        super().__init__("interrupted")
        self.results = results


def run_pool(deps: dict[str, set[str]], work: Callable[[str], StackResult],
             placeholder: Callable[[str, Action, str], StackResult], concurrency: int = DEFAULT_CONCURRENCY,
             fail_fast: bool = False, stop: threading.Event | None = None) -> dict[str, StackResult]:
    """Run work(key) for every key of deps (key -> keys it waits for; keys outside deps count as done)."""
    stop = stop or threading.Event()
    waiting = {key: {d for d in ups if d in deps} for key, ups in deps.items()}
    downstream = dependents(waiting)
    results: dict[str, StackResult] = {}
    running: dict[Future, str] = {}
    halted = False

    def skip_dependents(key: str, reason: str) -> None:
        for child in sorted(downstream[key]):
            if child not in results:
                results[child] = placeholder(child, Action.SKIPPED, reason)
                skip_dependents(child, f"dependency {key} did not complete")

    # Not a `with` block: its exit waits for every thread, and a second Ctrl-C must be able to stop waiting.
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="stack")
    try:
        while True:
            if not halted:
                ready = sorted(k for k, ups in waiting.items()
                               if not ups and k not in results and k not in running.values())
                for key in ready[: max(0, concurrency - len(running))]:
                    running[pool.submit(work, key)] = key
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                results[key] = result = future.result()
                if result.ok:
                    for child in downstream[key]:
                        waiting[child].discard(key)
                else:
                    skip_dependents(key, f"dependency {key} has {result.action.value}")
                    halted = halted or fail_fast
    except KeyboardInterrupt:
        stop.set()
        try:
            for future, key in list(running.items()):
                results[key] = future.result()  # workers see `stop` and return promptly
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting for the stacks still winding down
            for key in running.values():
                results.setdefault(key, placeholder(key, Action.INTERRUPTED, "the run was interrupted"))
        _fill(results, deps, placeholder, "not started: the run was interrupted")
        raise PoolInterrupted(results) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    _fill(results, deps, placeholder, "not started: --fail-fast after a failure")
    return results


def _fill(results: dict[str, StackResult], deps: dict[str, set[str]],
          placeholder: Callable[[str, Action, str], StackResult], reason: str) -> None:
    for key in deps:
        if key not in results:
            results[key] = placeholder(key, Action.SKIPPED, reason)
