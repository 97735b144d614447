"""EnvConfig -> templates (YAML) + manifest.json: everything the deploy engine needs, so it never re-reads config.

Rendering is pure (same config, same bytes), so an environment whose config and renderer are unchanged is
read back from a small cache instead of being built again (the key: the validated config and a content hash
of the package's sources and the versions of the libraries that write the templates). Environments that
must be built are built across the machine's cores.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from perfdeploy.config import EnvConfig
from perfdeploy.errors import GraphError, RenderError

if TYPE_CHECKING:
    from troposphere import Template

    from perfdeploy.blueprints.base import Blueprint

MAX_INLINE_BYTES = 51_200      # larger templates go through the artifacts bucket
MAX_TEMPLATE_BYTES = 1_000_000  # CloudFormation's limit for a template in S3
MAX_RESOURCES, MAX_PARAMETERS, MAX_OUTPUTS = 500, 200, 200
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RenderedStack:
    key: str
    stack_name: str
    body: str
    manifest: dict
    # The template as data (what template_loader.load(body) gives), kept from rendering so that the cost
    # estimate and plan need not parse the body again; None when only the body is known (a release's).
    document: dict | None = field(default=None, repr=False, compare=False)

    @property
    def filename(self) -> str:
        return f"{self.key}.yaml"


@dataclass(frozen=True)
class Rendered:
    env: str
    region: str
    stacks: tuple[RenderedStack, ...]
    manifest: dict

    def stack(self, key: str) -> RenderedStack:
        return next(s for s in self.stacks if s.key == key)

    def templates(self) -> dict[str, str]:
        """Template path (env/key.yaml) -> body, for the lint gate."""
        return {f"{self.env}/{s.filename}": s.body for s in self.stacks}

    def documents(self) -> dict[str, dict]:
        """Stack key -> its template as data (kept from rendering; parsed from the body otherwise)."""
        from perfdeploy.template_loader import load

        return {s.key: s.document if s.document is not None else load(s.body) for s in self.stacks}

    def files(self) -> dict[str, str]:
        """File name -> content, as written to templates_out/<env>/."""
        out = {s.filename: s.body for s in self.stacks}
        out[MANIFEST] = json.dumps(self.manifest, indent=2) + "\n"
        return out


def render_env(cfg: EnvConfig, blueprints: dict[str, Blueprint] | None = None) -> Rendered:
    """Build every stack's template for one environment; same config, same bytes. With the package's own
    blueprints, an unchanged environment comes from the render cache."""
    if blueprints is not None:
        return _build(cfg, blueprints)
    cached = _cached(cfg)
    if cached is not None:
        return cached
    rendered = _render_fresh(cfg)
    _keep(cfg, rendered)
    return rendered


def render_envs(configs: list[EnvConfig], meanwhile: Callable[[], object] | None = None) -> list[Rendered]:
    """render_env for each config: cached ones read back, the others built across the cores. `meanwhile`
    runs here while forked workers render (the lint gate builds its rules then)."""
    found = {cfg.env: _cached(cfg) for cfg in configs}
    missing = [cfg for cfg in configs if found[cfg.env] is None]
    workers = min(len(missing), os.cpu_count() or 1)
    if workers > 1 and sys.platform == "linux":  # forked workers: nothing to import again
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = pool.map(_render_fresh, missing)  # submitted, so the workers exist: forking is done
            if meanwhile is not None:
                meanwhile()
            for cfg, rendered in zip(missing, results, strict=True):
                found[cfg.env] = rendered
                _keep(cfg, rendered)
    for cfg in missing:
        found[cfg.env] = found[cfg.env] or render_env(cfg)
    return [found[cfg.env] for cfg in configs]


def _render_fresh(cfg: EnvConfig) -> Rendered:
    from perfdeploy.blueprints import all_blueprints

    return _build(cfg, all_blueprints())


def _build(cfg: EnvConfig, blueprints: dict[str, Blueprint]) -> Rendered:
    from perfdeploy.graph import dependencies, deploy_order

    deps = dependencies(blueprints, cfg)
    order = deploy_order(deps)
    templates = {key: blueprints[key].build(cfg) for key in order}
    _check_inputs(blueprints, templates, cfg)
    stacks = tuple(_stack(cfg, blueprints[key], templates[key], deps[key]) for key in order)
    manifest = {
        "env": cfg.env,
        "region": cfg.region,
        "stacks": [s.manifest for s in stacks],
        # CloudFormation has no Kafka topic resource: the application creates these (see README).
        "kafka_topics": [t.model_dump() for t in cfg.kafka.topics],
    }
    return Rendered(cfg.env, cfg.region, stacks, manifest)


# The render cache ------------------------------------------------------------------------------------

# The libraries whose versions shape the bytes; cfn-lint's data decides the execution roles' actions
# (perfdeploy/iam_permissions.py reads its provider schemas and Policies.json).
RENDERERS = ("troposphere", "awacs", "cfn-flip", "PyYAML", "cfn-lint")


@cache
def _renderer_fingerprint() -> str:
    """Every source file of the package (blueprints, config, this module, the safety data they read) and the
    versions of the libraries that write the templates: a change to any of them renders anew."""
    h = hashlib.sha256()
    for name in RENDERERS:
        h.update(f"{name}={version(name)}\0".encode())
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _cache_file(cfg: EnvConfig) -> Path:
    from perfdeploy.lint import CACHE_ENV, DEFAULT_CACHE_DIR

    return Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE_DIR)) / f"render-{cfg.env}.json"


def _cache_key(cfg: EnvConfig) -> str:
    return hashlib.sha256(f"{_renderer_fingerprint()}\0{cfg.model_dump_json()}".encode()).hexdigest()


def _cached(cfg: EnvConfig) -> Rendered | None:
    """The environment as last rendered, when its config and the renderer are the same as then."""
    try:
        data = json.loads(_cache_file(cfg).read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != _cache_key(cfg):
        return None
    stacks = tuple(RenderedStack(**s) for s in data["stacks"])
    return Rendered(data["env"], data["region"], stacks, data["manifest"])


def _keep(cfg: EnvConfig, rendered: Rendered) -> None:
    """One entry per environment (the last render), replaced atomically; a cache that cannot be written
    only costs time."""
    path = _cache_file(cfg)
    data = {"key": _cache_key(cfg), "env": rendered.env, "region": rendered.region,
            "manifest": rendered.manifest, "stacks": [asdict(s) for s in rendered.stacks]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, path)
    except OSError:
        pass


def write(rendered: Rendered, out_dir: Path) -> Path:
    """Write templates_out/<env>/: only files whose bytes changed are rewritten; stale templates removed."""
    target = Path(out_dir) / rendered.env
    target.mkdir(parents=True, exist_ok=True)
    files = rendered.files()
    for stale in target.glob("*"):
        if stale.name not in files and stale.is_file():
            stale.unlink()
    for name, text in files.items():
        path = target / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return target


def _stack(cfg: EnvConfig, blueprint: Blueprint, template: Template, upstream: set[str]) -> RenderedStack:
    import cfn_flip

    from perfdeploy.blueprints.base import execution_role_name
    from perfdeploy.safety import STATEFUL_TYPES, stack_policy

    text = template.to_json()  # what Template.to_yaml converts: once for the body and once as data
    body = cfn_flip.to_yaml(text)
    size = len(body.encode())
    resources = template.resources
    if size > MAX_TEMPLATE_BYTES:
        raise RenderError(f"{blueprint.key}: template is {size:,} bytes, over CloudFormation's "
                          f"{MAX_TEMPLATE_BYTES:,}-byte limit; split the stack")
    for what, count, limit in (("resources", len(resources), MAX_RESOURCES),
                               ("parameters", len(template.parameters), MAX_PARAMETERS),
                               ("outputs", len(template.outputs), MAX_OUTPUTS)):
        if count > limit:
            raise RenderError(f"{blueprint.key}: {count} {what}, over CloudFormation's limit of {limit}")
    types = {r.resource_type for r in resources.values()}
    stateful_ids = [lid for lid, r in resources.items() if r.resource_type in STATEFUL_TYPES]
    parameters: dict[str, object] = {
        name: {"stack": item.stack, "output": item.output} for name, item in blueprint.inputs(cfg).items()
    }
    parameters.update({name: {"arg": a.name, "default": a.default} for name, a in blueprint.args(cfg).items()})
    triggered = blueprint.guarded_by_rollback_trigger and cfg.monitoring.rollback_trigger_minutes > 0
    manifest = {
        "key": blueprint.key,
        "stack_name": cfg.stack_name(blueprint.key),
        "template": f"{blueprint.key}.yaml",
        "sha256": hashlib.sha256(body.encode()).hexdigest(),
        "bytes": size,
        "depends_on": sorted(upstream),
        "parameters": parameters,
        "outputs": sorted(template.outputs),
        "tags": cfg.tags,
        "capabilities": ["CAPABILITY_NAMED_IAM"] if any(t.startswith("AWS::IAM::") for t in types) else [],
        "termination_protection": cfg.deploy.termination_protection,
        "execution_role": execution_role_name(cfg, blueprint.key),  # with deploy --execution-roles
        "stack_policy": stack_policy(stateful_ids) if cfg.prod and stateful_ids else None,
        "stateful_resources": sorted(stateful_ids),
        "rollback_triggers": [{"stack": "monitoring", "output": "ServiceUnhealthyAlarmArn"}] if triggered else [],
        "rollback_monitoring_minutes": cfg.monitoring.rollback_trigger_minutes if triggered else 0,
    }
    if (rollout := blueprint.rollout(cfg)) is not None:  # the ECS deployment the engine follows (rollout.py)
        manifest["rollout"] = rollout
    return RenderedStack(blueprint.key, manifest["stack_name"], body, manifest, json.loads(text))


def _check_inputs(blueprints: dict[str, Blueprint], templates: dict[str, Template], cfg: EnvConfig) -> None:
    for key, blueprint in blueprints.items():
        for name, item in blueprint.inputs(cfg).items():
            if item.output not in templates[item.stack].outputs:
                known = ", ".join(sorted(templates[item.stack].outputs))
                raise GraphError(f"input {name} names the output '{item.output}' that the {item.stack} stack "
                                 f"does not have (it has: {known})", file=f"blueprints/{key}", field=name)
