"""The blueprint: one stack, its inputs from upstream stacks, and a pure build(cfg) -> Template.

A blueprint module defines a Blueprint subclass and a module-level ``BLUEPRINT`` instance; the package
discovers them (no hand-kept list). Inputs become CloudFormation Parameters; the deploy engine fills
them from the named upstream stack's outputs. No Fn::ImportValue: exports lock upstream stacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from troposphere import AWSObject, Output, Parameter, Ref, Tags, Template
from troposphere.logs import LogGroup

from perfdeploy.config import EnvConfig
from perfdeploy.safety import protect

# CloudFormation parameter types for chained list values: AWS validates that the ids exist.
SUBNET_IDS = "List<AWS::EC2::Subnet::Id>"
SECURITY_GROUP_ID = "AWS::EC2::SecurityGroup::Id"
VPC_ID = "AWS::EC2::VPC::Id"


@dataclass(frozen=True)
class Input:
    """A template parameter filled at deploy time from an upstream stack's output."""

    stack: str
    output: str
    type: str = "String"


@dataclass(frozen=True)
class Arg:
    """A template parameter filled from a deploy-time argument (e.g. ``--image-tag``)."""

    name: str
    default: str | None  # None: no default, the argument must be given when the stack is created
    description: str = ""


class Blueprint:
    """One stack. Subclasses set ``key`` and implement ``build``; ``inputs``/``args`` when they take any."""

    key: ClassVar[str]
    description: ClassVar[str]
    # alb and ecs updates are guarded by the monitoring stack's composite alarm (issue 10).
    guarded_by_rollback_trigger: ClassVar[bool] = False

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        """Parameter name -> the upstream stack output it is chained from."""
        return {}

    def args(self, cfg: EnvConfig) -> dict[str, Arg]:
        """Parameter name -> the deploy-time argument that fills it."""
        return {}

    def build(self, cfg: EnvConfig) -> Template:
        """The stack's template: pure and deterministic (same config, same bytes)."""
        raise NotImplementedError

    def rollout(self, cfg: EnvConfig) -> dict | None:
        """The ECS service whose deployment the engine follows after this stack changes (ecs only)."""
        return None

    # Shared building blocks -------------------------------------------------------------------

    def template(self, cfg: EnvConfig) -> Template:
        """A template with description, metadata and one Parameter per input and argument."""
        t = Template(Description=f"{cfg.service} {self.key} ({cfg.env}): {self.description}")
        t.set_version("2010-09-09")
        # The lint gate's house rules read the environment from here.
        t.set_metadata({"perfdeploy": {"env": cfg.env, "stack": self.key, "stateful": cfg.stateful}})
        for name, item in self.inputs(cfg).items():
            t.add_parameter(Parameter(name, Type=item.type,
                                      Description=f"{item.output} of the {item.stack} stack"))
        for name, arg in self.args(cfg).items():
            extra = {"Default": arg.default} if arg.default is not None else {}
            t.add_parameter(Parameter(name, Type="String", **extra,
                                      Description=arg.description or f"deploy-time argument {arg.name}"))
        return t


def tags(cfg: EnvConfig, name: str | None = None, **extra: str) -> Tags:
    """The tags every taggable resource carries (plus Name where given)."""
    values = dict(cfg.tags)
    if name:
        values["Name"] = name
    values.update(extra)
    return Tags(**values)


def tag_list(cfg: EnvConfig, name: str | None = None) -> list[dict[str, str]]:
    """Tags as a plain Key/Value list, for resources whose Tags property is not a Tags object."""
    return tags(cfg, name).to_dict()


def tag_map(cfg: EnvConfig, name: str | None = None) -> dict[str, str]:
    """Tags as a map, for resource types (MSK, SSM, Backup...) that take Tags as a JSON object."""
    values = dict(cfg.tags)
    if name:
        values["Name"] = name
    return values


def stateful(resource: AWSObject, cfg: EnvConfig) -> AWSObject:
    """Mark a stateful resource with the environment's retention policies (see perfdeploy.safety)."""
    return protect(resource, cfg.stateful)


def log_group(cfg: EnvConfig, title: str, name: str, retention_days: int | None = None) -> LogGroup:
    """A log group the stack owns: encrypted with the logs key (the stack's LogsKeyArn input), with
    retention (the environment's unless given), retained in staging/prod."""
    return stateful(LogGroup(title, LogGroupName=name, RetentionInDays=retention_days or cfg.logs.retention_days,
                             KmsKeyId=param("LogsKeyArn"), Tags=tags(cfg)), cfg)


def output(t: Template, name: str, value: object, description: str) -> None:
    """Add an output; every output is a plain string a consumer's parameter can take."""
    t.add_output(Output(name, Value=value, Description=description))


def execution_role_name(cfg: EnvConfig, key: str) -> str:
    """The role CloudFormation assumes to change the resources of stack ``key`` (in the iam stack)."""
    return cfg.resource_name(f"{key}-cfn")


def param(name: str) -> Ref:
    """A reference to one of the template's input or argument parameters."""
    return Ref(name)
