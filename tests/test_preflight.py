"""Preflight: a deploy, plan or rollback against real AWS refuses placeholders and foreign ARNs (exit 2, file
and field named) before anything is rendered or deployed; against the local emulator they stay usable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from moto import mock_aws

from perfdeploy.aws import Aws
from perfdeploy.cli import cli
from perfdeploy.config import load_config
from perfdeploy.deploy.preflight import is_emulator, preflight
from perfdeploy.errors import BAD_INPUT, ConfigError

CONFIG = Path(__file__).parent.parent / "config"
OWN, OTHER = "111122223333", "444455556666"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    for path in CONFIG.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def own_values(config_dir: Path, account: str = OWN, cert_region: str = "us-east-1") -> None:
    """Replace every placeholder account with `account`, as a user setting up a real account would."""
    for path in config_dir.glob("*.yaml"):
        text = path.read_text().replace("123456789012", account)
        path.write_text(text.replace("acm:us-east-1:", f"acm:{cert_region}:"))


@pytest.fixture
def real_aws(monkeypatch):
    """moto's in-process AWS behind AWS's own endpoints (not loopback), as the account OWN."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OWN)
    with mock_aws():
        yield Aws("us-east-1")


def test_the_emulator_is_recognised_by_a_loopback_endpoint():
    assert is_emulator(Aws("us-east-1", endpoint_url="http://127.0.0.1:4566"))
    assert is_emulator(Aws("us-east-1", endpoint_url="http://localhost:5000"))
    assert not is_emulator(Aws("us-east-1"))
    assert not is_emulator(Aws("us-east-1", endpoint_url="https://sts.us-east-1.amazonaws.com"))


@pytest.mark.parametrize("env, file, field", [
    ("dev", "defaults.yaml", "deploy.ci_oidc_provider_arn"),
    ("staging", "staging.yaml", "alb.certificate_arn"),
    ("prod", "prod.yaml", "alb.certificate_arn"),
])
def test_the_placeholder_account_is_refused_against_real_aws_naming_file_and_field(real_aws, env, file, field):
    with pytest.raises(ConfigError) as caught:
        preflight(load_config(env, CONFIG), real_aws, CONFIG)
    assert caught.value.exit_code == BAD_INPUT
    assert str(caught.value).startswith(f"{CONFIG / file}: {field}: ")
    assert "documented placeholder account 123456789012" in str(caught.value)


def test_against_the_emulator_the_placeholders_stay_usable():
    for env in ("dev", "staging", "prod"):
        preflight(load_config(env, CONFIG), Aws("us-east-1", endpoint_url="http://127.0.0.1:1"), CONFIG)


def test_values_in_the_callers_own_account_pass(real_aws, config_dir):
    own_values(config_dir)
    for env in ("dev", "staging", "prod"):
        preflight(load_config(env, config_dir), real_aws, config_dir)


def test_a_provider_in_another_account_is_refused(real_aws, config_dir):
    own_values(config_dir, OTHER)
    with pytest.raises(ConfigError, match=rf"defaults\.yaml: deploy\.ci_oidc_provider_arn: .* not in the caller's "
                                          rf"account {OWN} \(aws\): IAM refuses"):
        preflight(load_config("dev", config_dir), real_aws, config_dir)


def test_a_certificate_from_another_region_is_refused(real_aws, config_dir):
    own_values(config_dir, cert_region="eu-west-1")
    with pytest.raises(ConfigError, match=r"prod\.yaml: alb\.certificate_arn: .* is in eu-west-1, the environment "
                                          r"in us-east-1"):
        preflight(load_config("prod", config_dir), real_aws, config_dir)


def test_a_mutable_image_tag_is_refused_even_against_the_emulator():
    with pytest.raises(ConfigError, match=r"--image-tag: 'latest' is a mutable name"):
        preflight(load_config("dev", CONFIG), Aws("us-east-1", endpoint_url="http://127.0.0.1:1"), CONFIG, "latest")


def test_zone_ids_of_another_region_are_refused_after_a_region_override():
    cfg = load_config("dev", CONFIG).model_copy(update={"region": "eu-west-1"})
    with pytest.raises(ConfigError, match=r"network\.zone_ids: use1-az1, use1-az2, use1-az4 are not zones of "
                                          r"eu-west-1 \(its zone ids start with euw1-\)"):
        preflight(cfg, Aws("eu-west-1", endpoint_url="http://127.0.0.1:1"), CONFIG)


@pytest.mark.parametrize("command", [["deploy", "staging", "--yes"], ["plan", "staging"],
                                     ["rollback", "staging", "--yes"]])
def test_deploy_plan_and_rollback_refuse_before_touching_aws(real_aws, command):
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == BAD_INPUT, result.output
    assert "staging.yaml: alb.certificate_arn:" in result.stderr and "Traceback" not in result.stderr
    assert real_aws.client("cloudformation").describe_stacks()["Stacks"] == []
    assert real_aws.client("s3").list_buckets()["Buckets"] == []  # not even the artifacts bucket


def test_the_config_keeps_one_subject_per_environment():
    subjects = {env: load_config(env, CONFIG).deploy.ci_subject for env in ("dev", "staging", "prod")}
    assert len(set(subjects.values())) == 3
    assert "ci_subject" not in (yaml.safe_load((CONFIG / "defaults.yaml").read_text())["deploy"])
