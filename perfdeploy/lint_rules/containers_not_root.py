from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy.lint_rules._containers import containers, init_containers, is_root
from perfdeploy.lint_rules._env import resources


class ContainersNotRoot(CloudFormationLintRule):
    """A process that breaks out of a root container is root on the host's view of the task. Only an init
    container (non-essential, awaited by another, no port) may run as root, to prepare volumes."""

    id = "E9109"
    shortdesc = "Containers run as a non-root user"
    description = "Every container of a task definition sets a non-root User, init containers excepted"
    source_url = "https://docs.aws.amazon.com/securityhub/latest/userguide/ecs-controls.html"
    tags = ["perfdeploy", "ecs"]

    def match(self, cfn):
        found = []
        for lid, rtype, props, _ in resources(cfn.template):
            if rtype != "AWS::ECS::TaskDefinition":
                continue
            inits = init_containers(props)
            for i, container in enumerate(containers(props)):
                if is_root(container) and container.get("Name") not in inits:
                    found.append(RuleMatch(["Resources", lid, "Properties", "ContainerDefinitions", i],
                                           f"{lid}: container {container.get('Name')} runs as root: set User to a "
                                           "non-root uid:gid"))
        return found
