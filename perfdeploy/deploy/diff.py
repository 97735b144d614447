"""What a change set changes inside a stack, property by property, like `cdk diff`.

Old and new values come from the deployed and the new template, each with its own parameter values put in
(the deployed ones, and the ones this deploy would pass); the change set's Details say which properties
CloudFormation will change, why (a property, a parameter, another resource), and whether that recreates the
resource (ResourceChangeDetail / ResourceTargetDefinition in the CloudFormation API reference). A value known
only after an upstream deploys is shown as such; values of NoEcho parameters and secret properties (those
cfn-lint's W1011 says should be dynamic references, and a secret's SecretString) are masked. Dynamic
references (`{{resolve:...}}`) are shown as written: they name a secret, they are not one.

The same reading tells which outputs can change (`changing_outputs`): an output is unknown before its stack
deploys only when the change set replaces a resource it Refs, modifies a resource it GetAtts, or the output's
own definition changes.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

MASK = "****"          # how CloudFormation itself shows a NoEcho value
ABSENT = None          # a property one side does not have

_SUB = re.compile(r"\$\{([^!}][^}]*)\}")
RECREATION_ORDER = {"": 0, "Never": 1, "Conditionally": 2, "Always": 3}


@dataclass(frozen=True)
class Side:
    """One side of the diff: a template and the parameter values it is (or would be) deployed with.
    `unknown` maps a parameter to what is shown instead of its value (`<known after X deploys>`)."""

    template: dict
    parameters: dict[str, str]
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def resources(self) -> dict:
        return self.template.get("Resources") or {}

    @property
    def outputs(self) -> dict:
        return self.template.get("Outputs") or {}

    @property
    def no_echo(self) -> frozenset[str]:
        declared = self.template.get("Parameters") or {}
        return frozenset(n for n, p in declared.items() if str((p or {}).get("NoEcho", "")).lower() == "true")

    def value(self, name: str) -> str | None:
        """A parameter's value as shown: masked, marked unknown, or itself (None when it is not one)."""
        if name in self.no_echo:
            return MASK
        if name in self.unknown:
            return self.unknown[name]
        return self.parameters.get(name)

    def resolve(self, node: Any) -> Any:
        """The fragment with parameter Refs (and ${Param} in Fn::Sub) replaced by their values; references
        to resources and pseudo parameters stay as written."""
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"} and self.value(node["Ref"]) is not None:
            return self.value(node["Ref"])
        if set(node) == {"Fn::Sub"}:
            text, names = (node["Fn::Sub"] + [{}])[:2] if isinstance(node["Fn::Sub"], list) else (node["Fn::Sub"], {})
            if isinstance(text, str):
                resolved = _SUB.sub(lambda m: self._sub_value(m.group(1), names), text)
                return resolved if not _SUB.search(resolved) else {"Fn::Sub": resolved}
        return {key: self.resolve(value) for key, value in node.items()}

    def _sub_value(self, name: str, names: dict) -> str:
        if name in names:
            resolved = self.resolve(names[name])
            return resolved if isinstance(resolved, str) else "${" + name + "}"
        value = self.value(name) if "." not in name else None
        return value if value is not None else "${" + name + "}"


def references(node: Any) -> tuple[set[str], set[str]]:
    """(names the fragment Refs, resources it GetAtts); ${Name} and ${Name.Attr} in Fn::Sub count too."""
    refs: set[str] = set()
    atts: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key, inner in value.items():
                if key == "Ref" and isinstance(inner, str):
                    refs.add(inner)
                elif key == "Fn::GetAtt":
                    atts.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
                elif key == "Fn::Sub":
                    text = inner[0] if isinstance(inner, list) else inner
                    for name in _SUB.findall(text if isinstance(text, str) else ""):
                        (atts if "." in name else refs).add(name.split(".")[0])
                    if isinstance(inner, list) and len(inner) > 1:
                        walk(inner[1])
                else:
                    walk(inner)

    walk(node)
    return refs, atts


# Property-level differences --------------------------------------------------------------------------------

