"""Ordinary mistakes, through the real CLI: one line naming the cause, the documented exit code, no traceback,
nothing deployed. One test per case of the issue that found them (tracebacks and misleading messages)."""

from __future__ import annotations

import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore import __version__ as botocore_version
from click.testing import CliRunner
from fakes import FakeAws, FakeCloudFormation, tiny_environment

from perfdeploy.cli import cli
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.run import deploy_rendered
from perfdeploy.errors import BAD_INPUT, FAILED

ROOT = Path(__file__).parent.parent


def fails(args: list[str], code: int, *lines: str, env: dict | None = None):
    """Run perfdeploy; assert the exit code, exactly these error lines, and no exception escaping."""
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert [line.removeprefix("error: ") for line in result.stderr.splitlines() if line.startswith("error:")] == [
        *lines], result.stderr
    assert result.exit_code == code, result.stderr
    return result


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    for path in (ROOT / "config").glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    return folder


# --- what printed a traceback -------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--region", "xx", "plan", "dev"], ["plan", "dev", "--region", "xx"]])
def test_an_unknown_region_is_a_usage_error_before_or_after_the_command(args):
    fails(args, BAD_INPUT, f"--region: 'xx' is not a region botocore {botocore_version} knows (regions look "
                           "like us-east-1 or eu-west-1)")


def test_a_misspelt_region_in_config_gets_a_did_you_mean(config_dir):
    path = config_dir / "dev.yaml"
    path.write_text(path.read_text() + "region: eu-westt-1\n")
    fails(["--config-dir", str(config_dir), "plan", "dev"], BAD_INPUT,
          f"{path}: region: 'eu-westt-1' is not a region botocore {botocore_version} knows; did you mean "
          "'eu-west-1'?")


def test_a_region_botocore_knows_but_cfn_lint_does_not_is_a_usage_error_not_a_traceback():
    from cfnlint.helpers import REGIONS
    from cfnlint.version import __version__ as cfnlint_version

    from perfdeploy.regions import known_regions

    newer = sorted(set(known_regions()) - set(REGIONS))
    if not newer:
        pytest.skip("this cfn-lint knows every region this botocore knows")
    fails(["render", "dev", "--region", newer[0], "--out", "/nonexistent"], BAD_INPUT,
          f"cfn-lint {cfnlint_version} has no resource schemas for {newer[0]}, so the lint gate cannot check "
          "templates for it; a newer cfn-lint may (pip install -U cfn-lint)")


def test_an_endpoint_that_is_not_a_url_is_a_usage_error():
    fails(["--endpoint-url", "notaurl", "status", "dev"], BAD_INPUT,
          "--endpoint-url: 'notaurl' is not an endpoint URL (e.g. http://127.0.0.1:5000 for the local emulator)")


def test_an_endpoint_variable_that_is_not_a_url_is_named():
    fails(["status", "dev"], BAD_INPUT, "AWS_ENDPOINT_URL_CLOUDFORMATION: 'cfn' is not an endpoint URL (e.g. "
          "http://127.0.0.1:5000 for the local emulator)", env={"AWS_ENDPOINT_URL_CLOUDFORMATION": "cfn"})


def test_an_output_folder_that_cannot_be_made_is_named_and_nothing_is_written():
    fails(["render", "dev", "--no-lint", "--out", "/proc/nope"], BAD_INPUT,
          "--out: cannot write /proc/nope: No such file or directory")


def test_a_config_file_that_is_not_utf8_names_the_byte(config_dir):
    path = config_dir / "dev.yaml"
    path.write_bytes(path.read_bytes() + b"cost_center: caf\xe9\n")
    line = path.read_bytes().count(b"\n")
    fails(["--config-dir", str(config_dir), "render", "dev"], BAD_INPUT,
          f"{path}: not UTF-8 text: byte 0xe9 at line {line}, column 17; save the file as UTF-8")


