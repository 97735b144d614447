"""bench/results.json: every bench script merges its figures in; `python bench/results.py` prints them against
the targets of issue 17."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results.json"

# key -> (comparison, target): what each figure is held to.
TARGETS = {
    "render_lint_cold_ratio": ("<=", 0.8), "render_lint_warm_ratio": ("<=", 0.1),
    "deploy_vs_sceptre_ratio": ("<=", 0.1), "deploy_vs_sequential_ratio": ("<=", 0.1),
    "noop_vs_sceptre_ratio": ("<=", 0.5), "noop_change_sets": ("==", 0), "noop_api_calls_per_stack": ("<=", 1.5),
    "noop_over_floor": ("<=", 2.0), "plan_over_noop": ("<=", 1.0), "makespan_over_critical_path": ("<=", 1.05),
}


def update(figures: dict) -> None:
    """Merge `figures` into results.json (other scripts' keys stay)."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.update(figures)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def verdict(key: str, value) -> str:
    if key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    if value is None:
        return f"(target {op} {target}: not measured)"
    met = value <= target if op == "<=" else value == target
    return f"{'meets' if met else 'MISSES'} target {op} {target}"


def main() -> int:
    data = json.loads(RESULTS.read_text())
    for key, value in sorted(data.items()):
        if key == "scale":
            continue
        print(f"{key:<34} {value!s:<24} {verdict(key, value)}")
    for row in data.get("scale", []):
        print(f"scale {row['shape']:<8} {row['stacks']:>4} stacks {row['phase']:<6} {row['seconds']:7.2f} s "
              f"{row['seconds_per_stack']:6.3f} s/stack {row['api_calls_per_stack']:5.2f} calls/stack")
    missed = [k for k, v in data.items() if verdict(k, v).startswith("MISSES")]
    print("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
