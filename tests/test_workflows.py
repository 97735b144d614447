"""The GitHub workflows and pre-commit hooks shipped for users of perfdeploy: what they run, and that the
workflow linter `make lint-workflows` uses would catch a broken one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_ci_runs_make_test_without_credentials():
    ci = workflow("ci.yml")
    steps = ci["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)
    assert ci["permissions"] == {"contents": "read"}
    assert "id-token" not in str(ci)


def test_pull_requests_plan_every_environment_with_the_detailed_exit_code():
    deploy = workflow("deploy.yml")
    plan = deploy["jobs"]["plan"]
    assert "github.event_name == 'pull_request'" in plan["if"]
    assert plan["strategy"]["matrix"]["env"] == ["dev", "staging", "prod"]
    assert plan["with"] == {"command": "plan", "env": "${{ matrix.env }}"}
    script = runner_script()
    assert 'args=(plan "$ENV_NAME" --detailed-exitcode --json)' in script
    assert ">> \"$GITHUB_STEP_SUMMARY\"" in script


def test_a_merge_deploys_dev_then_staging_then_prod_with_yes():
    jobs = workflow("deploy.yml")["jobs"]
    assert [jobs[j]["with"]["env"] for j in ("deploy-dev", "deploy-staging", "deploy-prod")] == \
        ["dev", "staging", "prod"]
    assert jobs["deploy-staging"]["needs"] == "deploy-dev" and jobs["deploy-prod"]["needs"] == "deploy-staging"
    assert jobs["deploy-dev"]["if"] == "github.event_name != 'pull_request'"
    # as each stack's execution role: the deploy role may create change sets only with one (iam stack)
    assert 'args=(deploy "$ENV_NAME" --yes --json --execution-roles)' in runner_script()


def test_each_run_uses_the_github_environment_of_its_perfdeploy_environment_and_an_oidc_role():
    runner = workflow("perfdeploy.yml")["jobs"]["run"]
    # prod's required reviewers are a setting of the GitHub environment "prod" that this selects
    assert runner["environment"] == "${{ inputs.command == 'plan' && format('{0}-plan', inputs.env) || inputs.env }}"
    assert runner["permissions"] == {"contents": "read", "id-token": "write"}
    credentials = next(s for s in runner["steps"] if s.get("uses", "").startswith("aws-actions/"))
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert "secrets." not in (WORKFLOWS / "perfdeploy.yml").read_text()  # no long-lived keys


def test_every_action_is_pinned_to_a_commit():
    for path in WORKFLOWS.glob("*.yml"):
        for uses in re.findall(r"uses: (\S+)", path.read_text()):
            if not uses.startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{path.name}: {uses}"


def test_no_expression_is_pasted_into_a_shell_script():
    for step in workflow("perfdeploy.yml")["jobs"]["run"]["steps"]:
        assert "${{" not in step.get("run", ""), "pass inputs through env: (script injection)"


def runner_script() -> str:
    steps = workflow("perfdeploy.yml")["jobs"]["run"]["steps"]
    return next(s["run"] for s in steps if "perfdeploy" in s.get("name", "") and "run" in s)


def test_the_workflow_linter_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: make test\n")  # no runs-on
    result = subprocess.run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "runs-on" in result.stdout + result.stderr


def test_every_pre_commit_hook_is_a_make_target_that_exists():
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert {h["id"] for h in hooks} == {"ruff", "templates-fresh", "lint-gate", "workflows"}
    for hook in hooks:
        target = hook["entry"].split()[-1]
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, f"{hook['id']}: make {target}: {dry.stderr}"
