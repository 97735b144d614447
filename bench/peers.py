"""The peers perfdeploy is measured against, on the same rendered templates:

- sceptre 4.7 (`sceptre launch -y`), in its own virtualenv (its pins conflict with ours), its project generated
  from our manifest. In 4.7 `!stack_output` resolves a stack from the project path, so with our stack names each
  stack config sets `stack_name` and reads its inputs with `!stack_output_external NAME::Output`, with explicit
  dependencies;
- the AWS CLI way the old deploy script used: `aws cloudformation deploy` per stack in deploy order, each chained
  parameter read with `describe-stacks --query`.

Both take the templates over 51,200 bytes through an S3 bucket, as CloudFormation requires.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml
from emulated import ROOT

PEERS = ROOT / ".bench"   # made by `make bench`: .bench/sceptre, .bench/awscli
SCEPTRE = Path(os.environ.get("BENCH_SCEPTRE", PEERS / "sceptre" / "bin" / "sceptre"))
AWS_CLI = Path(os.environ.get("BENCH_AWS_CLI", PEERS / "awscli" / "bin" / "aws"))
BUCKET = "bench-peer-templates"
IMAGE_TAG = "bench"


def version(tool: Path) -> str | None:
    """The tool's own version line, or None when it is not installed."""
    if not tool.exists():
        return None
    done = subprocess.run([str(tool), "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else None


class StackOutput(str):
    """!stack_output_external NAME::Output, written as the YAML tag sceptre reads."""


yaml.SafeDumper.add_representer(StackOutput, lambda d, v: d.represent_scalar("!stack_output_external", str(v)))


def sceptre_project(manifest: dict, templates: Path, where: Path) -> Path:
    """A sceptre project for the environment in `manifest`, over the rendered `templates`."""
    env = manifest["env"]
    names = {s["key"]: s["stack_name"] for s in manifest["stacks"]}
    shutil.rmtree(where, ignore_errors=True)
    (where / "config" / env).mkdir(parents=True)
    shutil.copytree(templates, where / "templates")
    (where / "config" / "config.yaml").write_text(yaml.safe_dump(
        {"project_code": "bench", "region": manifest["region"], "template_bucket_name": BUCKET}))
    for stack in manifest["stacks"]:
        parameters = {}
        for name, value in stack["parameters"].items():
            if isinstance(value, dict) and "stack" in value:
                parameters[name] = StackOutput(f"{names[value['stack']]}::{value['output']}")
            elif isinstance(value, dict) and "arg" in value:
                parameters[name] = IMAGE_TAG
            else:
                parameters[name] = str(value)
        config = {"template": {"type": "file", "path": stack["template"]}, "stack_name": stack["stack_name"],
                  "parameters": parameters, "stack_tags": stack["tags"],
                  "dependencies": [f"{env}/{up}.yaml" for up in stack["depends_on"]]}
        (where / "config" / env / f"{stack['key']}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return where


def sceptre_launch(project: Path, env: str) -> list[str]:
    return [str(SCEPTRE), "--dir", str(project), "launch", "-y", env]


def cli_deploy(manifest: dict, templates: Path, run) -> None:
    """The old deploy script: each stack in order, its inputs read one describe-stacks --query at a time.
    `run(command)` runs one aws command and returns its stdout."""
    names = {s["key"]: s["stack_name"] for s in manifest["stacks"]}
    for stack in manifest["stacks"]:  # the manifest lists stacks in dependency order
        overrides = []
        for name, value in stack["parameters"].items():
            if isinstance(value, dict) and "stack" in value:
                query = f"Stacks[0].Outputs[?OutputKey=='{value['output']}'].OutputValue"
                found = run([str(AWS_CLI), "cloudformation", "describe-stacks", "--stack-name",
                             names[value["stack"]], "--query", query, "--output", "text"]).strip()
                overrides.append(f"{name}={found}")
            elif isinstance(value, dict) and "arg" in value:
                overrides.append(f"{name}={IMAGE_TAG}")
            else:
                overrides.append(f"{name}={value}")
        command = [str(AWS_CLI), "cloudformation", "deploy", "--stack-name", stack["stack_name"],
                   "--template-file", str(templates / stack["template"]), "--s3-bucket", BUCKET,
                   "--no-fail-on-empty-changeset", "--tags", *[f"{k}={v}" for k, v in stack["tags"].items()]]
        if stack["capabilities"]:
            command += ["--capabilities", *stack["capabilities"]]
        if overrides:
            command += ["--parameter-overrides", *overrides]
        run(command)


def manifest_of(templates: Path) -> dict:
    return json.loads((templates / "manifest.json").read_text())
