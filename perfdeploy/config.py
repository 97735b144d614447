"""Load config/defaults.yaml + config/<env>.yaml, deep-merge, validate into one frozen EnvConfig.

Every failure is a ConfigError naming the file and the field; nothing else in perfdeploy reads YAML config.
"""

from __future__ import annotations

import difflib
import ipaddress
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from perfdeploy import aws_support
from perfdeploy.errors import ConfigError, ConfigErrors
from perfdeploy.regions import check_region

DEFAULT_CONFIG_DIR = Path("config")
DEFAULTS_FILE = "defaults.yaml"
ENVIRONMENTS = ("dev", "staging", "prod")
STATEFUL_ENVS = ("staging", "prod")  # environments whose data is retained on delete/replace
AUDIT_RETENTION_DAYS = 365  # prod keeps application and flow logs at least this long (audit)
# Tag names that move from build to build: with immutable tags such a name can be pushed only once.
MUTABLE_TAGS = frozenset({"latest", "stable", "main", "master", "trunk", "head", "dev", "develop", "staging",
                          "prod", "production", "release", "current", "edge", "nightly"})
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"

Cidr = Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")]
Days = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
               2922, 3288, 3653]  # the values CloudWatch Logs accepts for RetentionInDays


def _tag_text(text: str, what: str, longest: int, shortest: int) -> str:
    """AWS's tag rules, as every service documents them (e.g. the AWS::ECS::Service Tag page of the
    CloudFormation guide): length, letters/numbers/spaces and + - = . _ : / @, no aws: prefix."""
    if not shortest <= len(text) <= longest:
        raise ValueError(f"tag {what} '{text}' is {len(text)} characters; AWS allows {shortest} to {longest}")
    bad = sorted({c for c in text if c not in TAG_PUNCTUATION and unicodedata.category(c)[0] not in "LNZ"})
    if bad:
        raise ValueError(f"tag {what} '{text}' has {' '.join(bad)}: AWS allows letters, numbers, spaces and "
                         f"{' '.join(TAG_PUNCTUATION)}")
    if text.lower().startswith("aws:"):
        raise ValueError(f"tag {what} '{text}' starts with 'aws:', which AWS reserves for its own tags")
    return text


TAG_PUNCTUATION = "+-=._:/@"
HOUSE_TAGS = {k.lower(): k for k in ("Environment", "Service", "ManagedBy", "CostCenter", "Name")}
MAX_CUSTOM_TAGS = 50 - len(HOUSE_TAGS) - 1  # AWS's 50 a resource, less perfdeploy's own (and a subnet's Tier)
def _tag_key(key: str) -> str:
    if key.lower() in HOUSE_TAGS:
        raise ValueError(f"'{key}' is a tag perfdeploy sets itself ({', '.join(HOUSE_TAGS.values())}); "
                         "choose another key")
    return _tag_text(key, "key", 128, 1)


