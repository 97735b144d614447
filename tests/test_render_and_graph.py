"""render: deterministic templates and a manifest the engine can deploy from; graph: derived from inputs."""

from __future__ import annotations

import json
import os
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


# The render cache: an unchanged environment is read back, anything that could change the bytes renders anew --

def test_an_unchanged_environment_is_read_back_from_the_render_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(tmp_path))
    cfg = load_config("staging", CONFIG)
    first = render_env(cfg)
    monkeypatch.setattr("perfdeploy.render._render_fresh", lambda cfg: pytest.fail("rendered again"))
    again = render_env(load_config("staging", CONFIG))
    assert again.files() == first.files() == render_env(cfg, all_blueprints()).files()
    assert again.manifest == first.manifest


def test_a_changed_config_or_renderer_renders_anew(tmp_path, monkeypatch):
    import perfdeploy.render as render_module

    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(tmp_path))
    cfg = load_config("dev", CONFIG)
    render_env(cfg)
    built = []
    real = render_module._render_fresh
    monkeypatch.setattr(render_module, "_render_fresh", lambda cfg: built.append(cfg.region) or real(cfg))
    moved = cfg.model_copy(update={"region": "us-west-2"})
    assert render_env(moved).region == "us-west-2"
    monkeypatch.setattr(render_module, "_renderer_fingerprint", lambda: "a blueprint was edited")
    assert render_env(moved).region == "us-west-2"
    assert built == ["us-west-2", "us-west-2"]


def test_render_fingerprint_follows_every_source_file_and_the_template_libraries(monkeypatch):
    import perfdeploy.render as render_module

    before = render_module._renderer_fingerprint()
    render_module._renderer_fingerprint.cache_clear()
    monkeypatch.setattr(render_module, "version", lambda name: "9.9" if name == "troposphere" else "1")
    try:
        assert render_module._renderer_fingerprint() != before
    finally:
        render_module._renderer_fingerprint.cache_clear()


def test_several_environments_rendered_across_cores_match_one_by_one(tmp_path, monkeypatch):
    from perfdeploy.render import render_envs

    monkeypatch.setenv("PERFDEPLOY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    configs = [load_config(env, CONFIG) for env in ("dev", "staging", "prod")]
    meanwhile = []
    together = render_envs(configs, meanwhile=lambda: meanwhile.append(os.getpid()))
    assert meanwhile == [os.getpid()]  # the lint gate's rules get built here, while the workers render
    assert [r.env for r in together] == ["dev", "staging", "prod"]
    for cfg, rendered in zip(configs, together, strict=True):
        assert rendered.files() == render_env(cfg, all_blueprints()).files()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["render-dev.json", "render-prod.json",
                                                          "render-staging.json"]
