"""Readable at 80 columns, as CI logs show it (rich lays out at 80 without a terminal): every command's help,
and the status, releases, deploy and change tables never cut what a user types next (release ids, stack keys,
resource types, commits with -dirty); long reasons are one line in the table and whole under it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
import pytest
from cfnlint.decode import decode_str
from click.testing import CliRunner

from perfdeploy.cli import cli
from perfdeploy.config import load_config
from perfdeploy.console import err
from perfdeploy.deploy.releases import Release, new_release_id
from perfdeploy.deploy.report import changes_table
from perfdeploy.deploy.results import Action, RunResult, StackResult
from perfdeploy.render import render_env

WIDTH = 80
KEYS = ("security", "network", "registry", "dynamodb", "msk", "elasticache", "tracing", "iam", "alb", "ecs",
        "monitoring")


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setattr(err, "width", WIDTH)
    monkeypatch.setenv("COLUMNS", str(WIDTH))  # click's help formatter


def run(*args: str) -> click.testing.Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def whole_on_a_line(text: str, *needed: str) -> None:
    """Each needed string appears uncut on one line; nothing was shortened with an ellipsis."""
    lines = text.splitlines()
    for item in needed:
        assert any(item in line for line in lines), f"{item!r} is cut or missing:\n{text}"
    assert "…" not in text and "..." not in text.replace(" ... [", "")


def table_lines(text: str) -> list[str]:
    """The table itself: the lines before any note printed under it."""
    return [line for line in text.splitlines() if not line.startswith("[")]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command


@pytest.mark.parametrize("path, command", list(all_commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple)
                         else "")
def test_every_commands_help_fits_80_columns_and_gives_every_option_help_and_an_example(path, command):
    text = run(*path, "--help").stdout
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"
            assert any(opt in text for opt in param.opts)
    if path != ("local",):
        assert "Example" in text and f"perfdeploy {path[0]} " in text
        assert "Environments (ENV) in config/: dev, prod, staging." in text


def test_the_top_level_help_names_the_environments_and_shows_examples():
    text = run("--help").stdout
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    assert "Environments (ENV) in config/: dev, prod, staging." in text
    assert "  perfdeploy deploy dev --yes" in text
    assert all(param.help for param in cli.params if isinstance(param, click.Option))


def test_the_status_table_keeps_every_stack_and_status_whole(monkeypatch):
    statuses = ["UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE", "NOT_DEPLOYED",
                "ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"]
    stacks = [{"key": key, "stack_name": f"dev-performance-mgmt-{key}", "status": statuses[i % len(statuses)],
               "last_updated": None if i % 5 == 2 else "2026-11-22 10:15:07.123456+00:00",
               "template_current": (True, False, None)[i % 3]} for i, key in enumerate(KEYS)]
    monkeypatch.setattr("perfdeploy.deploy.inspect.status",
                        lambda cfg, aws: {"env": "dev", "region": "us-east-1", "stacks": stacks})
    text = run("status", "dev").stderr
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    whole_on_a_line(text, "dev-performance-mgmt-KEY", *(f"{key} " for key in KEYS), *statuses, "differs")
    assert "2026-11-22" in text and "10:15:07" in text and ".123456" not in text  # to the second, in UTC


def test_the_releases_table_keeps_ids_and_dirty_commits_whole(monkeypatch):
    start = datetime(2026, 11, 22, 10, 15, 7, 654321, tzinfo=UTC)
    found = [Release(new_release_id(start + timedelta(hours=i)), "dev",
                     (start + timedelta(hours=i)).isoformat(timespec="seconds"),
                     "0123456789abcdef0123456789abcdef01234567" + ("-dirty" if i % 2 else ""),
                     ("1.4.2", "sha-0123abc", None)[i % 3], ("deploy", "rollback")[i % 2], {"ecs": {}})
             for i in range(4)]
    monkeypatch.setattr("perfdeploy.deploy.run.releases", lambda cfg, aws: found)
    text = run("releases", "dev").stderr
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    whole_on_a_line(text, "dev: 4 releases", *(r.id for r in found), "0123456-dirty", "rollback", "sha-0123abc")
    assert "2026-11-22" in text and "11:15:07" in text and "+00:00" not in text  # to the second, in UTC
    del found[1:]
    assert "dev: 1 release\n" in run("releases", "dev").stderr


LONG = ("KafkaCluster (AWS::MSK::Cluster): Resource handler returned message: \"The requested broker type "
        "kafka.m5.xlarge is not supported in this Availability Zone (Service: Kafka, Status Code: 400, "
        "Request ID: 0f0e0d0c-0b0a-0908-0706-050403020100)\" (RequestToken: 11111111-2222, HandlerErrorCode: "
        "InvalidRequest)")
REFUSED = ("the change set would lose data: GoalsTable (AWS::DynamoDB::Table) would be replaced (Replacement: "
           "True). To let it go ahead: --allow-replace dynamodb/GoalsTable")


def a_failed_run() -> RunResult:
    results = {key: StackResult(key, f"dev-performance-mgmt-{key}", Action.UNCHANGED, "UPDATE_COMPLETE", 0.4)
               for key in KEYS}
    results["msk"] = StackResult("msk", "dev-performance-mgmt-msk", Action.FAILED, "UPDATE_ROLLBACK_COMPLETE",
                                 1503.2, reason=LONG)
    results["dynamodb"] = StackResult("dynamodb", "dev-performance-mgmt-dynamodb", Action.REFUSED,
                                      "UPDATE_COMPLETE", 3.1, reason=REFUSED)
    for key in ("iam", "ecs", "monitoring"):
        results[key] = StackResult(key, f"dev-performance-mgmt-{key}", Action.SKIPPED, "UPDATE_COMPLETE",
                                   reason="dependency has failed")
    return RunResult("dev", "us-east-1", list(results.values()), 1512.5)


@pytest.mark.parametrize("as_json", [False, True])
def test_the_deploy_table_keeps_stacks_whole_and_long_reasons_one_line_with_the_full_text_below(monkeypatch,
                                                                                                as_json):
    monkeypatch.setattr("perfdeploy.deploy.run.deploy", lambda cfg, aws, options, reporter: a_failed_run())
    emulator = ("--endpoint-url", "http://127.0.0.1:1")  # preflight refuses the shipped placeholders on AWS
    result = run("deploy", "dev", "--yes", *emulator, *(["--json"] if as_json else []))
    assert result.exit_code == 3  # a refusal outranks a failure
    table = table_lines(result.stderr)
    assert all(len(line) <= WIDTH for line in table), result.stderr
    whole_on_a_line("\n".join(table), *(f"{key} " for key in KEYS), "UPDATE_ROLLBACK_COMPLETE", "refused",
                    "dependency has failed")
    msk = next(line for line in table if line.startswith("msk "))
    assert msk.rstrip().endswith("KafkaCluster ... [2]")  # the reason, summarised to the one line of its row
    notes = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert notes == [f"[1] dynamodb: {REFUSED}", f"[2] msk: {LONG}"]  # in full, the consent to type included
    if as_json:
        reasons = {s["key"]: s["reason"] for s in json.loads(result.stdout)["stacks"]}
        assert reasons["msk"] == LONG and reasons["dynamodb"] == REFUSED


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_changes_table_keeps_every_logical_id_and_type_of_our_templates_whole(env):
    for stack in render_env(load_config(env)).stacks:  # a change set's table: every resource of a stack
        changes = [{"action": "Add", "logical_id": lid, "type": resource["Type"], "replacement": ""}
                   for lid, resource in decode_str(stack.body)[0]["Resources"].items()]
        changes[0] |= {"action": "Modify", "replacement": "True"}  # the widest sign, -/+
        err.begin_capture()
        err.print(changes_table(stack.key, changes))
        text = err.end_capture()
        assert all(len(line) <= WIDTH for line in text.splitlines()), text
        for change in changes:
            assert any(change["logical_id"] in line and change["type"] in line for line in text.splitlines()), text


def test_the_changes_table_names_its_signs_and_counts_in_the_singular():
    changes = [{"action": "Modify", "logical_id": "GoalsTable", "type": "AWS::DynamoDB::Table", "replacement": r}
               for r in ("True", "Conditional", "False")] + [
              {"action": a, "logical_id": "Q", "type": "AWS::SQS::Queue", "replacement": ""} for a in ("Add", "Remove")]
    assert changes_table("dynamodb", changes).title == ("dynamodb: 5 changes (+ add, - remove, ~ modify, -/+ replace, "
                                                        "~/+ may replace (Conditional))")
    assert changes_table("dynamodb", changes[:1]).title == "dynamodb: 1 change (-/+ replace)"