TagKey = Annotated[str, AfterValidator(_tag_key)]
TagValue = Annotated[str, AfterValidator(lambda value: _tag_text(value, "value", 256, 0))]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(Model):
    vpc_cidr: Cidr
    availability_zones: int = Field(ge=2, le=6)
    nat: Literal["single", "per_az"]
    flow_log_retention_days: Days
    # Availability Zone *ids* (use1-az1), in order of preference: the network uses the first
    # availability_zones of them. Zone names map to different physical zones in every account; ids do not.
    zone_ids: tuple[Annotated[str, Field(pattern=r"^[a-z]+[0-9]+-az[0-9]+$")], ...]
    public_subnets: tuple[Cidr, ...] = ()
    private_subnets: tuple[Cidr, ...] = ()

    @property
    def nat_gateways(self) -> int:
        """One NAT gateway with `single` (dev's cost), else one per zone (an AZ outage must not cut egress)."""
        return 1 if self.nat == "single" else self.availability_zones

    @model_validator(mode="after")
    def _subnets(self) -> NetworkConfig:
        if len(self.zone_ids) < self.availability_zones:
            raise ValueError(f"zone_ids lists {len(self.zone_ids)} zones for {self.availability_zones} "
                             "availability zones")
        if len(set(self.zone_ids)) != len(self.zone_ids):
            raise ValueError(f"zone_ids must name distinct zones (got {', '.join(self.zone_ids)})")
        excluded = sorted(set(self.zone_ids) & aws_support.MSK_EXCLUDED_ZONE_IDS)
        if excluded:
            raise ValueError(f"zone_ids: MSK does not accept client subnets in {', '.join(excluded)} "
                             f"({aws_support.MSK_ZONES_SOURCE}); choose another zone")
        vpc = _network(self.vpc_cidr, "vpc_cidr")
        if not 16 <= vpc.prefixlen <= 24:
            raise ValueError(f"vpc_cidr {self.vpc_cidr} must be between /16 and /24")
        for name in ("public_subnets", "private_subnets"):
            given = getattr(self, name)
            if given and len(given) != self.availability_zones:
                raise ValueError(f"{name} lists {len(given)} CIDRs for {self.availability_zones} availability zones")
        subnets = [_network(c, "subnet") for c in self.public_subnets + self.private_subnets]
        for net in subnets:
            if not net.subnet_of(vpc):
                raise ValueError(f"subnet {net} is outside the VPC {vpc}")
        for i, a in enumerate(subnets):
            for b in subnets[i + 1:]:
                if a.overlaps(b):
                    raise ValueError(f"subnets {a} and {b} overlap")
        return self

    def zones(self) -> tuple[str, ...]:
        """The zone ids the subnets are placed in: the first availability_zones of zone_ids."""
        return self.zone_ids[: self.availability_zones]

    def subnet_cidrs(self) -> tuple[list[str], list[str]]:
        """(public, private) subnet CIDRs: as given, or carved from the VPC (/4 bits smaller per subnet)."""
        vpc = ipaddress.ip_network(self.vpc_cidr)
        carved = [str(n) for n in vpc.subnets(prefixlen_diff=4)]
        public = list(self.public_subnets) or carved[: self.availability_zones]
        private = list(self.private_subnets) or carved[8: 8 + self.availability_zones]
        return public, private


class LogsConfig(Model):
    retention_days: Days


class KafkaTopic(Model):
    name: str = Field(pattern=r"^[a-zA-Z0-9._-]{1,249}$")
    partitions: int = Field(ge=1, le=1000)


class KafkaConfig(Model):
    version: str  # an MSK version from perfdeploy/aws_support.py (the lint gate checks its end of support)
    broker_type: str = Field(pattern=r"^kafka\.")
    brokers: int = Field(ge=2, le=30)
    ebs_gib: int = Field(ge=1, le=16384)
    enhanced_monitoring: Literal["DEFAULT", "PER_BROKER", "PER_TOPIC_PER_BROKER", "PER_TOPIC_PER_PARTITION"]
    retention_hours: int = Field(ge=1)
    topics: tuple[KafkaTopic, ...] = ()

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: str) -> str:
        if version not in aws_support.KAFKA_VERSIONS:
            known = ", ".join(v for v, row in aws_support.KAFKA_VERSIONS.items() if row.end_of_support is None)
            raise ValueError(f"{version!r} is not a Kafka version MSK offers (supported without an end date: "
                             f"{known}; {aws_support.MSK_VERSIONS_SOURCE})")
        return version


_DAY = "(mon|tue|wed|thu|fri|sat|sun)"


