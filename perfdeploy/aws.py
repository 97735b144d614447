"""The one boto3 session/client factory: region, profile, endpoint and one retry configuration for all clients.

Clients are created once per service per run and shared across the engine's threads (boto3 clients are
thread-safe; sessions are not, so clients are created under a lock).
"""

from __future__ import annotations

import threading
from functools import cached_property

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from perfdeploy.endpoint import refuse_web_pages
from perfdeploy.errors import ConfigError, DeployError

# botocore's adaptive mode: standard retries (throttling and transient errors, exponential backoff with
# jitter) plus client-side rate limiting, so concurrent stacks slow down together instead of failing.
RETRIES = {"mode": "adaptive", "max_attempts": 12}

# Throttling and transient error codes: a wait must never die on one of these (they outlast retries rarely).
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestTimeout", "RequestTimeoutException",
    "ServiceUnavailable", "InternalFailure", "InternalError", "SlowDown",
})


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx and connection errors: worth waiting out, never a verdict."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500
    return isinstance(exc, BotoCoreError) and not isinstance(exc, NoCredentialsError | NoRegionError)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


class Aws:
    """boto3 clients for one region/profile/endpoint, created once and shared."""

    def __init__(self, region: str, profile: str | None = None, endpoint_url: str | None = None,
                 max_pool_connections: int = 20):
        self.region, self.profile, self.endpoint_url = region, profile, endpoint_url
        self._config = Config(region_name=region, retries=RETRIES, max_pool_connections=max_pool_connections)
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()

    @cached_property
    def session(self) -> boto3.Session:
        try:
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except BotoCoreError as exc:  # e.g. ProfileNotFound
            raise ConfigError(str(exc), field="--profile") from None

    def client(self, service: str):
        """The shared client for a service (boto3 also honours AWS_ENDPOINT_URL[_<SERVICE>])."""
        with self._lock:
            if service not in self._clients:
                kwargs = {"config": self._config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._clients[service] = self.session.client(service, **kwargs)
                refuse_web_pages(self._clients[service])  # an HTML page is no AWS answer: one clear line
            return self._clients[service]

    @cached_property
    def account_id(self) -> str:
        try:
            return self.client("sts").get_caller_identity()["Account"]
        except NoCredentialsError:
            raise ConfigError("no AWS credentials found: set AWS_PROFILE (or --profile), or run against the "
                              "local emulator with --endpoint-url", field="credentials") from None
        except ClientError as exc:
            raise DeployError(f"cannot identify the AWS account: {exc}") from None
