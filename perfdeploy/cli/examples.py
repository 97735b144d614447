"""An example for every command's --help, kept in one table so `perfdeploy --help` and the docs agree.

`attach` puts each command's example in its epilog; tests/test_help.py fails for a command without one.
"""

from __future__ import annotations

import click

EXAMPLES: dict[str, tuple[str, ...]] = {
    "perfdeploy": ("perfdeploy render dev", "perfdeploy plan staging", "perfdeploy deploy dev --yes",
                   "perfdeploy status prod --region eu-west-1",
                   "eval \"$(_PERFDEPLOY_COMPLETE=bash_source perfdeploy)\"   # completion"),
    "render": ("perfdeploy render dev staging prod", "perfdeploy render prod --out /tmp/out --no-lint"),
    "lint": ("perfdeploy lint dev staging prod", "perfdeploy lint prod --no-cache"),
    "graph": ("perfdeploy graph dev", "perfdeploy graph prod --format mermaid > docs/graph.mmd"),
    "deploy": ("perfdeploy deploy dev", "perfdeploy deploy prod --image-tag 1.4.2 --yes --json > deploy.json",
               "perfdeploy deploy staging --stack ecs --image-tag 1.4.2"),
    "plan": ("perfdeploy plan prod --image-tag 1.4.2",
             "perfdeploy plan staging --detailed-exitcode --json > plan.json"),
    "bootstrap": ("perfdeploy bootstrap prod",),
    "releases": ("perfdeploy releases prod", "perfdeploy releases prod --json | jq -r '.releases[-1].id'"),
    "rollback": ("perfdeploy rollback prod", "perfdeploy rollback prod --to RELEASE_ID --yes",
                 "perfdeploy rollback staging --skip-resource ecs/Service"),
    "status": ("perfdeploy status prod", "perfdeploy status prod --json"),
    "outputs": ("perfdeploy outputs dev", "perfdeploy outputs dev --json | jq -r '.stacks.registry.RepositoryUri'"),
    "destroy": ("perfdeploy destroy dev", "perfdeploy destroy dev --yes --json"),
    "drift": ("perfdeploy drift staging", "perfdeploy drift staging --json"),
    "cost": ("perfdeploy cost prod", "perfdeploy cost prod --lines",
             "perfdeploy cost dev --json | jq '.stacks[] | {key, monthly}'"),
    "local": ("perfdeploy local --port 5000", "perfdeploy local --verbose",
              "perfdeploy --endpoint-url http://127.0.0.1:5000 deploy dev --yes"),
    "local push-image": ("perfdeploy local push-image dev 0a1b2c3d4e5f --endpoint-url http://127.0.0.1:5000",
                         "perfdeploy deploy dev --image-tag 0a1b2c3d4e5f --endpoint-url http://127.0.0.1:5000"),
}


def epilog(lines: tuple[str, ...]) -> str:
    # \b keeps click from rewrapping the lines
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def attach(group: click.Group, name: str = "perfdeploy") -> None:
    """Give the group and each of its commands (and their subcommands, as "local push-image") its example,
    where it has none yet."""
    for path, command in [(name, group), *((f"{name} {sub}".removeprefix("perfdeploy "), cmd)
                                            for sub, cmd in group.commands.items())]:
        if path in EXAMPLES and not command.epilog:
            command.epilog = epilog(EXAMPLES[path])
        if isinstance(command, click.Group) and command is not group:
            attach(command, path)