class RedisConfig(Model):
    # Valkey is ElastiCache's Redis-compatible engine, priced below Redis OSS. Clients authenticate with IAM,
    # which ElastiCache offers for Valkey 7.2+ and Redis OSS 7+.
    engine: Literal["valkey", "redis"]
    version: str = Field(pattern=r"^\d+\.(\d+|x)$")  # major.minor: it also picks the parameter group family
    node_type: str = Field(pattern=r"^cache\.")
    nodes: int = Field(ge=1, le=6)  # primary + up to 5 replicas; multi-AZ failover whenever > 1
    snapshot_retention_days: int = Field(ge=0, le=35)
    snapshot_window: str = Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")  # UTC, e.g. 03:00-04:00
    maintenance_window: str = Field(pattern=rf"^{_DAY}:\d{{2}}:\d{{2}}-{_DAY}:\d{{2}}:\d{{2}}$")

    @model_validator(mode="after")
    def _known_version(self) -> RedisConfig:
        if aws_support.cache_version(self.engine, self.version) is None:
            known = ", ".join(v for (e, v) in aws_support.CACHE_VERSIONS if e == self.engine)
            raise ValueError(f"version {self.version!r} is not an ElastiCache {self.engine} version this tool "
                             f"knows (known: {known}; {aws_support.ELASTICACHE_VERSIONS_SOURCE})")
        if self.engine == "redis" and int(self.version.split(".")[0]) < 7:
            raise ValueError(f"Redis OSS {self.version} has no IAM authentication (Redis OSS 7+ and Valkey "
                             "do): use engine valkey, or version 7.0 or later")
        return self


class KeySchema(Model):
    name: str
    type: Literal["S", "N", "B"] = "S"


class TableIndex(Model):
    name: str
    partition_key: KeySchema
    sort_key: KeySchema | None = None


class TableConfig(Model):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]{2,63}$")
    partition_key: KeySchema
    sort_key: KeySchema | None = None
    indexes: tuple[TableIndex, ...] = ()
    ttl_attribute: str | None = None
    stream: Literal["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"] | None = None

    @model_validator(mode="after")
    def _keys(self) -> TableConfig:
        names = [i.name for i in self.indexes]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: index names must be unique (got {', '.join(names)})")
        types: dict[str, str] = {}
        for key in self.key_attributes():
            if types.setdefault(key.name, key.type) != key.type:
                raise ValueError(f"table {self.name}: key attribute {key.name} is typed both "
                                 f"{types[key.name]} and {key.type}; DynamoDB needs one type per attribute")
        return self

    def key_attributes(self) -> list[KeySchema]:
        """Every key of the table and its indexes, in order (DynamoDB's AttributeDefinitions)."""
        keys = [self.partition_key, self.sort_key]
        for index in self.indexes:
            keys += [index.partition_key, index.sort_key]
        return [k for k in keys if k is not None]


class DynamoConfig(Model):
    billing: Literal["on_demand", "provisioned"]
    backup_retention_days: int = Field(ge=1, le=3650)
    tables: tuple[TableConfig, ...] = Field(min_length=1)
    read_capacity: int = Field(default=5, ge=1)
    write_capacity: int = Field(default=5, ge=1)
    max_capacity: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _tables(self) -> DynamoConfig:
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError(f"table names must be unique (got {', '.join(names)})")
        if self.billing == "provisioned" and max(self.read_capacity, self.write_capacity) > self.max_capacity:
            raise ValueError(f"max_capacity ({self.max_capacity}) is below read_capacity/write_capacity "
                             f"({self.read_capacity}/{self.write_capacity})")
        return self


class EcsConfig(Model):
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384]
    memory: int = Field(ge=512, le=122880)
    min: int = Field(ge=1)  # auto scaling's floor; the service's count is left to auto scaling
    max: int = Field(ge=1)
    container_port: int = Field(ge=1, le=65535)
    health_check_path: str
    health_check_grace_seconds: int = Field(ge=0, le=2147483647)
    # No default build: a new ecs stack needs --image-tag (deploy says so). A mutable name is refused.
    image_tag: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    fargate_spot: bool

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, data: Any) -> Any:
        retired = {"desired": "the service's task count is left to auto scaling (ecs.min is its floor)",
                   "keep_images": "the image lifecycle expires untagged images only, so no release loses its image"}
        for key, why in retired.items():
            if isinstance(data, dict) and key in data:
                raise _FieldError(key, f"is no longer a setting: {why}; remove it")
        return data

    @model_validator(mode="after")
    def _bounds(self) -> EcsConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.image_tag is not None and self.image_tag.lower() in MUTABLE_TAGS:
            raise _FieldError("image_tag", mutable_tag_message(self.image_tag))
        return self


