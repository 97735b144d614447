"""Scale: 10, 50 and 100 synthetic one-resource stacks on the local emulator, as a chain (each stack takes an
input from the one before) and as a wide fan-out (one root, every other stack taking its output): seconds and
AWS API calls per stack for a create from empty and for the no-op after it. The engine runs in this process
(deploy_rendered: lock, release, the recorded no-op path) against the emulator; calls are counted there.

Prints figures and merges them into bench/results.json (key `scale`, a list); asserts nothing.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from emulated import CountingEmulator  # noqa: E402
from fakes import tiny_environment  # noqa: E402
from results import update  # noqa: E402

from perfdeploy.aws import Aws  # noqa: E402
from perfdeploy.deploy.engine import DeployOptions  # noqa: E402
from perfdeploy.deploy.report import Reporter  # noqa: E402
from perfdeploy.deploy.run import deploy_rendered  # noqa: E402

COUNTS = tuple(int(n) for n in os.environ.get("BENCH_SCALE", "10,50,100").split(","))


def shape(kind: str, n: int) -> dict[str, list[str]]:
    keys = [f"s{i:03d}" for i in range(n)]
    if kind == "chain":
        return {k: keys[i - 1:i] for i, k in enumerate(keys)}
    return {k: [] if i == 0 else [keys[0]] for i, k in enumerate(keys)}


def main() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    rows = []
    for kind in ("chain", "fan-out"):
        for n in COUNTS:
            parameters = {k: {"Thing": {"Type": "AWS::SSM::Parameter", "Properties": {
                "Name": f"/bench/{k}", "Type": "String", "Value": k}}} for k in shape(kind, n)}
            rendered = tiny_environment(shape(kind, n), extra=parameters)
            with CountingEmulator() as emu:
                aws = Aws("us-east-1", endpoint_url=emu.url)
                for phase in ("create", "no-op"):
                    start = time.perf_counter()
                    run = deploy_rendered(rendered, aws, DeployOptions(yes=True), Reporter(quiet=True),
                                          lambda spec, changes: True)
                    seconds = time.perf_counter() - start
                    assert run.ok, [(s.key, s.action, s.reason) for s in run.stacks if s.action.value == "failed"]
                    calls = sum(emu.reset_counts().values())
                    rows.append({"shape": kind, "stacks": n, "phase": phase, "seconds": round(seconds, 3),
                                 "seconds_per_stack": round(seconds / n, 4),
                                 "api_calls_per_stack": round(calls / n, 2)})
                    print(f"{kind:<8} {n:>4} stacks {phase:<6} {seconds:7.2f} s  {seconds / n:6.3f} s/stack  "
                          f"{calls / n:5.2f} calls/stack", flush=True)
    update({"scale": rows})


if __name__ == "__main__":
    main()