def resource_diff(logical_id: str, old: Side, new: Side, details: list[dict]) -> list[dict]:
    """[{"path", "old", "new", "recreation", "cause"}] for one modified resource, in property order."""
    before, after = old.resources.get(logical_id) or {}, new.resources.get(logical_id) or {}
    rtype = after.get("Type") or before.get("Type", "")
    entries: list[dict] = []
    _walk(old.resolve(before.get("Properties") or {}), new.resolve(after.get("Properties") or {}), [], entries)
    by_property: dict[str, list[dict]] = {}
    for detail in details:
        target = detail.get("Target") or {}
        if target.get("Attribute") == "Properties" and target.get("Name"):
            by_property.setdefault(target["Name"], []).append(detail)
    for entry in entries:
        found = by_property.get(entry.pop("top"), [])
        entry["recreation"] = _worst(d["Target"].get("RequiresRecreation", "") for d in found)
        entry["cause"] = _causes(found)
    shown = {e["path"].split(".", 1)[0].split("[", 1)[0] for e in entries}
    for name, found in by_property.items():   # changed by another resource: known only after the deploy
        if name not in shown and any(d.get("Evaluation") == "Dynamic" for d in found):
            entries.append({"path": name, "old": _display(old.resolve((before.get("Properties") or {}).get(name))),
                            "new": "<known after this deploy>",
                            "recreation": _worst(d["Target"].get("RequiresRecreation", "") for d in found),
                            "cause": _causes(found)})
    for entry in entries:
        if _secret(rtype, entry["path"]):
            entry["old"] = MASK if entry["old"] is not ABSENT and not _dynamic_ref(entry["old"]) else entry["old"]
            entry["new"] = MASK if entry["new"] is not ABSENT and not _dynamic_ref(entry["new"]) else entry["new"]
    return entries


def tag_changes(old: dict[str, str], new: dict[str, str]) -> list[dict]:
    """[{"key", "old", "new"}] for the stack tags that differ (CloudFormation passes them to every resource)."""
    return [{"key": k, "old": old.get(k), "new": new.get(k)} for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]


def parameter_changes(old: Side, new: Side) -> list[dict]:
    """[{"name", "old", "new"}] for the parameters that differ, NoEcho ones masked."""
    names = sorted(set(old.parameters) | set(new.parameters) | set(new.unknown))
    return [{"name": n, "old": old.value(n), "new": new.value(n)} for n in names
            if n in new.unknown or old.parameters.get(n) != new.parameters.get(n)]


def _walk(old: Any, new: Any, path: list[str], out: list[dict]) -> None:
    if old == new:
        return
    if _document(old) is not None and _document(new) is not None:   # a policy, a dashboard body: as data
        old, new = _document(old), _document(new)
    if _is_tags(old) and _is_tags(new) or _is_tags(old) and new is ABSENT or old is ABSENT and _is_tags(new):
        old, new = _tags(old), _tags(new)
    if isinstance(old, dict) and isinstance(new, dict) and not _intrinsic(old) and not _intrinsic(new):
        for key in list(old) + [k for k in new if k not in old]:
            _walk(old.get(key, ABSENT), new.get(key, ABSENT), path + [key], out)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(a, b, path + [f"[{index}]"], out)
        return
    out.append({"path": _path(path), "old": _display(old), "new": _display(new), "top": path[0] if path else ""})


def _document(value: Any) -> Any:
    """A JSON object or array held in a string (or an Fn::Sub string), parsed; else None."""
    text = value.get("Fn::Sub") if isinstance(value, dict) and set(value) == {"Fn::Sub"} else value
    if not isinstance(text, str) or not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _path(parts: list[str]) -> str:
    text = ""
    for part in parts:
        text += part if part.startswith("[") or not text else f".{part}"
    return text


def _is_tags(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, dict) and set(t) == {"Key", "Value"}
                                                           for t in value)


def _tags(value: Any) -> dict:
    return {} if value is ABSENT else {t["Key"]: t["Value"] for t in value}


def _intrinsic(node: dict) -> bool:
    return len(node) == 1 and (next(iter(node)) == "Ref" or next(iter(node)).startswith("Fn::"))


