"""Deploy timings against the local emulator: a first deploy of dev, a no-op deploy, and the AWS API calls
a no-op costs per stack. The emulator is fast, so this measures perfdeploy's own overhead, not AWS.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import collections
import json
import os
import time

import boto3
from click.testing import CliRunner

from perfdeploy.cli import cli
from perfdeploy.local import Emulator

calls: collections.Counter = collections.Counter()


def count_call(event_name: str, **kwargs) -> None:
    calls[event_name.split(".", 1)[1]] += 1  # before-call.cloudformation.DescribeStacks


def deploy(*args: str) -> tuple[float, dict]:
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["deploy", "dev", "--yes", "--json", *args], catch_exceptions=False)
    return time.perf_counter() - start, json.loads(result.stdout)


def main() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    boto3.DEFAULT_SESSION = None
    with Emulator() as url:
        os.environ["AWS_ENDPOINT_URL"] = url
        t_partial, _ = deploy("--stack", "security", "--stack", "registry")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                          "digest": "sha256:" + "0" * 64}, "layers": []})
        boto3.client("ecr", endpoint_url=url, region_name="us-east-1").put_image(
            repositoryName="dev-performance-mgmt-app", imageManifest=manifest, imageTag="bench")
        t_full, full = deploy("--image-tag", "bench")
        import botocore.session
        original = botocore.session.Session.create_client

        def counting_client(self, *args, **kwargs):
            client = original(self, *args, **kwargs)
            client.meta.events.register("before-call.*.*", count_call)
            return client
        botocore.session.Session.create_client = counting_client
        t_noop, noop = deploy()
    botocore.session.Session.create_client = original
    stacks = len(noop["stacks"])
    cfn_calls = sum(n for name, n in calls.items() if name.startswith("cloudformation."))
    print(f"first deploy, security+registry : {t_partial:5.2f} s")
    print(f"first deploy, all {len(full['stacks'])} stacks     : {t_full:5.2f} s "
          f"({sum(s['action'] == 'created' for s in full['stacks'])} created)")
    print(f"no-op deploy                     : {t_noop:5.2f} s, all {set(s['action'] for s in noop['stacks'])}")
    print(f"no-op API calls                  : {sum(calls.values())} in all, {cfn_calls} CloudFormation "
          f"({cfn_calls / stacks:.1f} per stack), change sets created: {calls['cloudformation.CreateChangeSet']}")
    for name, n in sorted(calls.items()):
        print(f"    {name:<40} {n}")


if __name__ == "__main__":
    main()
