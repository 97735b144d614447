"""Preflight: before deploy, plan or rollback reaches a real AWS account, refuse config values it would reject.

The config ships with the documented placeholder account 123456789012 (the CI OIDC provider, staging's and
prod's certificates) so that every environment renders and deploys on the local emulator, whose account is
that same 123456789012. On a real account IAM and ACM reject them, and a failed iam stack takes ecs down
with it; so against a real endpoint perfdeploy stops first, naming the file and the field (exit 2):

- any config value holding the placeholder account;
- an OIDC provider, certificate or permissions boundary in another account (or partition) than the
  caller's (STS GetCallerIdentity), or a certificate in another region than the environment's (an ALB
  takes a certificate from its own region only).

"Against the emulator" means: the STS endpoint boto3 uses is a loopback address (127.0.0.0/8, ::1,
localhost), as `perfdeploy local`, `make demo` and the end-to-end tests use. Any other endpoint counts as
real AWS.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlparse

from perfdeploy.aws import Aws
from perfdeploy.aws_support import zone_id_prefix
from perfdeploy.config import EnvConfig, config_file
from perfdeploy.deploy.image import check_image_tag
from perfdeploy.errors import ConfigError

PLACEHOLDER_ACCOUNT = "123456789012"  # AWS's documented example account; also the emulator's (moto's)
# Config fields holding an ARN that must be in the caller's account: (field, what AWS says otherwise).
OWN_ACCOUNT_ARNS = {
    "deploy.ci_oidc_provider_arn": "IAM refuses a trust policy on an OIDC provider that does not exist in the account",
    "alb.certificate_arn": "the load balancer's listener takes a certificate of its own account only",
    "deploy.permissions_boundary_arn": "a permissions boundary is a policy of the role's own account",
}


def is_emulator(aws: Aws) -> bool:
    """True when boto3 talks to a loopback endpoint (the local emulator), whatever set it."""
    host = urlparse(aws.client("sts").meta.endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def preflight(cfg: EnvConfig, aws: Aws, config_dir: Path, image_tag: str | None = None) -> None:
    """Raise ConfigError (exit 2, file and field named) for input a real account would reject."""
    check_image_tag(image_tag)
    prefix = zone_id_prefix(cfg.region)
    foreign = [z for z in cfg.network.zones() if not z.startswith(f"{prefix}-")]
    if foreign:  # config checks this too, but --region overrides the region after validation
        raise _refusal(cfg, config_dir, "network.zone_ids", f"{', '.join(foreign)} are not zones of {cfg.region} "
                       f"(its zone ids start with {prefix}-): set network.zone_ids for that region")
    if is_emulator(aws):
        return
    for field, value in _strings(cfg.model_dump(exclude={"env"})):
        if PLACEHOLDER_ACCOUNT in value:
            raise _refusal(cfg, config_dir, field, f"{value} holds the documented placeholder account "
                           f"{PLACEHOLDER_ACCOUNT}; set your own value before deploying to AWS (placeholders work "
                           "against the local emulator only)")
    account = aws.account_id
    partition = aws.partition
    for field, why in OWN_ACCOUNT_ARNS.items():
        value = _get(cfg, field)
        if not value:
            continue
        parts = value.split(":")
        if parts[1] != partition or parts[4] != account:
            raise _refusal(cfg, config_dir, field, f"{value} is not in the caller's account {account} "
                           f"({partition}): {why}")
        if field == "alb.certificate_arn" and parts[3] != cfg.region:
            raise _refusal(cfg, config_dir, field, f"{value} is in {parts[3]}, the environment in {cfg.region}: "
                           "a load balancer takes a certificate from its own region only")


def _refusal(cfg: EnvConfig, config_dir: Path, field: str, message: str) -> ConfigError:
    return ConfigError(message, file=str(config_file(cfg.env, field, config_dir)), field=field)


def _get(cfg: EnvConfig, field: str) -> str | None:
    value: object = cfg
    for part in field.split("."):
        value = getattr(value, part)
    return value if isinstance(value, str) else None


def _strings(data: object, path: str = ""):
    """(dotted field, value) for every string in the config."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _strings(value, f"{path}.{i}")
    elif isinstance(data, str):
        yield path, data