def _display(value: Any) -> Any:
    """Scalars as they are; an unresolved reference in short form; anything larger as compact JSON."""
    if value is ABSENT or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict) and _intrinsic(value):
        (name, arg), = value.items()
        short = name.removeprefix("Fn::")
        if short == "GetAtt" and isinstance(arg, list):
            arg = ".".join(map(str, arg))
        return f"!{short} {arg if isinstance(arg, str) else json.dumps(arg, sort_keys=True)}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _worst(recreations) -> str:
    return max(recreations, key=lambda r: RECREATION_ORDER.get(r, 0), default="")


def _causes(details: list[dict]) -> str:
    causes = []
    for d in details:
        source, entity = d.get("ChangeSource", ""), d.get("CausingEntity", "")
        text = f"{source} {entity}".strip()
        if text and text not in causes:
            causes.append(text)
    return ", ".join(causes)


def _dynamic_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{{resolve:")


@cache
def _secret_paths() -> tuple[tuple[str, str], ...]:
    """(resource type, property path pattern) of the properties that hold secrets: cfn-lint's W1011 list
    (properties that should take a dynamic reference), plus a Secrets Manager secret's own value."""
    from cfnlint.rules.parameters.DynamicReferenceSecret import DynamicReferenceSecret

    found = [("AWS::SecretsManager::Secret", "SecretString")]
    for keyword in DynamicReferenceSecret().keywords:   # Resources/<Type>/Properties/<path with * for items>
        _, rtype, _, *path = keyword.split("/")
        found.append((rtype, ".".join(path)))
    return tuple(found)


def _secret(rtype: str, path: str) -> bool:
    plain = re.sub(r"\[\d+\]", ".*", path).replace("..", ".")
    return any(rtype == t and (plain == p or fnmatch.fnmatchcase(plain, p) or plain.startswith(p + "."))
               for t, p in _secret_paths())


# Outputs that can change -----------------------------------------------------------------------------------

def _tags_only(change: dict, old: Side, new: Side) -> bool:
    """A modification of the resource's tags and nothing else: CloudFormation's Scope says so, or (where a
    Tags property changed in the template) the properties that differ are the tags alone."""
    if change.get("Action") != "Modify" or change.get("Replacement") in ("True", "Conditional"):
        return False
    scope = set(change.get("Scope") or [])
    if scope == {"Tags"}:
        return True
    lid = change["LogicalResourceId"]
    named = {(d.get("Target") or {}).get("Name") for d in change.get("Details") or []
             if (d.get("Target") or {}).get("Attribute") == "Properties"}
    before = old.resolve((old.resources.get(lid) or {}).get("Properties") or {})
    after = new.resolve((new.resources.get(lid) or {}).get("Properties") or {})
    differing = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return scope <= {"Tags", "Properties"} and differing == {"Tags"} and named <= {"Tags", None}


def changing_outputs(old: Side, new: Side, changes: list[dict]) -> set[str]:
    """The outputs of `new` whose value may differ once the change set (raw ResourceChange dicts) executes:
    new or redefined outputs, outputs that Ref a replaced resource or GetAtt a modified one (a change of tags
    alone changes no attribute: it does not count). Resources that
    take a parameter whose value is not known yet count as replaced (their change set was made with today's
    value), and so does whatever refers to them."""
    modified = {c["LogicalResourceId"] for c in changes if c.get("Action") in ("Modify", "Dynamic")
                and not _tags_only(c, old, new)}
    replaced = {c["LogicalResourceId"] for c in changes
                if c.get("Action") == "Dynamic" or c.get("Replacement") in ("True", "Conditional")}
    tainted = set(new.unknown)
    grew = True
    while grew:   # resources reached from an unknown parameter, through references between resources
        grew = False
        for lid, resource in new.resources.items():
            if lid not in tainted and set().union(*references(resource)) & tainted:
                tainted.add(lid)
                grew = True
    tainted -= set(new.unknown)
    modified |= tainted
    replaced |= tainted
    unknown = set()
    for name, output in new.outputs.items():
        value = (output or {}).get("Value")
        refs, atts = references(value)
        previous = old.outputs.get(name)
        if previous is None or old.resolve(previous.get("Value")) != new.resolve(value) \
                or refs & replaced or atts & modified or refs & set(new.unknown):
            unknown.add(name)
    return unknown
