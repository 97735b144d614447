"""`perfdeploy local`: run the local AWS emulator in the foreground; `perfdeploy local push-image`.

moto is imported only when the command runs: it is an optional extra and slow to import, and every
perfdeploy command imports the CLI module this command is registered in.
"""

from __future__ import annotations

import importlib.util
import signal

import click
from botocore.exceptions import ClientError

from perfdeploy.cli.shared import EnvCommand, aws_for, aws_options, env_config
from perfdeploy.errors import UsageError

HELP = """Run a local AWS emulator for trying and testing perfdeploy, with no AWS account.

It is moto's server with the gaps perfdeploy relies on filled: outputs recomputed after a change set,
change sets dropped once one executes, placeholders (stable, fake Ref/GetAtt values) for the resource types
moto lacks (MSK, ElastiCache, Secrets Manager, alarms, X-Ray, ...), loud failure for types it does not
know. Nothing is created in AWS. A stack that deploys here says nothing about whether it deploys on AWS:
it is a tool for trying and testing, never a claim about AWS.

State lives in memory and is lost when the emulator stops. Stop it with Ctrl-C.
"""


def usage(url: str) -> str:
    return (f"Local AWS emulator (moto + perfdeploy's fixes) listening on {url}\n"
            "Use it from another shell:\n"
            f"  export AWS_ENDPOINT_URL={url}\n"
            "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1\n"
            "  perfdeploy deploy dev --yes\n"
            "(or pass --endpoint-url). Credentials are dummies; nothing reaches AWS. Ctrl-C stops it and "
            "forgets everything.")


@click.group("local", help=HELP, short_help="Run a local AWS emulator for trying and testing (not AWS).",
             invoke_without_command=True)
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; keep the loopback address unless you know why.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr (quiet by default).")
@click.pass_context
def local(ctx: click.Context, port: int, host: str, verbose: bool) -> None:
    if ctx.invoked_subcommand is not None:
        return
    _need_moto()
    from perfdeploy.local.server import serve

    try:
        serve(port=port, host=host, ready=_announce, verbose=verbose)  # returns on Ctrl-C or SIGTERM
    except OSError as exc:  # the port is taken, or the address cannot be bound
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        pass
    click.echo("emulator stopped", err=True)


@local.command("push-image", cls=EnvCommand)
@click.argument("env")
@click.argument("tag")
@aws_options
@click.pass_context
def push_image(ctx: click.Context, env: str, tag: str) -> None:
    """Register an image TAG in the emulator's repository of ENV (deployed registry stack), as docker push
    would; then deploy it with --image-tag TAG. Only against the local emulator: there is no image behind it.
    """
    from perfdeploy.deploy.image import check_image_tag
    from perfdeploy.local.images import is_emulator, push_placeholder_image

    check_image_tag(tag)
    cfg = env_config(ctx, env)
    aws = aws_for(ctx, cfg)
    endpoint = ctx.obj.get("endpoint_url")
    if not is_emulator(endpoint):
        raise UsageError(f"push-image registers a placeholder image, so it works only against the local emulator "
                         f"(perfdeploy local); the endpoint is {endpoint or 'AWS'}. On AWS, docker push the image",
                         field="--endpoint-url")
    stack = cfg.stack_name("registry")
    try:
        found = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise UsageError(f"the registry stack {stack} is not deployed: perfdeploy deploy {env} --stack registry "
                         "first") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs") or []}
    repository = outputs.get("RepositoryName")
    if not repository:
        raise UsageError(f"the registry stack {stack} has no RepositoryName output ({found['StackStatus']})")
    digest = push_placeholder_image(aws.client("ecr"), repository, tag)
    click.echo(f"{outputs.get('RepositoryUri', repository)}:{tag}")
    click.echo(f"pushed placeholder image {repository}:{tag} ({digest}) to the local emulator; deploy it "
               f"with: perfdeploy deploy {env} --image-tag {tag}", err=True)


def _need_moto() -> None:
    if importlib.util.find_spec("moto") is None:
        raise UsageError("the local emulator needs moto: pip install 'perfdeploy[local]'")


def _announce(url: str) -> None:
    """The bare URL on stdout for scripts (``perfdeploy local --port 0 > url``), how to use it on stderr."""
    signal.signal(signal.SIGTERM, _interrupt)  # a background emulator stopped by SIGTERM stops as on Ctrl-C
    click.echo(url)
    click.echo(usage(url), err=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
