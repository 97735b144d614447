"""Tags: config's `tags:` sit next to the house tags on every stack and on every resource AWS lets us tag.

Which resources are taggable, and through which property, comes from AWS's own resource provider schemas
(cfn-lint ships them): `tagging.taggable` and `tagging.tagProperty`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cfnlint.decode import decode_str
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from perfdeploy.config import ENVIRONMENTS, load_config
from perfdeploy.render import render_env

CONFIG = Path(__file__).parent.parent / "config"
CUSTOM = {"Team": "performance", "DataClass": "internal/hr:reviews"}


@pytest.fixture
def tagged_config(tmp_path: Path) -> Path:
    for path in CONFIG.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    with (tmp_path / "defaults.yaml").open("a") as defaults:
        defaults.write("tags:\n" + "".join(f"  {k}: {v}\n" for k, v in CUSTOM.items()))
    return tmp_path


def tag_keys(value) -> set[str]:
    """Keys of a Tags property: a Key/Value list (most types) or a map (MSK, SSM, ...)."""
    return {t["Key"] for t in value} if isinstance(value, list) else set(value)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_taggable_resource_carries_the_house_tags_and_the_configured_ones(tagged_config, env):
    cfg = load_config(env, tagged_config)
    assert set(CUSTOM) < set(cfg.tags) and {"Environment", "Service", "ManagedBy", "CostCenter"} < set(cfg.tags)
    checked, untagged = 0, []
    for stack in render_env(cfg).stacks:
        template, _ = decode_str(stack.body)
        for logical_id, resource in template["Resources"].items():
            tagging = PROVIDER_SCHEMA_MANAGER.get_resource_schema(cfg.region, resource["Type"]).schema.get(
                "tagging", {})
            if not tagging.get("taggable"):
                continue
            prop = tagging.get("tagProperty", "/properties/Tags").rsplit("/", 1)[1]
            checked += 1
            if not set(cfg.tags) <= tag_keys(resource.get("Properties", {}).get(prop, [])):
                untagged.append(f"{stack.key}/{logical_id} ({resource['Type']})")
    assert checked > 50 and untagged == []


def test_every_stack_is_tagged_with_the_configured_tags_too(tagged_config):
    manifest = render_env(load_config("prod", tagged_config)).manifest
    assert all(stack["tags"] == {"Environment": "prod", "Service": "performance-mgmt", "ManagedBy": "perfdeploy",
                                 "CostCenter": "performance-platform", **CUSTOM} for stack in manifest["stacks"])
