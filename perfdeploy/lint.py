"""The lint gate: cfn-lint in-process with perfdeploy's house rules appended, one rule set per run.

Templates whose content (with the cfn-lint version and the house rules) was already linted clean are
skipped via a small hash cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cfnlint.version
from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner import Runner, run_template_by_data

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
def _runner(region: str) -> Runner:
    """One cfn-lint rule set (built-in + house rules) per region per process."""
    config = ConfigMixIn([], regions=[region], append_rules=[str(RULES_DIR)], include_checks=["I"])
    return Runner(config)


@cache
def _fingerprint() -> str:
    """cfn-lint version + house rule sources: a change to either invalidates the cache."""
    h = hashlib.sha256(cfnlint.version.__version__.encode())
    package = Path(__file__).parent
    for path in sorted(RULES_DIR.glob("*.py")) + [package / name for name in HOUSE_RULE_DATA]:
        h.update(path.read_bytes())
    return h.hexdigest()


def lint_templates(templates: dict[str, str], region: str, use_cache: bool = True) -> list[Finding]:
    """Lint named template bodies; return every finding (errors, warnings and informational notices)."""
    runner = _runner(region)
    cache_file = Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE_DIR)) / "lint-clean.json"
    clean = _load(cache_file) if use_cache else set()
    findings: list[Finding] = []
    newly_clean: set[str] = set()
    for name, body in templates.items():
        # With the day: a version that passes its end of support fails the gate from that day on.
        digest = hashlib.sha256(f"{_fingerprint()}\0{aws_support.today()}\0{region}\0{body}".encode()).hexdigest()
        if digest in clean:
            continue
        template, errors = decode_str(body)
        matches = errors or list(run_template_by_data(template, runner.config, runner.rules))
        found = [Finding(name, m.linenumber, m.rule.id, m.rule.severity, m.message) for m in matches]
        findings += found
        if not found:
            newly_clean.add(digest)
    if use_cache and newly_clean:
        _save(cache_file, clean | newly_clean)
    return sorted(findings, key=lambda f: (f.file, f.line, f.rule))


def _load(path: Path) -> set[str]:
    try:
        return set(json.loads(path.read_text()))
    except (OSError, ValueError):
        return set()


def _save(path: Path, digests: set[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sorted(digests)))
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
