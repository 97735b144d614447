"""render: deterministic templates and a manifest the engine can deploy from; graph: derived from inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from troposphere import Output, Template

from perfdeploy.blueprints import all_blueprints
from perfdeploy.blueprints.base import Blueprint, Input
from perfdeploy.config import load_config
from perfdeploy.errors import GraphError
from perfdeploy.graph import dependencies, deploy_order
from perfdeploy.render import render_env, write

CONFIG = Path(__file__).parent.parent / "config"


@pytest.fixture(scope="module")
def rendered():
    return {env: render_env(load_config(env, CONFIG)) for env in ("dev", "staging", "prod")}


def test_rendering_twice_gives_the_same_bytes(rendered):
    again = render_env(load_config("prod", CONFIG))
    assert again.files() == rendered["prod"].files()


def test_the_manifest_lists_stacks_in_dependency_order_with_what_the_engine_needs(rendered):
    manifest = rendered["staging"].manifest
    assert (manifest["env"], manifest["region"]) == ("staging", "us-east-1")
    keys = [s["key"] for s in manifest["stacks"]]
    for stack in manifest["stacks"]:
        assert stack["stack_name"] == f"staging-performance-mgmt-{stack['key']}"
        assert stack["template"] == f"{stack['key']}.yaml"
        assert all(keys.index(up) < keys.index(stack["key"]) for up in stack["depends_on"])
        for value in stack["parameters"].values():
            if isinstance(value, dict) and "stack" in value:
                upstream = next(s for s in manifest["stacks"] if s["key"] == value["stack"])
                assert value["output"] in upstream["outputs"]
        assert stack["tags"]["ManagedBy"] == "perfdeploy"
        assert set(stack) >= {"sha256", "capabilities", "termination_protection", "stack_policy",
                              "rollback_triggers", "outputs"}


def test_network_takes_the_logs_key_from_security(rendered):
    network = next(s for s in rendered["dev"].manifest["stacks"] if s["key"] == "network")
    assert network["parameters"]["LogsKeyArn"] == {"stack": "security", "output": "LogsKeyArn"}
    assert network["capabilities"] == ["CAPABILITY_NAMED_IAM"]  # the flow-log role


def test_only_prod_gets_termination_protection_and_a_stack_policy(rendered):
    for env, r in rendered.items():
        for stack in r.manifest["stacks"]:
            assert stack["termination_protection"] is (env == "prod")
            assert (stack["stack_policy"] is not None) is (env == "prod" and bool(stack["stateful_resources"]))
    security = next(s for s in rendered["prod"].manifest["stacks"] if s["key"] == "security")
    deny = security["stack_policy"]["Statement"][1]
    assert deny["Effect"] == "Deny" and deny["Action"] == ["Update:Replace", "Update:Delete"]
    assert "LogicalResourceId/DataKey" in deny["Resource"]


def test_write_produces_templates_and_manifest_matching_the_sha(tmp_path, rendered):
    target = write(rendered["dev"], tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    import hashlib
    for stack in manifest["stacks"]:
        body = (target / stack["template"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == stack["sha256"]


class _Fake(Blueprint):
    description = "test"

    def __init__(self, key: str, inputs: dict[str, Input] | None = None, outputs: tuple[str, ...] = ("Out",)):
        self.key, self._inputs, self._outputs = key, inputs or {}, outputs

    def inputs(self, cfg):
        return self._inputs

    def build(self, cfg):
        t = Template()
        for name in self._outputs:
            t.add_output(Output(name, Value="x"))
        return t


def test_the_graph_comes_from_inputs_alone():
    cfg = load_config("dev", CONFIG)
    deps = dependencies(all_blueprints(), cfg)
    assert deps["network"] == {"security"}
    order = deploy_order(deps)
    assert order[0] == "security"


def test_a_cycle_is_a_clear_error():
    cfg = load_config("dev", CONFIG)
    fakes = {"a": _Fake("a", {"P": Input("b", "Out")}), "b": _Fake("b", {"P": Input("a", "Out")})}
    with pytest.raises(GraphError, match="cycle: (a -> b -> a|b -> a -> b)"):
        deploy_order(dependencies(fakes, cfg))


def test_an_input_naming_an_unknown_stack_is_a_clear_error():
    cfg = load_config("dev", CONFIG)
    with pytest.raises(GraphError, match="blueprints/a: P: input P names the unknown stack 'nope'"):
        dependencies({"a": _Fake("a", {"P": Input("nope", "Out")})}, cfg)


def test_an_input_naming_an_unknown_output_is_a_clear_error():
    cfg = load_config("dev", CONFIG)
    fakes = {"a": _Fake("a"), "b": _Fake("b", {"P": Input("a", "Missing")})}
    with pytest.raises(GraphError, match="output 'Missing' that the a stack does not have"):
        render_env(cfg, fakes)
