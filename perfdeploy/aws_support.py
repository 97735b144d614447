"""Dated tables of what AWS supports: engine versions and their end of support, and the Availability Zones
services refuse. Each table names the page it was read from and when; the lint gate checks templates
against them (house rules E9106, I9107, E9110), config validates against them.

When AWS publishes a new date or version, update the table and its ``READ_ON`` date: nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from perfdeploy.errors import ConfigError

READ_ON = date(2026, 12, 2)  # when the tables below were last compared with their source pages
WARN_DAYS = 90  # within this many days of an end of support the gate warns (notice I9107)
TODAY_ENV = "PERFDEPLOY_TODAY"  # ISO date overriding "today" (tests pin it; try a future date with it)


@dataclass(frozen=True)
class Version:
    engine: str
    version: str
    end_of_support: date | None  # None: AWS has published no end-of-support date
    source: str


MSK_VERSIONS_SOURCE = "https://docs.aws.amazon.com/msk/latest/developerguide/supported-kafka-versions.html"
# 3.7.x: the MSK page listed no date when read; endoflife.date/amazon-msk (tracking the same page) gives
# 2026-09-01, so it is treated as ended.
_MSK = {
    "2.8.2-tiered": date(2025, 1, 14), "3.1.1": date(2024, 9, 11), "3.2.0": date(2024, 9, 11),
    "3.3.1": date(2024, 9, 11), "3.3.2": date(2024, 9, 11), "3.4.0": date(2025, 8, 4),
    "3.5.1": date(2025, 10, 23), "3.6.0": date(2026, 6, 1), "3.7.x": date(2026, 9, 1),
    "3.8.x": None, "3.9.x": None, "4.0.x": None, "4.1.x": None,
}
KAFKA_VERSIONS = {v: Version("kafka", v, end, MSK_VERSIONS_SOURCE) for v, end in _MSK.items()}

ELASTICACHE_SOURCE = "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/extended-support.html"
ELASTICACHE_VERSIONS_SOURCE = "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/engine-versions.html"
# Redis OSS 4 and 5: standard support ended 2026-01-31 (Extended Support, at extra cost, until 2029-01-31);
# Redis OSS 6: standard support ends 2027-01-31 (extended-support-charges.html). 7.x and Valkey: no date.
_CACHE = {
    ("redis", "4.0"): date(2026, 1, 31), ("redis", "5.0"): date(2026, 1, 31),
    ("redis", "6.0"): date(2027, 1, 31), ("redis", "6.2"): date(2027, 1, 31), ("redis", "6.x"): date(2027, 1, 31),
    ("redis", "7.0"): None, ("redis", "7.1"): None,
    ("valkey", "7.2"): None, ("valkey", "8.0"): None, ("valkey", "8.1"): None, ("valkey", "8.2"): None,
}
CACHE_VERSIONS = {key: Version(key[0], key[1], end, ELASTICACHE_SOURCE if end else ELASTICACHE_VERSIONS_SOURCE)
                  for key, end in _CACHE.items()}

# Availability Zone ids (the same physical zone in every account, unlike zone names).
MSK_ZONES_SOURCE = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
                    "aws-properties-msk-cluster-brokernodegroupinfo.html")
MSK_EXCLUDED_ZONE_IDS = frozenset({"use1-az3"})  # "Client subnets can't occupy the Availability Zone use1-az3"
MSK_CLIENT_SUBNETS = (2, 3)  # "you can specify either two or three subnets" (exactly two in us-west-1)
FARGATE_ZONES_SOURCE = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AWS_Fargate-Regions.html"
# Regions where Fargate runs Linux tasks in some zones only: region -> the zone ids it supports.
FARGATE_ZONE_IDS = {
    "us-west-1": frozenset({"usw1-az1", "usw1-az3"}),
    "ap-northeast-1": frozenset({"apne1-az1", "apne1-az2", "apne1-az4"}),
}


def today() -> date:
    """The date support is judged on: PERFDEPLOY_TODAY when set (ISO), else the system date."""
    given = os.environ.get(TODAY_ENV)
    if not given:
        return date.today()
    try:
        return date.fromisoformat(given)
    except ValueError:
        raise ConfigError(f"{given!r} is not an ISO date (YYYY-MM-DD)", field=TODAY_ENV) from None


def support_problem(version: Version | None, on: date) -> tuple[str, str] | None:
    """(severity, message) when a version is unknown, past its end of support, or within WARN_DAYS of it."""
    if version is None:
        return None
    if version.end_of_support is None:
        return None
    left = (version.end_of_support - on).days
    if left < 0:
        return ("error", f"{version.engine} {version.version} reached its end of support on "
                         f"{version.end_of_support} (source: {version.source})")
    if left <= WARN_DAYS:
        return ("warning", f"{version.engine} {version.version} reaches its end of support on "
                           f"{version.end_of_support}, in {left} days (source: {version.source})")
    return None


def cache_version(engine: str, version: str) -> Version | None:
    """The table row of an ElastiCache engine version ("7.0", "6.2", "8.1"; a patch level is ignored)."""
    major_minor = ".".join(str(version).split(".")[:2])
    return CACHE_VERSIONS.get((engine, major_minor))


def zone_id_prefix(region: str) -> str:
    """The prefix AWS gives a region's zone ids: us-east-1 -> use1, ap-northeast-1 -> apne1, us-gov-west-1 ->
    usgw1 (the country code, then one letter per word of the location, compass points abbreviated)."""
    parts = region.split("-")
    words = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c", "northeast": "ne",
             "northwest": "nw", "southeast": "se", "southwest": "sw"}
    return parts[0] + "".join(words.get(p, p[:1]) for p in parts[1:-1]) + parts[-1]
