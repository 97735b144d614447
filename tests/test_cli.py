"""The command line: exit codes, messages without tracebacks, render/lint/graph as users run them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from troposphere import Output, Template

from perfdeploy.cli import cli

ROOT = Path(__file__).parent.parent


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "perfdeploy", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "perfdeploy, version 0.1.0"


def test_an_unknown_environment_is_exit_2_without_traceback_and_writes_nothing(tmp_path):
    result = invoke("render", "dev", "qa", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown environment 'qa'" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # dev was valid, but nothing is written before every env validates


def test_bad_config_through_the_cli_names_file_and_field(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    for path in (ROOT / "config").glob("*.yaml"):
        (config / path.name).write_text(path.read_text())
    (config / "dev.yaml").write_text((config / "dev.yaml").read_text().replace("min: 1", "min: 9"))
    result = invoke("--config-dir", str(config), "render", "dev", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"{config}/dev.yaml: ecs: min (9) is greater than max (4)" in result.stderr


def test_render_writes_every_stack_and_the_manifest(tmp_path):
    result = invoke("render", "dev", "prod", "--out", str(tmp_path), "--no-lint")
    assert result.exit_code == 0, result.stderr
    for env in ("dev", "prod"):
        manifest = json.loads((tmp_path / env / "manifest.json").read_text())
        assert len(manifest["stacks"]) == 11
        assert sorted(p.name for p in (tmp_path / env).glob("*.yaml")) == sorted(
            s["template"] for s in manifest["stacks"])


def test_the_committed_templates_pass_the_lint_gate_and_dev_http_is_only_a_notice():
    result = invoke("lint", "dev", "staging", "prod", "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert "templates_out/dev/alb.yaml:" in result.stderr and "I9105" in result.stderr
    assert "dev: 11 templates, 0 errors, 1 notice\n" in result.stderr  # the singular, for one


def test_a_lint_error_is_exit_1_with_file_line_rule_and_message(tmp_path):
    env = tmp_path / "dev"
    env.mkdir()
    (env / "bad.yaml").write_text("Resources:\n  Logs:\n    Type: AWS::Logs::LogGroup\n")
    result = invoke("lint", "dev", "--dir", str(tmp_path), "--no-cache")
    assert result.exit_code == 1
    line = next(x for x in result.stderr.splitlines() if "E9103" in x)
    assert re.fullmatch(rf"{env}/bad.yaml:\d+ E9103 Logs: log group has no RetentionInDays", line)


def test_graph_shows_the_order_and_the_edges():
    result = invoke("graph", "prod")
    lines = result.stdout.splitlines()
    assert lines[0].split()[1] == "security"
    assert any("monitoring" in line and "after:" in line for line in lines)
    mermaid = invoke("graph", "prod", "--format", "mermaid").stdout
    assert mermaid.startswith("graph LR") and "  msk --> iam" in mermaid


def test_deploy_without_a_terminal_and_without_yes_is_exit_2_before_anything_happens():
    result = invoke("--endpoint-url", "http://127.0.0.1:9", "deploy", "dev")
    assert result.exit_code == 2
    assert "no terminal to approve changes on: pass --yes" in result.stderr


def test_a_region_override_is_said(tmp_path):
    result = invoke("--region", "eu-west-1", "render", "dev", "--out", str(tmp_path), "--no-lint")
    assert "dev: region eu-west-1 (overrides us-east-1 from config)" in result.stderr
    assert json.loads((tmp_path / "dev" / "manifest.json").read_text())["region"] == "eu-west-1"


def test_a_malformed_allow_replace_is_a_usage_error():
    result = invoke("deploy", "dev", "--yes", "--allow-replace", "GoalsTable")
    assert result.exit_code == 2 and "'GoalsTable' is not STACK/LOGICAL_ID" in result.stderr


def test_a_template_over_a_megabyte_is_a_render_error():
    from perfdeploy.blueprints.base import Blueprint
    from perfdeploy.config import load_config
    from perfdeploy.errors import RenderError
    from perfdeploy.render import render_env

    class Huge(Blueprint):
        key, description = "huge", "too big"

        def build(self, cfg):
            t = Template()
            for i in range(180):
                t.add_output(Output(f"O{i}", Value="x" * 6000))
            return t

    with pytest.raises(RenderError, match="over CloudFormation's 1,000,000-byte limit"):
        render_env(load_config("dev"), {"huge": Huge()})


def test_the_aws_options_work_after_the_command_as_well_as_before_it(monkeypatch):
    from fakes import FakeAws

    seen = []
    monkeypatch.setattr("perfdeploy.cli.inspecting.aws_for", lambda ctx, cfg: seen.append((dict(ctx.obj), cfg.region))
                        or FakeAws())
    options = ("--profile", "ops", "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:9")
    before, after = invoke(*options, "status", "dev"), invoke("status", "dev", *options)
    assert before.exit_code == after.exit_code == 0, (before.stderr, after.stderr)
    assert seen[0] == seen[1] and seen[0][1] == "eu-west-1"
    assert {k: seen[0][0][k] for k in ("profile", "region", "endpoint_url")} == {
        "profile": "ops", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"}


def test_the_config_dir_after_the_command_wins_over_the_one_before(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    for path in (ROOT / "config").glob("*.yaml"):
        (config / path.name).write_text(path.read_text())
    (config / "qa.yaml").write_text((config / "dev.yaml").read_text().replace("environment:dev", "environment:qa"))
    result = invoke("--config-dir", "config", "render", "qa", "--config-dir", str(config), "--no-lint",
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "out" / "qa" / "manifest.json").read_text())["env"] == "qa"


def test_bootstrap_prints_the_bucket_as_json():
    from moto import mock_aws

    with mock_aws():
        result = invoke("bootstrap", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"env": "dev", "region": "us-east-1",
                                         "bucket": "perfdeploy-123456789012-us-east-1"}
    assert "encrypted, versioned, public access blocked, TLS only" in result.stderr


def test_no_perfdeploy_module_imports_a_module_that_imports_it():
    """The import graph of the package (module-level and deferred imports alike) has no cycle."""
    import ast
    import graphlib

    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "perfdeploy").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("perfdeploy"):
                imported |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                             for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("perfdeploy")}
        graph[name] = {m for m in imported if m in modules and m != name}
    assert graph["perfdeploy.cli.shared"].isdisjoint({m for m in modules if m.startswith("perfdeploy.cli")})
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError naming the cycle
