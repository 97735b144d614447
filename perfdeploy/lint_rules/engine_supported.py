from cfnlint.rules import CloudFormationLintRule, RuleMatch

from perfdeploy import aws_support
from perfdeploy.lint_rules._env import listify, resources


def engine_versions(template: dict):
    """(path, table row or None, literal) for every Kafka and ElastiCache engine version a template sets."""
    for lid, rtype, props, _ in resources(template):
        if rtype == "AWS::MSK::Cluster" and isinstance(props.get("KafkaVersion"), str):
            yield ["Resources", lid, "Properties", "KafkaVersion"], aws_support.KAFKA_VERSIONS.get(
                props["KafkaVersion"]), f"Kafka {props['KafkaVersion']}"
        elif rtype == "AWS::MSK::Configuration":
            for version in listify(props.get("KafkaVersionsList", [])):
                if isinstance(version, str):
                    yield ["Resources", lid, "Properties", "KafkaVersionsList"], aws_support.KAFKA_VERSIONS.get(
                        version), f"Kafka {version}"
        elif rtype in ("AWS::ElastiCache::ReplicationGroup", "AWS::ElastiCache::CacheCluster"):
            engine, version = str(props.get("Engine", "redis")).lower(), props.get("EngineVersion")
            if isinstance(version, str):
                yield ["Resources", lid, "Properties", "EngineVersion"], aws_support.cache_version(
                    engine, version), f"ElastiCache {engine} {version}"


def matches(rule, template: dict, severity: str) -> list:
    today = aws_support.today()
    found = []
    for path, row, what in engine_versions(template):
        if row is None:
            if severity == "error":
                found.append(RuleMatch(path, f"{what} is not in perfdeploy/aws_support.py's table of versions "
                                             f"AWS supports (read on {aws_support.READ_ON})"))
            continue
        problem = aws_support.support_problem(row, today)
        if problem and problem[0] == severity:
            found.append(RuleMatch(path, problem[1]))
    return found


class EngineSupported(CloudFormationLintRule):
    """AWS upgrades (MSK: without notice) or bills Extended Support for engines past their end of support."""

    id = "E9106"
    shortdesc = "Engine versions AWS still supports"
    description = ("Kafka (MSK) and ElastiCache engine versions are in the dated table in perfdeploy/aws_support.py "
                   "and not past their end of support")
    source_url = "https://docs.aws.amazon.com/msk/latest/developerguide/version-support.html"
    tags = ["perfdeploy", "versions"]

    def match(self, cfn):
        return matches(self, cfn.template, "error")
