"""Render + lint of all three environments, as a user runs it (`perfdeploy render dev staging prod`, a fresh
process): cold (no cache) and warm (nothing changed since), against the `cfn-lint` command line run once over
the same files with the same rules (cfn-lint's own plus the house rules, informational checks on). The rounds
interleave the three; each figure is the median of BENCH_RENDER_RUNS rounds (default 3: a round is ~25 s, and
the machine's speed varies by a fifth from one minute to the next).

Prints figures and merges them into bench/results.json; asserts nothing (speed is measured here, never in tests).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from emulated import BIN, ROOT, perfdeploy, timed
from results import median, ratio, update

ENVS = ("dev", "staging", "prod")
RUNS = int(os.environ.get("BENCH_RENDER_RUNS", "3"))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="perfdeploy-render-bench-"))
    cold, warm, cli = [], [], []
    for _ in range(RUNS):
        shutil.rmtree(work / "cache", ignore_errors=True)
        env = {**os.environ, "PERFDEPLOY_CACHE_DIR": str(work / "cache")}
        command = perfdeploy("render", *ENVS, "--out", str(work / "out"))
        cold.append(timed(command, env)[0])
        warm.append(timed(command, env)[0])
        files = sorted(str(p) for p in (work / "out").glob("*/*.yaml"))
        cli.append(timed([str(BIN / "cfn-lint"), "--append-rules", str(ROOT / "perfdeploy" / "lint_rules"),
                          "--include-checks", "I", "--regions", "us-east-1", "--", *files], env, check=False)[0])
    sizes = [p.stat().st_size for p in (work / "out").glob("*/*.yaml")]
    figures = {"render_lint_cold_s": median(cold), "render_lint_warm_s": median(warm), "cfn_lint_cli_s": median(cli)}
    figures["render_lint_cold_ratio"] = ratio(figures["render_lint_cold_s"], figures["cfn_lint_cli_s"])
    figures["render_lint_warm_ratio"] = ratio(figures["render_lint_warm_s"], figures["cfn_lint_cli_s"])
    figures["render_templates"] = len(sizes)
    update(figures)
    print(f"render + lint of {len(sizes)} templates ({sum(sizes) / 1024:.0f} KiB), {', '.join(ENVS)}; "
          f"median of {RUNS} interleaved rounds, each a fresh process")
    for key, value in figures.items():
        print(f"  {key:<26} {value}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
