"""A template body (JSON, or YAML with CloudFormation's short tags such as ``!Ref`` and ``!GetAtt A.B``) as
plain data, intrinsic functions in their long form (``{"Fn::GetAtt": ["A", "B"]}``): what cfn-flip's loader
gives, through libyaml's parser when PyYAML has it (about ten times faster than cfn-flip's pure-Python one;
a no-op plan and the cost estimate parse every template). Dates stay strings, as CloudFormation reads them
(``AWSTemplateFormatVersion: 2010-09-09``).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
UNPREFIXED = ("Ref", "Condition")  # the short tags that are not Fn::<name>


class _Loader(_BASE):  # type: ignore[misc, valid-type]
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = suffix if suffix in UNPREFIXED else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if name == "Fn::GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


_Loader.add_multi_constructor("!", _intrinsic)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load(body: str) -> Any:
    """The template as dicts, lists and scalars (JSON first, as cfn-flip does; else YAML)."""
    try:
        return json.loads(body)
    except ValueError:
        return yaml.load(body, Loader=_Loader)  # noqa: S506 - a SafeLoader (or CSafeLoader) subclass
