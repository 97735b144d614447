"""What the container rules need: a task definition's containers, who runs as root, which are init containers."""

from __future__ import annotations

from perfdeploy.lint_rules._env import listify

ROOT = {"", "0", "root"}
WAITS_FOR = {"SUCCESS", "COMPLETE"}


def containers(props: dict) -> list[dict]:
    return [c for c in listify(props.get("ContainerDefinitions", [])) if isinstance(c, dict)]


def is_root(container: dict) -> bool:
    """No User (the image's, root by default) or user 0/root."""
    user = container.get("User", "")
    return isinstance(user, str) and user.split(":")[0] in ROOT


def init_containers(props: dict) -> set[str]:
    """Non-essential containers another container waits for (SUCCESS/COMPLETE) and that serve no port."""
    waited = {d.get("ContainerName") for c in containers(props) for d in listify(c.get("DependsOn", []))
              if isinstance(d, dict) and d.get("Condition") in WAITS_FOR}
    return {c.get("Name") for c in containers(props)
            if c.get("Name") in waited and c.get("Essential") is False and not c.get("PortMappings")}
