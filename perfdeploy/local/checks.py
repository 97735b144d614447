"""What CloudFormation checks before it accepts a template, and moto does not: resource types it knows,
capabilities, parameter values (present, declared, and for AWS-specific types, existing)."""

from __future__ import annotations

import functools
import pickle
from typing import Any
from urllib.parse import unquote, urlparse

import yaml
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import CloudFormationError, ValidationError
from moto.ec2.models import ec2_backends
from moto.s3.models import s3_backends

from perfdeploy import template_loader

IAM_TYPES = {
    "AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName", "AWS::IAM::InstanceProfile": "InstanceProfileName", "AWS::IAM::Policy": "",
    "AWS::IAM::AccessKey": "", "AWS::IAM::UserToGroupAddition": "", "AWS::IAM::RolePolicy": "",
}


class InsufficientCapabilities(CloudFormationError):
    code = "InsufficientCapabilitiesException"


def parse_template(body: str) -> dict[str, Any]:
    """A template body (JSON, or YAML with short-form tags) as data, a fresh copy each call (moto changes what
    it is given); a clear error when it is neither. The emulator's one parser: moto's stacks and change sets
    read templates through it too (stacks.apply, changesets.apply).

    A create reads the same body three times (the checks, the change set, the stack) and a no-op change set
    twice more: each distinct body is parsed once, through perfdeploy's template loader (libyaml, intrinsic
    functions in their long form, ``!GetAtt A.B.C`` as ["A", "B.C"] as CloudFormation reads it), and kept
    pickled; unpickling a copy takes a fraction of a millisecond where parsing took ~20 ms (moto's pure-Python
    loader ~60 ms)."""
    return pickle.loads(_parsed(body))  # noqa: S301 - bytes this module pickled itself


@functools.lru_cache(maxsize=128)
def _parsed(body: str) -> bytes:
    try:
        template = template_loader.load(body)
    except yaml.YAMLError as exc:
        raise ValidationError(message=f"Template format error: not YAML or JSON ({exc})") from exc
    if not isinstance(template, dict):
        raise ValidationError(message="Template format error: the template is not a YAML or JSON object")
    return pickle.dumps(template)


def template_from_url(template_url: str, account_id: str, partition: str) -> str:
    """Read a TemplateURL from the emulator's own S3.

    moto reads http://127.0.0.1:PORT/bucket/key as bucket "127" (it expects only "localhost" in path-style
    addresses); every address that is not a virtual-hosted AWS one is path-style here.
    """
    url = urlparse(template_url)
    host = url.hostname or ""
    path = unquote(url.path.lstrip("/"))
    if host.endswith("amazonaws.com") and not host.startswith("s3"):
        bucket, key = host.split(".s3")[0], path
    else:
        bucket, _, key = path.partition("/")
    try:
        return s3_backends[account_id][partition].get_object(bucket, key).value.decode("utf-8")
    except Exception as exc:
        raise ValidationError(message=f"TemplateURL {template_url}: no such object in the emulator's S3 "
                                      f"(bucket {bucket!r}, key {key!r})") from exc


def unknown_types(template: dict[str, Any]) -> list[str]:
    """Resource types the emulator can create neither natively nor as a placeholder."""
    known = parsing.get_model_map()
    types = {r.get("Type", "") for r in (template.get("Resources") or {}).values()}
    return sorted(t for t in types if t not in known and t not in parsing.NULL_MODELS
                  and not t.startswith("Custom::"))


def check_resource_types(template: dict[str, Any], region: str) -> None:
    unknown = unknown_types(template)
    if not unknown:
        return
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    from cfnlint.schema._exceptions import ResourceNotFoundError

    unrecognized = []
    for resource_type in unknown:
        try:
            PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type)
        except ResourceNotFoundError:
            unrecognized.append(resource_type)
    if unrecognized:  # what AWS itself answers
        raise ValidationError(
            message=f"Template format error: Unrecognized resource types: [{', '.join(unrecognized)}]")
    raise ValidationError(message=f"The local emulator cannot create resource types [{', '.join(unknown)}]: "
                                  "teach it in perfdeploy/local/placeholders.py")


def check_capabilities(template: dict[str, Any], capabilities: list[str]) -> None:
    """AWS refuses IAM resources without CAPABILITY_IAM, and named ones without CAPABILITY_NAMED_IAM."""
    needed = None
    for resource in (template.get("Resources") or {}).values():
        name_property = IAM_TYPES.get(resource.get("Type", ""))
        if name_property is None:
            continue
        if name_property and name_property in (resource.get("Properties") or {}):
            needed = "CAPABILITY_NAMED_IAM"
            break
        needed = "CAPABILITY_IAM"
    if needed is None or "CAPABILITY_NAMED_IAM" in capabilities or needed in capabilities:
        return
    raise InsufficientCapabilities(f"Requires capabilities : [{needed}]")


def check_parameters(template: dict[str, Any], parameters: dict[str, str], account_id: str, region: str) -> None:
    """Every declared parameter has a value, none is undeclared, and EC2 ids name things that exist."""
    declared = template.get("Parameters") or {}
    undeclared = sorted(set(parameters) - set(declared))
    if undeclared:
        raise ValidationError(message=f"Parameters: [{', '.join(undeclared)}] do not exist in the template")
    missing = sorted(n for n, p in declared.items() if n not in parameters and "Default" not in p)
    if missing:
        raise ValidationError(message=f"Parameters: [{', '.join(missing)}] must have values")
    ec2 = ec2_backends[account_id][region]
    exists = {
        "AWS::EC2::VPC::Id": lambda v: v in ec2.vpcs,
        "AWS::EC2::Subnet::Id": lambda v: any(v in zone for zone in ec2.subnets.values()),
        "AWS::EC2::SecurityGroup::Id": lambda v: ec2.get_security_group_from_id(v) is not None,
    }
    for name, value in parameters.items():
        kind = str(declared[name].get("Type", "String"))
        many = kind.startswith("List<")
        check = exists.get(kind[5:-1] if many else kind)
        if check is None:
            continue
        for item in (str(value).split(",") if many else [str(value)]):
            if not check(item.strip()):
                raise ValidationError(message=f"Parameter validation failed: parameter value {item.strip()} for "
                                              f"parameter name {name} does not exist")


def check_template(template: dict[str, Any], parameters: dict[str, str], capabilities: list[str],
                   account_id: str, region: str) -> None:
    """Everything CloudFormation validates before it creates a change set or starts a stack operation."""
    if not template.get("Resources"):
        raise ValidationError(message="Template format error: At least one Resources member must be defined.")
    check_resource_types(template, region)
    check_capabilities(template, capabilities)
    check_parameters(template, parameters, account_id, region)