def mutable_tag_message(tag: str) -> str:
    """Why a mutable tag name is refused (config ecs.image_tag and --image-tag say the same)."""
    return (f"'{tag}' is a mutable name, but the repository's tags are immutable: it can be pushed only once "
            "and would never name the next build; tag each build with its git commit SHA")


class AlbConfig(Model):
    certificate_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/")
    allow_http: bool
    waf: bool
    access_log_expiry_days: int = Field(ge=1)
    deletion_protection: bool
    waf_rate_limit: int = Field(default=2000, ge=10, le=2_000_000_000)  # requests per client IP per 5 minutes


class TracingConfig(Model):
    sampling_rate: float = Field(ge=0, le=1)


class Thresholds(Model):
    """Alarm thresholds; defaults fit every environment, an environment may override any."""

    ecs_cpu_warning: float = 85
    ecs_cpu_critical: float = 95
    ecs_memory_warning: float = 85
    ecs_memory_critical: float = 95
    error_rate_warning: float = 1
    error_rate_critical: float = 5
    latency_p99_warning_seconds: float = 1
    latency_p99_critical_seconds: float = 3
    alb_5xx_count: float = 10
    target_5xx_count: float = 10
    rejected_connections: float = 1
    kafka_cpu_percent: float = 80
    kafka_disk_percent: float = 80
    kafka_heap_percent: float = 80
    redis_cpu_percent: float = 80
    redis_memory_percent: float = 80
    redis_connections: float = 5000
    redis_evictions: float = 100
    redis_replication_lag_seconds: float = 1
    dynamodb_throttles: float = 5
    nat_port_errors: float = 1
    # Added with the monitoring stack (see docs/monitoring.md for each alarm's period and comparison).
    dynamodb_system_errors: float = 1
    unhealthy_hosts: float = 1
    kafka_under_replicated_partitions: float = 1
    kafka_offline_partitions: float = 1
    error_rate_min_requests: float = Field(default=10, ge=1)  # below this many requests a minute, no rate


class MonitoringConfig(Model):
    alarm_emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = ()
    paging_url: str | None = Field(default=None, pattern=r"^https://")
    rollback_trigger_minutes: int = Field(ge=0, le=180)
    thresholds: Thresholds = Thresholds()


class DeployConfig(Model):
    termination_protection: bool
    ci_oidc_provider_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/")
    ci_subject: str = Field(pattern=r"^[^*?]+$")  # exact: one CI subject per environment, no wildcards
    permissions_boundary_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:policy/")


# Progressive delivery (issue 18). ECS's limits, from the CloudFormation resource schema of
# AWS::ECS::Service that cfn-lint ships (DeploymentConfiguration, CanaryConfiguration, LinearConfiguration):
BAKE_MINUTES_MAX = 1440                 # BakeTimeInMinutes, CanaryBakeTimeInMinutes, StepBakeTimeInMinutes
CFN_DEPLOYMENT_MINUTES_MAX = 33 * 60    # CloudFormation rejects canary/linear deployments computed above 33 hours
ECS_DEFAULT_BAKE_MINUTES = 15           # ECS's bake time for blue/green, canary and linear when none is given
PROGRESSIVE = ("blue_green", "canary", "linear")
BakeMinutes = Annotated[int, Field(ge=0, le=BAKE_MINUTES_MAX)]


def _tenths(value: float) -> bool:
    """True for a multiple of 0.1 (what ECS accepts for traffic percentages)."""
    return Decimal(str(value)) % Decimal("0.1") == 0


