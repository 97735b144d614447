"""perfdeploy.template_loader reads templates exactly as cfn-flip's loader does (the loader perfdeploy used
before), only faster: every rendered template, short tags, JSON and dates."""

from __future__ import annotations

import json

import pytest
from cfn_flip import load as cfn_flip_load

from perfdeploy.config import load_config
from perfdeploy.render import render_env
from perfdeploy.template_loader import load


def cfn_flip_plain(body: str):
    return json.loads(json.dumps(cfn_flip_load(body)[0], default=str))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_rendered_template_reads_as_cfn_flip_reads_it(env):
    for stack in render_env(load_config(env)).stacks:
        assert load(stack.body) == cfn_flip_plain(stack.body), stack.key


def test_short_tags_become_long_form_intrinsics():
    body = """AWSTemplateFormatVersion: 2010-09-09
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Condition: IsProd
    Properties:
      TopicName: !Sub "${Env}-topic"
      KmsMasterKeyId: !GetAtt Key.Arn
      Tags: [{Key: a, Value: !Select [0, !Split [",", !Ref List]]}]
      DisplayName: !If [IsProd, !GetAtt [Key, KeyId], !Ref "AWS::NoValue"]
Outputs:
  X: {Value: !ImportValue other, Condition: IsProd}
"""
    data = load(body)
    assert data == cfn_flip_plain(body)
    assert data["AWSTemplateFormatVersion"] == "2010-09-09"
    props = data["Resources"]["Topic"]["Properties"]
    assert props["KmsMasterKeyId"] == {"Fn::GetAtt": ["Key", "Arn"]}
    assert props["DisplayName"]["Fn::If"][1] == {"Fn::GetAtt": ["Key", "KeyId"]}
    assert data["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Env"}, "prod"]}


def test_json_bodies_are_read_as_json():
    body = {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "2010-09-09"}}}}
    assert load(json.dumps(body)) == body


def test_the_document_kept_from_rendering_is_the_body_read_back():
    for env in ("dev", "prod"):
        rendered = render_env(load_config(env))
        assert all(s.document is not None for s in rendered.stacks)
        assert rendered.documents() == {s.key: load(s.body) for s in rendered.stacks}
