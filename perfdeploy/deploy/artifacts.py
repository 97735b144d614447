"""The artifacts bucket `perfdeploy-{account}-{region}`: large templates (content-addressed) and releases.

Created by `perfdeploy bootstrap` or on first need: encrypted, versioned, public access blocked, TLS only.
"""

from __future__ import annotations

import hashlib
import json
import threading

from botocore.exceptions import ClientError

from perfdeploy.aws import Aws, error_code


class Artifacts:
    def __init__(self, aws: Aws):
        self.aws = aws
        self._ready = False
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        return f"perfdeploy-{self.aws.account_id}-{self.aws.region}"

    @property
    def s3(self):
        return self.aws.client("s3")

    def exists(self) -> bool:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
            return True
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise

    def ensure(self, harden: bool = False) -> str:
        """Create and harden the bucket if it does not exist yet (`harden` re-applies the settings to an
        existing one, as `perfdeploy bootstrap` does); return its name. One HeadBucket per run otherwise."""
        with self._lock:
            if self._ready and not harden:
                return self.bucket
            if not self.exists():
                kwargs: dict = {"Bucket": self.bucket}
                if self.aws.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.aws.region}
                self.s3.create_bucket(**kwargs)
                harden = True
            if harden:
                self._harden()
            self._ready = True
            return self.bucket

    def put_new(self, key: str, body: bytes) -> None:
        """PutObject with If-None-Match: * (PreconditionFailed when the key exists), the bucket made first
        only when S3 answers NoSuchBucket (404, https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html):
        one call where ensure() would first ask HeadBucket (a first deploy pays one call more: the refused put)."""
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucket":
                raise
            self.ensure()
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        with self._lock:
            self._ready = True  # it holds our object: it exists

    def _harden(self) -> None:
        bucket = self.bucket
        self.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
        self.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
        self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:{self.aws.partition}:s3:::{bucket}", f"arn:{self.aws.partition}:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))

    def put_template(self, env: str, key: str, body: str) -> str:
        """Upload a template under a content-addressed key (once) and return its TemplateURL."""
        self.ensure()
        digest = hashlib.sha256(body.encode()).hexdigest()
        object_key = f"templates/{env}/{key}/{digest}.yaml"
        try:
            self.s3.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError:
            self.s3.put_object(Bucket=self.bucket, Key=object_key, Body=body.encode())
        return self.url(object_key)

    def url(self, object_key: str) -> str:
        if self.aws.endpoint_url:  # an emulator resolves its own path-style URLs
            return f"{self.aws.endpoint_url.rstrip('/')}/{self.bucket}/{object_key}"
        # The region's partition decides the DNS suffix (amazonaws.com.cn in China), as botocore knows it.
        return f"https://{self.bucket}.s3.{self.aws.region}.{self.aws.dns_suffix}/{object_key}"
