"""`make demo`: the whole dev environment deployed against the local emulator, no AWS account needed.

Starts the emulator on a free loopback port, deploys the image repository, pushes a placeholder image,
deploys dev, shows status and outputs, deploys again (every stack unchanged), and stops the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys

import boto3

DEMO_TAG = "demo"


def perfdeploy(*args: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "perfdeploy", *args]
    print(f"\n$ perfdeploy {' '.join(args)}", file=sys.stderr, flush=True)
    subprocess.run(command, env=env, check=True)


def push_placeholder_image(endpoint: str, repository: str) -> None:
    """Stand-in for `docker push` (what `perfdeploy local push-image` does)."""
    from perfdeploy.local.images import push_placeholder_image as push

    push(boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1"), repository, DEMO_TAG)
    print(f"\npushed placeholder image {repository}:{DEMO_TAG}", file=sys.stderr)


def main() -> int:
    from perfdeploy.local import Emulator

    with Emulator() as url:
        env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        env.pop("AWS_PROFILE", None)
        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        print(f"local AWS emulator at {url}", file=sys.stderr)
        # A new environment's first deploy: the repository first, then the image, then everything.
        perfdeploy("deploy", "dev", "--yes", "--stack", "security", "--stack", "registry", env=env)
        cfn = boto3.client("cloudformation", endpoint_url=url, region_name="us-east-1")
        outputs = cfn.describe_stacks(StackName="dev-performance-mgmt-registry")["Stacks"][0]["Outputs"]
        repository = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "RepositoryName")
        push_placeholder_image(url, repository)
        perfdeploy("deploy", "dev", "--yes", "--image-tag", DEMO_TAG, env=env)
        perfdeploy("status", "dev", env=env)
        perfdeploy("outputs", "dev", env=env)
        perfdeploy("deploy", "dev", "--yes", "--image-tag", DEMO_TAG, env=env)  # a no-op: all unchanged
    print("\ndemo done: the emulator is stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
