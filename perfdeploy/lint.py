"""The lint gate: cfn-lint in-process with perfdeploy's house rules appended, one rule set per run.

Templates whose content (with the cfn-lint version and the house rules) was already linted clean are
skipped via a small hash cache, read before anything else: cfn-lint (0.3 s of imports, sympy and networkx
among them) is imported and its rule set built only when some template must be linted. The templates that
must be are linted across the machine's cores (forked workers inheriting the one rule set).
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

from perfdeploy import aws_support
from perfdeploy.errors import LintError

RULES_DIR = Path(__file__).parent / "lint_rules"
CACHE_ENV = "PERFDEPLOY_CACHE_DIR"
DEFAULT_CACHE_DIR = Path(".perfdeploy/cache")
# Modules the house rules read: a change to one invalidates the cache like a change to a rule.
HOUSE_RULE_DATA = ("safety.py", "iam_allowlist.py", "iam_permissions.py", "aws_support.py")


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    severity: str  # error | warning | informational
    message: str

    @property
    def fails(self) -> bool:
        return self.severity != "informational"

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.rule} {self.message}"


@cache
def _runner(region: str):
    """One cfn-lint rule set (built-in + house rules) per region per process."""
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    config = ConfigMixIn([], regions=[region], append_rules=[str(RULES_DIR)], include_checks=["I"])
    return Runner(config)


@cache
def _fingerprint() -> str:
    """cfn-lint version + house rule sources: a change to either invalidates the cache."""
    h = hashlib.sha256(version("cfn-lint").encode())
    package = Path(__file__).parent
    for path in sorted(RULES_DIR.glob("*.py")) + [package / name for name in HOUSE_RULE_DATA]:
        h.update(path.read_bytes())
    return h.hexdigest()


def lint_templates(templates: dict[str, str], region: str, use_cache: bool = True) -> list[Finding]:
    """Lint named template bodies; return every finding (errors, warnings and informational notices).
    A template that passed (nothing but notices) is remembered by content hash with its notices."""
    cache_file = Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE_DIR)) / "lint-clean.json"
    passed = _load(cache_file) if use_cache else {}
    # With the day: a version that passes its end of support fails the gate from that day on.
    salt = f"{_fingerprint()}\0{aws_support.today()}\0{region}\0"
    digests = {name: hashlib.sha256(f"{salt}{body}".encode()).hexdigest() for name, body in templates.items()}
    todo = {name: body for name, body in templates.items() if digests[name] not in passed}
    findings = [Finding(name, **notice) for name in templates if name not in todo for notice in passed[digests[name]]]
    newly_passed: dict[str, list[dict]] = {}
    for name, found in _lint_each(todo, region):
        findings += found
        if not any(f.fails for f in found):
            newly_passed[digests[name]] = [{k: v for k, v in asdict(f).items() if k != "file"} for f in found]
    if use_cache and newly_passed:
        _save(cache_file, passed | newly_passed)
    return sorted(findings, key=lambda f: (f.file, f.line, f.rule))


def prepare_gate(regions) -> None:
    """Build these regions' rule sets now (cfn-lint imported and its rules loaded: over a second), for a
    command that has a moment to spare before it lints."""
    for region in regions:
        _runner(region)


def _lint_each(templates: dict[str, str], region: str) -> list[tuple[str, list[Finding]]]:
    """(name, findings) per template: in this process for one, else across the cores. The rule set is built
    here first, so forked workers share it and a region cfn-lint cannot check fails here, as itself."""
    if not templates:
        return []
    _runner(region)
    workers = min(len(templates), os.cpu_count() or 1)
    if workers < 2 or sys.platform != "linux":  # fork is what lets workers inherit the rules (and test patches)
        return [(name, _lint_one(name, body, region)) for name, body in templates.items()]
    names = sorted(templates, key=lambda n: -len(templates[n]))  # largest first: the cores finish together
    gc.freeze()  # before fork, as the gc docs advise: the workers' collections skip what they inherit
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            found = pool.map(_lint_in_worker, names, [templates[n] for n in names], [region] * len(names))
            return list(zip(names, found, strict=True))
    finally:
        gc.unfreeze()


def _lint_in_worker(name: str, body: str, region: str) -> list[Finding]:
    """One template in a forked worker, with no garbage collection while cfn-lint runs and one after it:
    cfn-lint allocates millions of short-lived objects, and the collections they set off were ~10% of
    a cold lint of the 33 templates (6.05 s against 7.0 s, median of 3, bench-style; memory stays as it was,
    ~170 MB, where never collecting grew it to ~220 MB)."""
    gc.disable()
    try:
        return _lint_one(name, body, region)
    finally:
        gc.collect()


def _lint_one(name: str, body: str, region: str) -> list[Finding]:
    from cfnlint.decode.decode import decode_str
    from cfnlint.runner import run_template_by_data

    runner = _runner(region)
    template, errors = decode_str(body)
    matches = errors or list(run_template_by_data(template, runner.config, runner.rules))
    return [Finding(name, m.linenumber, m.rule.id, m.rule.severity, m.message) for m in matches]


def _load(path: Path) -> dict[str, list[dict]]:
    """Content hash -> the notices of a template that passed."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}  # a list: the old format, read as empty


def _save(path: Path, passed: dict[str, list[dict]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(passed, sort_keys=True))
        os.replace(temporary, path)
    except OSError:
        pass  # a cache that cannot be written only costs time


def gate(templates: dict[str, str], region: str, use_cache: bool = True) -> list[Finding]:
    """Lint and fail on any error or warning (LintError listing them); return the informational notices."""
    findings = lint_templates(templates, region, use_cache)
    failing = [f for f in findings if f.fails]
    if failing:
        listing = "\n".join(f"  {f}" for f in failing)
        raise LintError(f"the lint gate found {len(failing)} problems:\n{listing}")
    return findings
