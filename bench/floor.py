"""The floor of a no-op deploy: a bare boto3 script making the calls perfdeploy's no-op makes (who am I, the
environment's lock taken and released in the artifacts bucket, the last release's record, a describe per stack,
four at a time like perfdeploy's default concurrency) and nothing else. Run as a fresh process, as perfdeploy is.

    python bench/floor.py ENV STACK_NAME...
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import boto3


def main(env: str, names: list[str]) -> None:
    session = boto3.Session()
    account = session.client("sts").get_caller_identity()["Account"]
    s3, cfn = session.client("s3"), session.client("cloudformation")
    bucket = f"perfdeploy-{account}-{session.region_name}"
    s3.put_object(Bucket=bucket, Key=f"locks/{env}.json", Body=b"{}", IfNoneMatch="*")
    s3.get_object(Bucket=bucket, Key=f"deployed/{env}.json")["Body"].read()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda name: cfn.describe_stacks(StackName=name), names))
    s3.delete_object(Bucket=bucket, Key=f"locks/{env}.json")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
