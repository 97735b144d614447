"""The one boto3 session/client factory: region, profile, endpoint and one retry configuration for all clients.

Clients are created once per service per run and shared across the engine's threads (boto3 clients are
thread-safe; sessions are not, so clients are created under a lock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache, cached_property
from types import SimpleNamespace

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    UnknownRegionError,
)
from botocore.exceptions import ConnectionError as TransportError
from botocore.loaders import create_loader
from botocore.regions import EndpointResolver
from botocore.retries import standard

from perfdeploy.endpoint import refuse_web_pages
from perfdeploy.errors import ConfigError, DeployError

# botocore's adaptive mode: standard retries (throttling and transient errors, exponential backoff with
# jitter) plus client-side rate limiting, so concurrent stacks slow down together instead of failing.
MAX_ATTEMPTS = 12
RETRIES = {"mode": "adaptive", "max_attempts": MAX_ATTEMPTS}

# A refused or unreachable endpoint (emulator not running, wrong --endpoint-url) is retried as transient by
# botocore too, and twelve attempts take about a minute. Transport errors get this many attempts only, so
# the answer comes in seconds; a wait that outlives a network blip is the poll loop's job (waiter.py).
TRANSPORT_ATTEMPTS = 3
CONNECT_TIMEOUT = 5
# botocore's own retries of one call (throttling backs off up to 20 s a try) are announced from this attempt on.
ANNOUNCE_ATTEMPT = 5

# botocore's own judgement of what is retryable (botocore.retries.standard): throttling codes, 5xx and the
# transient codes, connection and HTTP-client errors. Everything else (expired SSO token, bad credentials,
# access denied, validation) is an answer, not a hiccup.
_RETRYABLE = standard.OrRetryChecker([standard.ThrottledRetryableChecker(), standard.TransientRetryableChecker()])


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx and connection errors: worth waiting out, never a verdict."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        http = SimpleNamespace(status_code=status, headers={}) if status else None
        context = standard.RetryContext(attempt_number=1, parsed_response=exc.response, http_response=http)
    elif isinstance(exc, BotoCoreError):
        context = standard.RetryContext(attempt_number=1, caught_exception=exc)
    else:
        return False
    return _RETRYABLE.is_retryable(context)


# What AWS (or the way to it) can answer with: in a run, one of these is that stack's failure, not the run's.
AWS_ERRORS = (ClientError, BotoCoreError)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _retry_reason(response, caught_exception) -> str | None:
    """What a failed attempt ran into, when botocore would retry it (None for a success or a verdict)."""
    if caught_exception is not None:
        return str(caught_exception) if is_transient(caught_exception) else None
    http, parsed = response if response else (None, {})
    if not parsed or "Error" not in parsed:
        return None
    error = ClientError({**parsed, "ResponseMetadata": {"HTTPStatusCode": getattr(http, "status_code", 0)}}, "")
    return f"{error_code(error)}: {parsed['Error'].get('Message', '')}" if is_transient(error) else None


@cache
def partition_of(region: str) -> tuple[str, str]:
    """(partition, DNS suffix) of a region from botocore's endpoint data: aws/amazonaws.com,
    aws-cn/amazonaws.com.cn, aws-us-gov/amazonaws.com, ..."""
    resolver = EndpointResolver(create_loader().load_data("endpoints"))
    try:
        partition = resolver.get_partition_for_region(region)
    except UnknownRegionError:
        raise ConfigError(f"'{region}' is in no AWS partition botocore knows", field="region") from None
    return partition, resolver.get_partition_dns_suffix(partition)


class Aws:
    """boto3 clients for one region/profile/endpoint, created once and shared."""

    def __init__(self, region: str, profile: str | None = None, endpoint_url: str | None = None,
                 max_pool_connections: int = 20):
        self.region, self.profile, self.endpoint_url = region, profile, endpoint_url
        # A copy: botocore rewrites the retries dict it is given (max_attempts -> total_max_attempts).
        self._config = Config(region_name=region, retries=dict(RETRIES), max_pool_connections=max_pool_connections,
                              connect_timeout=CONNECT_TIMEOUT)
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()
        self.on_retry: Callable[[str], None] | None = None   # where a long retry says so (the run's reporter)

    @cached_property
    def session(self) -> boto3.Session:
        try:
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except BotoCoreError as exc:  # e.g. ProfileNotFound
            raise ConfigError(str(exc), field="--profile") from None

    @property
    def partition(self) -> str:
        """The region's partition, for ARNs (arn:aws:..., arn:aws-cn:...)."""
        return partition_of(self.region)[0]

    @property
    def dns_suffix(self) -> str:
        """The region's DNS suffix, for service URLs (amazonaws.com, amazonaws.com.cn)."""
        return partition_of(self.region)[1]

    def client(self, service: str):
        """The shared client for a service (boto3 also honours AWS_ENDPOINT_URL[_<SERVICE>])."""
        with self._lock:
            if service not in self._clients:
                kwargs = {"config": self._config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                client = self.session.client(service, **kwargs)
                client.meta.events.register_first(
                    f"needs-retry.{client.meta.service_model.service_id.hyphenize()}", self._before_retry)
                refuse_web_pages(client)  # an HTML page is no AWS answer: one clear line
                self._clients[service] = client
            return self._clients[service]

    def _before_retry(self, attempts: int, operation=None, response=None, caught_exception=None, **_) -> None:
        """A `needs-retry` handler that runs before botocore's own: a transport error is raised after
        TRANSPORT_ATTEMPTS tries (botocore's handler alone would go on to max_attempts), and a call still
        retrying after ANNOUNCE_ATTEMPT tries says so once."""
        if isinstance(caught_exception, TransportError | HTTPClientError) and attempts >= TRANSPORT_ATTEMPTS:
            raise caught_exception
        if attempts == ANNOUNCE_ATTEMPT and self.on_retry is not None:
            reason = _retry_reason(response, caught_exception)
            if reason:
                self.on_retry(f"{getattr(operation, 'name', 'a call')}: retrying ({reason}), "
                              f"at most {MAX_ATTEMPTS} attempts")

    @cached_property
    def account_id(self) -> str:
        """The caller's account (the first call of every command that takes the environment's lock)."""
        try:
            return self.client("sts").get_caller_identity()["Account"]
        except NoCredentialsError:
            raise ConfigError("no AWS credentials found: set AWS_PROFILE (or --profile), or run against the "
                              "local emulator with --endpoint-url", field="credentials") from None
        except EndpointConnectionError as exc:
            raise unreachable(exc, self.endpoint_url) from None
        except ClientError as exc:
            raise DeployError(f"cannot identify the AWS account: {exc}") from None


def unreachable(exc: EndpointConnectionError, endpoint_url: str | None) -> ConfigError:
    """Nothing answers at the endpoint: bad input (--endpoint-url, or the region's endpoint), not a failure."""
    where = endpoint_url or exc.kwargs.get("endpoint_url", "")
    hint = ("is the local emulator running ('perfdeploy local')?" if endpoint_url
            else "check the network and --region")
    return ConfigError(f"cannot connect to {where}: {hint}", field="--endpoint-url" if endpoint_url else "--region")