class CanaryConfig(Model):
    percent: float = Field(default=10.0, ge=0.1, le=100)    # production traffic on the new revision first
    bake_minutes: BakeMinutes = 10                            # how long the canary runs before the rest shifts

    @model_validator(mode="after")
    def _step(self) -> CanaryConfig:
        if not _tenths(self.percent):
            raise _FieldError("percent", f"{self.percent} is not a multiple of 0.1: ECS takes canary percentages "
                              "from 0.1 to 100 in steps of 0.1")
        return self


class LinearConfig(Model):
    step_percent: float = Field(default=10.0, ge=3, le=100)  # traffic shifted per step
    step_bake_minutes: BakeMinutes = 6                        # wait between steps (not after the last)

    @model_validator(mode="after")
    def _step(self) -> LinearConfig:
        if not _tenths(self.step_percent):
            raise _FieldError("step_percent", f"{self.step_percent} is not a multiple of 0.1: ECS takes linear "
                              "steps from 3 to 100 percent in steps of 0.1")
        return self

    @property
    def steps(self) -> int:
        """Deployment steps as CloudFormation counts them: no step bake after the shift that reaches 100%."""
        whole, rest = divmod(Decimal(100), Decimal(str(self.step_percent)))
        return int(whole) - 1 if rest == 0 else int(whole)


class TestListenerConfig(Model):
    __test__ = False  # not a pytest test class
    port: int = Field(default=8443, ge=1, le=65535)
    # Who may reach the test listener besides the VPC's own NAT gateways (e.g. the office VPN), never the internet.
    cidrs: tuple[Cidr, ...] = ()

    @model_validator(mode="after")
    def _private(self) -> TestListenerConfig:
        if self.port in (80, 443):
            raise _FieldError("port", f"port {self.port} is the production listener's: pick another port")
        for cidr in self.cidrs:
            net = _network(cidr, "test listener CIDR")
            if net.prefixlen < 8:
                raise _FieldError("cidrs", f"{cidr} would open the test listener to a large part of the "
                                  "internet: list the networks of your testers (a /8 at the widest)")
        return self


class DeploymentConfig(Model):
    """How ECS rolls out a new task definition (docs/progressive-delivery.md)."""

    strategy: Literal["rolling", "blue_green", "canary", "linear"] = "rolling"
    bake_time_minutes: BakeMinutes | None = None   # after the last traffic shift; ECS's default when unset
    canary: CanaryConfig | None = None
    linear: LinearConfig | None = None
    test_listener: TestListenerConfig | None = None

    @model_validator(mode="after")
    def _combination(self) -> DeploymentConfig:
        for block in ("canary", "linear"):
            if getattr(self, block) is not None and self.strategy != block:
                raise _FieldError(block, f"deployment.{block} is set but the strategy is {self.strategy}: "
                                  f"remove it, or set strategy: {block}")
        if self.test_listener is not None and self.strategy == "rolling":
            raise _FieldError("test_listener", "a rolling deployment has no test listener: remove it, or pick "
                              "blue_green, canary or linear")
        if self.total_minutes > CFN_DEPLOYMENT_MINUTES_MAX:
            raise _FieldError(self._longest, f"the bake times add up to {self.total_minutes} minutes, over the "
                              f"{CFN_DEPLOYMENT_MINUTES_MAX} minutes (33 hours) CloudFormation accepts for a "
                              f"{self.strategy} deployment: {self.duration_formula}")
        return self

    @property
    def progressive(self) -> bool:
        """True for the strategies that shift traffic between two target groups."""
        return self.strategy in PROGRESSIVE

    @property
    def bake_minutes(self) -> int | None:
        """The bake time ECS applies: the configured one, or ECS's default for blue/green, canary, linear."""
        if self.bake_time_minutes is not None:
            return self.bake_time_minutes
        return ECS_DEFAULT_BAKE_MINUTES if self.progressive else None

    @property
    def canary_settings(self) -> CanaryConfig:
        return self.canary or CanaryConfig()

    @property
    def linear_settings(self) -> LinearConfig:
        return self.linear or LinearConfig()

    @property
    def listener(self) -> TestListenerConfig:
        return self.test_listener or TestListenerConfig()

    @property
    def total_minutes(self) -> int:
        """The duration CloudFormation computes (and caps at 33 hours) from the template's bake times."""
        bake = self.bake_minutes or 0
        if self.strategy == "canary":
            return bake + self.canary_settings.bake_minutes
        if self.strategy == "linear":
            return bake + self.linear_settings.step_bake_minutes * self.linear_settings.steps
        return bake

    @property
    def duration_formula(self) -> str:
        bake = self.bake_minutes or 0
        if self.strategy == "canary":
            return f"bake_time_minutes {bake} + canary.bake_minutes {self.canary_settings.bake_minutes}"
        linear = self.linear_settings
        return (f"bake_time_minutes {bake} + linear.step_bake_minutes {linear.step_bake_minutes} x "
                f"{linear.steps} steps of {linear.step_percent}%")

    @property
    def _longest(self) -> str:
        return {"canary": "canary.bake_minutes", "linear": "linear.step_bake_minutes"}.get(self.strategy,
                                                                                         "bake_time_minutes")