class _Answer(BaseHTTPRequestHandler):
    status, body = 200, b""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    """A loopback HTTP server that answers every request with one status and an HTML page."""
    servers = []

    def start(status: int) -> str:
        handler = type("Handler", (_Answer,), {"status": status,
                                               "body": b"<html><head><title>Bad Gateway</title></head></html>"})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_endpoint_that_answers_a_web_page_says_so_at_once(web_server):
    url = web_server(200)
    fails(["--endpoint-url", url, "status", "dev"], BAD_INPUT,
          f"{url} answered DescribeStacks with a web page ('Bad Gateway'), HTTP 200, not an AWS response: check "
          "--endpoint-url (AWS_ENDPOINT_URL) or a proxy in between")


def test_an_endpoint_that_answers_a_404_page_says_so(web_server):
    url = web_server(404)
    fails(["--endpoint-url", url, "status", "dev"], FAILED,
          f"{url} answered DescribeStacks with a web page ('Bad Gateway'), HTTP 404, not an AWS response: check "
          "--endpoint-url (AWS_ENDPOINT_URL) or a proxy in between")


def test_an_endpoint_that_answers_http_500_is_one_line_after_the_retries(web_server, monkeypatch):
    monkeypatch.setattr("perfdeploy.aws.RETRIES", {"mode": "standard", "max_attempts": 2})  # retries are slow
    url = web_server(500)
    fails(["status", "dev", "--endpoint-url", url], FAILED,
          f"{url} answered DescribeStacks with a web page ('Bad Gateway'), HTTP 500, not an AWS response: check "
          "--endpoint-url (AWS_ENDPOINT_URL) or a proxy in between")


