"""Deploy dev on the local emulator, side by side with its peers on the same rendered templates (peers.py):
a first deploy from empty, a no-op redeploy (and its floor: bare boto3 making the same calls, floor.py), and a
plan with nothing changed. Every tool runs as a fresh process; the rounds interleave the tools; each figure is
the median of BENCH_RUNS rounds (default 5). API calls are counted at the emulator.

The emulator answers in milliseconds, so this measures each tool's own overhead, not AWS's provisioning
(schedule_bench.py simulates that). perfdeploy's lint and render caches are warm (as after `make render`).

Prints figures and merges them into bench/results.json; asserts nothing.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import boto3
import peers
from emulated import ROOT, CountingEmulator, perfdeploy, timed
from results import median, ratio, update

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
# The AWS CLI way takes ~90 s a deploy here (a process per call): once, unless asked for more.
CLI_RUNS = int(os.environ.get("BENCH_CLI_RUNS", "1"))
ENV = "dev"


def bucket(url: str, name: str) -> None:
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=name)


def run_perfdeploy(emu: CountingEmulator, env: dict, figures: dict, names: list[str]) -> None:
    seconds, out = timed(perfdeploy("deploy", ENV, "--yes", "--json", "--image-tag", peers.IMAGE_TAG,
                                    "--skip-image-check"), env)
    created = json.loads(out)["stacks"]
    assert {s["action"] for s in created} == {"created"}, created
    figures["deploy"].append(seconds)
    figures["deploy_calls"].append(emu.reset_counts())
    seconds, out = timed(perfdeploy("deploy", ENV, "--yes", "--json"), env)
    assert {s["action"] for s in json.loads(out)["stacks"]} == {"unchanged"}, out
    figures["noop"].append(seconds)
    figures["noop_calls"].append(emu.reset_counts())
    seconds, _ = timed(perfdeploy("plan", ENV, "--detailed-exitcode"), env)
    figures["plan"].append(seconds)
    figures["plan_calls"].append(emu.reset_counts())
    seconds, _ = timed([sys.executable, str(ROOT / "bench" / "floor.py"), ENV, *names], env)
    figures["floor"].append(seconds)
    figures["floor_calls"].append(emu.reset_counts())


def run_sceptre(emu: CountingEmulator, env: dict, figures: dict, project: Path) -> None:
    bucket(emu.url, peers.BUCKET)
    emu.reset_counts()
    seconds, _ = timed(peers.sceptre_launch(project, ENV), env)
    figures["sceptre"].append(seconds)
    figures["sceptre_calls"].append(emu.reset_counts())
    seconds, _ = timed(peers.sceptre_launch(project, ENV), env)
    figures["sceptre_noop"].append(seconds)
    figures["sceptre_noop_calls"].append(emu.reset_counts())


def run_cli(emu: CountingEmulator, env: dict, figures: dict, manifest: dict, templates: Path) -> None:
    bucket(emu.url, peers.BUCKET)
    emu.reset_counts()
    total = [0.0]

    def run(command: list[str]) -> str:
        seconds, out = timed(command, env)
        total[0] += seconds
        return out
    peers.cli_deploy(manifest, templates, run)
    figures["cli"].append(total[0])
    figures["cli_calls"].append(emu.reset_counts())


def per_stack(counters: list[collections.Counter], stacks: int) -> float | None:
    return round(median([sum(c.values()) for c in counters]) / stacks, 2) if counters else None


def main() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    work = Path(tempfile.mkdtemp(prefix="perfdeploy-bench-"))
    base = {**os.environ, "PERFDEPLOY_CACHE_DIR": str(work / "cache")}
    timed(perfdeploy("render", ENV, "--out", str(work / "rendered")), base)  # warms the caches; the peers' files
    templates = work / "rendered" / ENV
    manifest = peers.manifest_of(templates)
    names = [s["stack_name"] for s in manifest["stacks"]]
    stacks = len(names)
    versions = {"sceptre": peers.version(peers.SCEPTRE), "aws_cli": peers.version(peers.AWS_CLI)}
    project = peers.sceptre_project(manifest, templates, work / "sceptre") if versions["sceptre"] else None
    figures: dict[str, list] = collections.defaultdict(list)
    tools = ["perfdeploy"] + [t for t in ("sceptre", "aws_cli") if versions[t]]
    for round_ in range(RUNS):
        for tool in tools[round_ % len(tools):] + tools[:round_ % len(tools)]:  # interleaved, each leads once
            if tool == "aws_cli" and round_ >= CLI_RUNS:
                continue
            with CountingEmulator() as emu:
                env = {**emu.env(), "PERFDEPLOY_CACHE_DIR": str(work / "cache")}
                if tool == "perfdeploy":
                    run_perfdeploy(emu, env, figures, names)
                elif tool == "sceptre":
                    run_sceptre(emu, env, figures, project)
                else:
                    run_cli(emu, env, figures, manifest, templates)
            print(f"round {round_ + 1}/{RUNS}: {tool} done", file=sys.stderr)

    def med(key: str) -> float | None:
        return median(figures[key]) if figures[key] else None
    noop_calls = figures["noop_calls"][-1]
    results = {
        "deploy_s": med("deploy"), "sceptre_s": med("sceptre"), "sequential_cli_s": med("cli"),
        "deploy_vs_sceptre_ratio": ratio(med("deploy"), med("sceptre")),
        "deploy_vs_sequential_ratio": ratio(med("deploy"), med("cli")),
        "api_calls_per_stack": per_stack(figures["deploy_calls"], stacks),
        "noop_s": med("noop"), "sceptre_noop_s": med("sceptre_noop"),
        "noop_vs_sceptre_ratio": ratio(med("noop"), med("sceptre_noop")),
        "noop_change_sets": noop_calls["cloudformation.CreateChangeSet"],
        "noop_api_calls_per_stack": per_stack(figures["noop_calls"], stacks),
        "noop_floor_s": med("floor"), "noop_over_floor": ratio(med("noop"), med("floor")),
        "plan_noop_s": med("plan"), "plan_over_noop": ratio(med("plan"), med("noop")),
        "sceptre_api_calls_per_stack": per_stack(figures["sceptre_calls"], stacks),
        "sceptre_noop_api_calls_per_stack": per_stack(figures["sceptre_noop_calls"], stacks),
        "sequential_cli_api_calls_per_stack": per_stack(figures["cli_calls"], stacks),
        "peer_versions": {k: v or "not installed (make bench installs it into .bench/; pip could not here)"
                          for k, v in versions.items()},
        "deploy_runs": RUNS, "sequential_cli_runs": CLI_RUNS, "deploy_stacks": stacks,
    }
    update(results)
    print(f"dev, {stacks} stacks, median of {RUNS} interleaved rounds (the AWS CLI way: {CLI_RUNS}), each tool a "
          "fresh process on the emulator")
    for key in ("deploy_s", "sceptre_s", "sequential_cli_s", "deploy_vs_sceptre_ratio", "deploy_vs_sequential_ratio",
                "api_calls_per_stack", "noop_s", "sceptre_noop_s", "noop_vs_sceptre_ratio", "noop_change_sets",
                "noop_api_calls_per_stack", "noop_floor_s", "noop_over_floor", "plan_noop_s", "plan_over_noop"):
        print(f"  {key:<28} {results[key]}")
    for label, key in (("perfdeploy no-op", "noop_calls"), ("bare boto3 floor", "floor_calls"),
                       ("plan, nothing changed", "plan_calls"), ("sceptre no-op", "sceptre_noop_calls")):
        if figures[key]:
            calls = figures[key][-1]
            print(f"  {label} calls: {sum(calls.values())}: " +
                  ", ".join(f"{op} {n}" for op, n in sorted(calls.items())))
    for tool, found in versions.items():
        print(f"  {tool}: {found or 'not installed: no figure'}")


if __name__ == "__main__":
    main()
