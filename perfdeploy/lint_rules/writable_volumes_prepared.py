from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._containers import WAITS_FOR, containers, init_containers, is_root
from perfdeploy.lint_rules._env import listify, resources

MANAGED_VOLUMES = ("EFSVolumeConfiguration", "DockerVolumeConfiguration", "FSxWindowsFileServerVolumeConfiguration",
                   "ConfiguredAtLaunch")


def bind_mounts(props: dict) -> set[str]:
    """Task volumes that are plain bind mounts (on Fargate: owned by root, mode 0755)."""
    return {v.get("Name") for v in listify(props.get("Volumes", [])) if isinstance(v, dict)
            and not any(k in v for k in MANAGED_VOLUMES)}


class WritableVolumesPrepared(CloudFormationLintRule):
    """Fargate creates bind-mount volumes owned by root with mode 0755: a non-root container cannot write
    them unless an init container that mounts them (and runs as root) has made them writable first."""

    id = "E9108"
    shortdesc = "Non-root containers can write their volumes"
    description = ("A non-root container that mounts a bind-mount volume writable waits (DependsOn SUCCESS) for "
                   "a non-essential root init container that mounts the same volume")
    source_url = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html"
    tags = ["perfdeploy", "ecs"]

    def match(self, cfn):
        found = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::ECS::TaskDefinition":
                continue
            binds, inits = bind_mounts(props), init_containers(props)
            by_name = {c.get("Name"): c for c in containers(props)}
            for i, container in enumerate(containers(props)):
                if is_root(container):
                    continue
                waits = {d.get("ContainerName") for d in listify(container.get("DependsOn", []))
                         if isinstance(d, dict) and d.get("Condition") in WAITS_FOR}
                for mount in listify(container.get("MountPoints", [])):
                    volume = mount.get("SourceVolume") if isinstance(mount, dict) else None
                    if volume not in binds or mount.get("ReadOnly") is True:
                        continue
                    preparers = [n for n in waits & inits if is_root(by_name[n]) and any(
                        isinstance(m, dict) and m.get("SourceVolume") == volume and m.get("ReadOnly") is not True
                        for m in listify(by_name[n].get("MountPoints", [])))]
                    if not preparers:
                        found.append(RuleMatch(
                            ["Resources", lid, "Properties", "ContainerDefinitions", i],
                            f"{lid}: container {container.get('Name')} runs as {container.get('User')} and writes "
                            f"the volume {volume}, which Fargate creates owned by root (0755): add a non-essential "
                            "init container that mounts it and makes it writable, and DependsOn it with SUCCESS"))
        return found