@pytest.mark.parametrize("command", ["status", "drift"])
def test_an_endpoint_nothing_answers_is_bad_input_naming_it(command, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    fails(["--endpoint-url", url, command, "dev"], BAD_INPUT,
          f"--endpoint-url: cannot connect to {url}: is the local emulator running ('perfdeploy local')?")


# --- what was misleading ------------------------------------------------------------------------------------

def test_a_missing_defaults_file_is_blamed_on_itself(config_dir):
    (config_dir / "defaults.yaml").unlink()
    fails(["--config-dir", str(config_dir), "render", "dev"], BAD_INPUT,
          f"{config_dir}/defaults.yaml: missing: every environment's file is merged over it (in {config_dir}/)")


def test_a_config_dir_that_does_not_exist_says_so(tmp_path):
    fails(["render", "dev", "--config-dir", str(tmp_path / "nowhere")], BAD_INPUT,
          f"--config-dir: {tmp_path}/nowhere does not exist (it should hold defaults.yaml and one <env>.yaml per "
          "environment)")


def test_a_misspelt_top_level_key_is_an_unknown_key_with_a_did_you_mean(config_dir):
    path = config_dir / "dev.yaml"
    path.write_text(path.read_text().replace("\necs:", "\necss:"))
    fails(["--config-dir", str(config_dir), "render", "dev"], BAD_INPUT,
          f"{path}: ecss: unknown key 'ecss' (did you mean 'ecs'?)")


def test_every_config_error_is_reported_each_on_its_own_line(config_dir):
    path = config_dir / "dev.yaml"
    path.write_text(path.read_text().replace("min: 1", "min: 9") + "servce: x\n")
    fails(["--config-dir", str(config_dir), "render", "dev"], BAD_INPUT,
          f"{path}: servce: unknown key 'servce' (did you mean 'service'?)",
          f"{path}: ecs: min (9) is greater than max (4)")


@pytest.fixture
def fake_aws(monkeypatch):
    aws = FakeAws(FakeCloudFormation())
    for module in ("deploying", "history", "inspecting", "operating"):
        monkeypatch.setattr(f"perfdeploy.cli.{module}.aws_for", lambda ctx, cfg: aws)
    return aws


def test_an_allow_replace_naming_no_stateful_resource_is_refused_before_anything_deploys(fake_aws):
    fails(["deploy", "dev", "--yes", "--allow-replace", "dynamodb/GoalTable"], BAD_INPUT,
          "--allow-replace: 'dynamodb/GoalTable': the dynamodb stack has no stateful resource 'GoalTable' (did you "
          "mean 'GoalsTable'?) (the guard only stops stateful ones; dynamodb has BackupVault, GoalsTable, "
          "ReviewCyclesTable, ReviewsTable)")
    assert fake_aws.client("cloudformation").stacks == {}


def test_an_allow_replace_naming_no_stack_is_refused(fake_aws):
    fails(["plan", "dev", "--allow-replace", "dynamo/GoalsTable"], BAD_INPUT,
          "--allow-replace: 'dynamo/GoalsTable': no stack 'dynamo' (did you mean 'dynamodb'?); the stacks are "
          "alb, dynamodb, ecs, elasticache, iam, monitoring, msk, network, registry, security, tracing")


def test_rollback_to_a_release_that_does_not_exist_names_the_latest_not_every_one(fake_aws):
    for version in (1, 2, 3):
        run = deploy_rendered(tiny_environment({"a": []}, version=version), fake_aws, _yes(),
                              Reporter(quiet=True), lambda spec, changes: True)
    fails(["rollback", "dev", "--to", "nonexistent", "--yes"], BAD_INPUT,
          f"--to: no release 'nonexistent' of dev; 3 releases recorded, the latest {run.release} ('perfdeploy "
          "releases dev' lists them)")


def _yes():
    from perfdeploy.deploy.engine import DeployOptions

    return DeployOptions(yes=True)


def test_lint_with_nothing_rendered_is_bad_input(tmp_path):
    fails(["lint", "dev", "--dir", str(tmp_path)], BAD_INPUT,
          f"{tmp_path}/dev: no rendered templates; run 'perfdeploy render dev' first")


@pytest.mark.parametrize("args, line", [
    (["render"], "perfdeploy render: missing argument 'ENV...' (see 'perfdeploy render --help')"),
    (["deploy", "dev", "--bogus"], "perfdeploy deploy: no such option '--bogus' (see 'perfdeploy deploy --help')"),
    (["--bogus", "status", "dev"], "perfdeploy: no such option '--bogus' (see 'perfdeploy --help')"),
    (["rendr", "dev"], "perfdeploy: no command 'rendr'; did you mean 'render'? (see 'perfdeploy --help')"),
    (["deploy", "dev", "--concurrency", "99"], "--concurrency: 99 is not in the range 1<=x<=16."),
    (["graph", "dev", "--format", "svg"], "--format: 'svg' is not one of 'text', 'mermaid'."),
    (["deploy", "dev", "--allow-replace", "GoalsTable"],
     "--allow-replace: 'GoalsTable' is not STACK/LOGICAL_ID (e.g. dynamodb/GoalsTable)"),
])
def test_clicks_own_usage_errors_come_in_perfdeploys_shape(args, line):
    fails(args, BAD_INPUT, line)


def test_a_bug_is_one_line_too_and_perfdeploy_debug_shows_its_traceback(monkeypatch, fake_aws):
    def broken(cfg, aws):
        return {}["stacks"]
    monkeypatch.setattr("perfdeploy.deploy.inspect.status", broken)
    fails(["status", "dev"], FAILED, "internal error: KeyError: 'stacks'. This is a bug in perfdeploy; "
          "PERFDEPLOY_DEBUG=1 shows the traceback to report")
    assert isinstance(CliRunner().invoke(cli, ["status", "dev"], env={"PERFDEPLOY_DEBUG": "1"}).exception, KeyError)


def test_ctrl_c_at_a_prompt_is_an_interruption(monkeypatch, fake_aws):
    import click

    def prompt_answered_with_ctrl_c(cfg, aws, options, reporter):
        raise click.Abort()
    monkeypatch.setattr("perfdeploy.deploy.run.deploy", prompt_answered_with_ctrl_c)
    fails(["deploy", "dev"], 130, "interrupted at a prompt; nothing more was done")