class EnvConfig(Model):
    """One environment's validated, frozen configuration: the only input of every blueprint."""

    env: str
    service: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    cost_center: str
    region: Annotated[str, AfterValidator(check_region)]  # botocore's partition data decides
    network: NetworkConfig
    logs: LogsConfig
    kafka: KafkaConfig
    redis: RedisConfig
    dynamodb: DynamoConfig
    ecs: EcsConfig
    alb: AlbConfig
    tracing: TracingConfig
    monitoring: MonitoringConfig
    deploy: DeployConfig
    deployment: DeploymentConfig = DeploymentConfig()
    custom_tags: dict[TagKey, TagValue] = Field(default_factory=dict, alias="tags")

    @field_validator("custom_tags")
    @classmethod
    def _tags_fit_beside_the_house_ones(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_CUSTOM_TAGS:
            raise ValueError(f"{len(tags)} tags: AWS allows 50 per resource and perfdeploy's own take "
                             f"{50 - MAX_CUSTOM_TAGS}, so at most {MAX_CUSTOM_TAGS}")
        return tags

    @model_validator(mode="after")
    def _cross_field(self) -> EnvConfig:
        azs = self.network.availability_zones
        brokers = self.kafka.brokers
        if brokers % azs:
            zones = [n for n in range(2, 7) if brokers % n == 0]  # the zone counts NetworkConfig allows
            other = f", or set network.availability_zones to {' or '.join(map(str, zones))}" if zones else ""
            raise _FieldError("kafka.brokers", f"{brokers} brokers cannot spread over {azs} availability "
                              f"zones: MSK puts the same number of brokers in every zone, so kafka.brokers must "
                              f"be a multiple of the zone count (e.g. {azs} or {azs * 2}){other}",
                              related=("network.availability_zones",))
        prefix = aws_support.zone_id_prefix(self.region)
        foreign = [z for z in self.network.zones() if not z.startswith(f"{prefix}-")]
        if foreign:
            raise _FieldError("network.zone_ids", f"{', '.join(foreign)} are not zones of {self.region} (its "
                              f"zone ids start with {prefix}-)", related=("region",))
        fargate = aws_support.FARGATE_ZONE_IDS.get(self.region)
        if fargate and not set(self.network.zones()) <= fargate:
            raise _FieldError("network.zone_ids", f"Fargate runs tasks in {self.region} only in "
                              f"{', '.join(sorted(fargate))} ({aws_support.FARGATE_ZONES_SOURCE})")
        low, high = aws_support.MSK_CLIENT_SUBNETS
        if not low <= azs <= high:
            raise _FieldError("network.availability_zones", f"MSK takes {low} or {high} client subnets (one per "
                              f"zone), so the network spans {low} or {high} zones, not {azs} "
                              f"({aws_support.MSK_ZONES_SOURCE})")
        if self.prod:
            for field, days in (("logs.retention_days", self.logs.retention_days),
                                ("network.flow_log_retention_days", self.network.flow_log_retention_days)):
                if days < AUDIT_RETENTION_DAYS:
                    raise _FieldError(field, f"prod keeps application and flow logs for audit: at least "
                                      f"{AUDIT_RETENTION_DAYS} days (got {days})")
        provider_host = self.deploy.ci_oidc_provider_arn.split(":oidc-provider/", 1)[-1]
        if provider_host == GITHUB_OIDC_HOST and not self.deploy.ci_subject.endswith(f":environment:{self.env}"):
            raise _FieldError("deploy.ci_subject", f"one CI subject per environment: GitHub's subject for "
                              f"{self.env} is 'repo:OWNER/REPO:environment:{self.env}' (a job that names the "
                              f"GitHub environment {self.env}), got {self.deploy.ci_subject!r}")
        if self.env in STATEFUL_ENVS and not self.alb.certificate_arn:
            raise _FieldError("alb.certificate_arn", f"{self.env} needs an ACM certificate for its HTTPS listener")
        if self.env in STATEFUL_ENVS and self.alb.allow_http:
            raise _FieldError("alb.allow_http", f"plain HTTP forwarding is refused in {self.env}")
        if not self.alb.certificate_arn and not self.alb.allow_http:
            raise _FieldError("alb.certificate_arn", "without a certificate the ALB can serve nothing: "
                              "set certificate_arn, or allow_http: true outside staging/prod")
        return self

    @property
    def stateful(self) -> bool:
        """True where data must survive deletes and replacements (staging, prod)."""
        return self.env in STATEFUL_ENVS

    @property
    def prod(self) -> bool:
        return self.env == "prod"

    def stack_name(self, key: str) -> str:
        return f"{self.env}-{self.service}-{key}"

    def resource_name(self, kind: str) -> str:
        return f"{self.env}-{self.service}-{kind}"

    @property
    def tags(self) -> dict[str, str]:
        """What every stack and taggable resource carries: the house tags, then config's `tags:`."""
        return {"Environment": self.env, "Service": self.service, "ManagedBy": "perfdeploy",
                "CostCenter": self.cost_center, **self.custom_tags}


class _FieldError(ValueError):
    """A cross-field error that knows which field to blame (and which others it involves, for the file)."""

    def __init__(self, field: str | tuple[str, ...], message: str, related: tuple[str, ...] = ()):
        # a dotted path, or its parts (a tag key is one part, whatever dots it holds)
        self.path = list(field) if isinstance(field, tuple) else field.split(".")
        self.related = related
        super().__init__(message)


def environments(config_dir: Path = DEFAULT_CONFIG_DIR) -> list[str]:
    """The environments that have a config file."""
    return sorted(p.stem for p in Path(config_dir).glob("*.yaml") if p.name != DEFAULTS_FILE)


def load_config(env: str, config_dir: Path = DEFAULT_CONFIG_DIR) -> EnvConfig:
    """Read, merge and validate one environment's config. Bad config raises ConfigError naming file and
    field; several problems raise ConfigErrors listing every one."""
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        what = "is not a folder" if config_dir.exists() else "does not exist"
        raise ConfigError(f"{config_dir} {what} (it should hold {DEFAULTS_FILE} and one <env>.yaml per "
                          "environment)", field="--config-dir")
    known = environments(config_dir)
    if env not in known:
        hint = _near(env, known)
        raise ConfigError(f"unknown environment '{env}'{hint}; known environments: {', '.join(known) or 'none'} "
                          f"(one file per environment in {config_dir}/)")
    defaults_path, env_path = config_dir / DEFAULTS_FILE, config_dir / f"{env}.yaml"
    if not defaults_path.exists():
        raise ConfigError(f"missing: every environment's file is merged over it (in {config_dir}/)",
                          file=str(defaults_path))
    problems: list[ConfigError] = []
    defaults, overrides = (_read_yaml(path, problems) for path in (defaults_path, env_path))
    _raise(problems)
    merged = _deep_merge(defaults, overrides)
    merged["env"] = env
    try:
        return EnvConfig.model_validate(merged)
    except ValidationError as exc:
        _raise(_config_errors(exc, defaults, overrides, defaults_path, env_path))
        raise  # not reached: a ValidationError always carries at least one error


def _raise(problems: list[ConfigError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A YAML loader that refuses a key given twice (PyYAML would silently keep the last); libyaml's parser
    where PyYAML has it (every command reads two config files: 13 ms a load in pure Python, 1.4 ms through libyaml)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"'{key}' is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, problems: list[ConfigError]) -> dict[str, Any]:
    """The file's mapping; a problem reading it is added to `problems` (and {} returned), so the other
    file's problems are reported too."""
    try:
        raw = path.read_bytes()
        data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        problems.append(ConfigError(f"cannot read: {exc.strerror}", file=str(path)))
        return {}
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problems.append(ConfigError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column "
                                    f"{column}; save the file as UTF-8", file=str(path)))
        return {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problems.append(ConfigError(f"YAML syntax error{where}: {exc.problem}", file=str(path)))
        return {}
    except yaml.YAMLError as exc:  # e.g. a control character PyYAML's reader refuses
        problems.append(ConfigError(f"not YAML PyYAML can read: {exc}", file=str(path)))
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(ConfigError("the top level must be a mapping of keys to values", file=str(path)))
        return {}
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _config_errors(exc: ValidationError, defaults: dict, overrides: dict, defaults_path: Path,
                   env_path: Path) -> list[ConfigError]:
    """Every validation error, each naming its file and field; unknown keys first. A required field that
    is missing because its key is misspelt (`ecss:` for `ecs:`) is explained by the unknown key alone."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    misspelt: set[tuple[str, ...]] = set()
    out = []
    for err in errors:
        loc = [str(p) for p in err["loc"] if p != "[key]"]
        if err["type"] == "missing" and any(tuple(loc[:len(m)]) == m for m in misspelt):
            continue
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _FieldError):
            loc = [*loc, *ctx_error.path]
            message = str(ctx_error)
        elif err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(loc[-1], _model_at(loc[:-1]), n=1)
            if near:
                misspelt.add((*loc[:-1], near[0]))
            message = f"unknown key '{loc[-1]}'" + (f" (did you mean '{near[0]}'?)" if near else "")
        elif err["type"] == "missing":
            message = "is required but missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if "input" in err and not isinstance(err["input"], dict | list) and str(err["input"]) not in message:
                message += f" (got {err['input']!r})"
            if err["type"] == "string_type":
                message += "; quote it in YAML"
        involved = [loc] + [r.split(".") for r in getattr(ctx_error, "related", ())]
        in_env_file = any(_has_path(overrides, path) for path in involved)
        source = env_path if in_env_file or not _has_path(defaults, loc) else defaults_path
        out.append(ConfigError(message, file=str(source), field=".".join(loc) or None))
    return out


def _has_path(data: Any, loc: list[str]) -> bool:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return False
    return True


def _model_at(loc: list[str]) -> list[str]:
    """The keys (as written in config) of the model at a config path, for 'did you mean'."""
    model: Any = EnvConfig
    for part in loc:
        if part.isdigit():
            continue
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", None)
        model = next((a for a in (args or (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)),
                     None)
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _near(word: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _network(cidr: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr)
    except ValueError as exc:
        raise ValueError(f"{what} {cidr} is not a valid network: {exc}") from None


def config_file(env: str, field: str, config_dir: Path = DEFAULT_CONFIG_DIR) -> Path:
    """The file a merged field comes from: the environment's file when it sets it, else defaults.yaml."""
    config_dir = Path(config_dir)
    env_path = config_dir / f"{env}.yaml"
    return env_path if _has_path(_read_yaml(env_path, []), field.split(".")) else config_dir / DEFAULTS_FILE
