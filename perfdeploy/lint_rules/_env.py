"""What the house rules need to know about a template: its environment, from the blueprint's Metadata."""

from __future__ import annotations


def is_stateful_env(template: dict) -> bool:
    """True for staging/prod templates (the blueprint base writes Metadata.perfdeploy.stateful)."""
    return bool(template.get("Metadata", {}).get("perfdeploy", {}).get("stateful", False))


def resources(template: dict):
    """(logical id, type, properties, resource) for every resource."""
    for lid, res in template.get("Resources", {}).items():
        if isinstance(res, dict):
            yield lid, res.get("Type", ""), res.get("Properties", {}) or {}, res


def env_of(template: dict) -> str:
    """The template's environment (dev, staging, prod) from Metadata.perfdeploy.env; "" when not ours."""
    return str(template.get("Metadata", {}).get("perfdeploy", {}).get("env", ""))


def listify(value) -> list:
    return value if isinstance(value, list) else [value]


def ref_name(value) -> str | None:
    """The logical id a Ref or Fn::GetAtt names (None for anything else)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).split(".")[0]
    return None


def sub_strings(node, path=()):
    """(path, text) for every string a template builds with Fn::Sub or Fn::Join."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if isinstance(text, str):
                    yield [*path, key], text
            elif key == "Fn::Join" and isinstance(value, list) and len(value) == 2:
                parts = [p for p in listify(value[1]) if isinstance(p, str)]
                yield [*path, key], str(value[0]).join(parts)
            yield from sub_strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from sub_strings(value, (*path, i))
