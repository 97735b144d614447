"""Render and lint speed: what `perfdeploy render dev staging prod` costs, cold and with the lint cache.

Prints figures; asserts nothing (speed is measured here, never in tests).
"""

from __future__ import annotations

import os
import tempfile
import time

from perfdeploy.config import load_config
from perfdeploy.lint import lint_templates
from perfdeploy.render import render_env

ENVS = ("dev", "staging", "prod")


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    configs, t_config = timed(lambda: [load_config(e) for e in ENVS])
    rendered, t_render = timed(lambda: [render_env(c) for c in configs])
    templates = {f"{r.env}/{s.filename}": s.body for r in rendered for s in r.stacks}
    size = sum(len(b.encode()) for b in templates.values())
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PERFDEPLOY_CACHE_DIR"] = cache
        _, t_cold = timed(lambda: lint_templates(templates, "us-east-1"))
        _, t_warm = timed(lambda: lint_templates(templates, "us-east-1"))
    print(f"config  : {len(ENVS)} environments validated in {t_config * 1000:.0f} ms")
    print(f"render  : {len(templates)} templates, {size / 1024:.0f} KiB, in {t_render:.2f} s")
    print(f"lint    : cold {t_cold:.2f} s (one cfn-lint rule set for the run); "
          f"cached {t_warm * 1000:.0f} ms (content hash already linted clean)")
    largest = max(templates.items(), key=lambda kv: len(kv[1]))
    print(f"largest : {largest[0]} {len(largest[1].encode()) / 1024:.1f} KiB (inline limit 50 KiB: larger go via S3)")


if __name__ == "__main__":
    main()
