"""Updates without replacement: the property changes the emulator makes to a live resource, keeping its id.

``update()`` applies every changed top-level property through the setter this module has for it (the
service's own API in moto: tags, a log group's retention, a table's point-in-time recovery, a security
group's rules, ...). A changed property with no setter fails the update naming the resource and the
property: the emulator never reports an update it did not make. Placeholders (placeholders.py) have
nothing behind them: their properties are simply the new ones.

For a few types moto's own CloudFormation update already changes the resource in place (ECS services,
listeners and their rules, KMS aliases, Lambda functions, inline IAM policies): it is used for their
other properties, and checked to keep the physical id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.dynamodb.models import dynamodb_backends
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource
from moto.ecr.models import ecr_backends
from moto.ecs.models import ecs_backends
from moto.elbv2.models import elbv2_backends
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.utilities.utils import get_partition

from perfdeploy.local import schemas
from perfdeploy.local.failures import ResourceFailed
from perfdeploy.local.placeholders import Placeholder

Setter = Callable[[Any, Any, Any, str, str], None]  # (resource, old value, new value, account, region)

# Types whose moto update_from_cloudformation_json changes the resource in place (read in moto 5.2.5).
MOTO_IN_PLACE = {
    "AWS::ECS::Service", "AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::ListenerRule",
    "AWS::KMS::Alias", "AWS::Lambda::Function", "AWS::IAM::Policy",
}


def tag_dict(tags: Any) -> dict[str, str]:
    """Tags as a template gives them: a Key/Value list, or (MSK and a few others) a map."""
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags or [] if isinstance(t, dict) and "Key" in t}


# Tags, per service --------------------------------------------------------------------------------

def _ec2_tags(r, old, new, a, g):
    ec2 = ec2_backends[a][g]
    gone = {k: None for k in old if k not in new}
    if gone:
        ec2.delete_tags([r.physical_resource_id], gone)
    if new:
        ec2.create_tags([r.physical_resource_id], new)


def _tagger(tag: Callable[[Any, dict[str, str], str, str], None],
            untag: Callable[[Any, list[str], str, str], None]) -> Setter:
    def set_tags(r, old, new, a, g):
        gone = [k for k in old if k not in new]
        if gone:
            untag(r, gone, a, g)
        if new:
            tag(r, new, a, g)
    return set_tags


def _as_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _dashboard_arn(r, a, g):
    return f"arn:{get_partition(g)}:cloudwatch::{a}:dashboard/{r.name}"


TAGGERS: dict[str, Setter] = {
    "AWS::DynamoDB::Table": _tagger(lambda r, t, a, g: dynamodb_backends[a][g].tag_resource(r.table_arn, t),
                                    lambda r, k, a, g: dynamodb_backends[a][g].untag_resource(r.table_arn, k)),
    "AWS::ECR::Repository": _tagger(lambda r, t, a, g: ecr_backends[a][g].tag_resource(r.arn, _as_list(t)),
                                    lambda r, k, a, g: ecr_backends[a][g].untag_resource(r.arn, k)),
    "AWS::ECS::Cluster": _tagger(lambda r, t, a, g: ecs_backends[a][g].tag_resource(r.arn, t),
                                 lambda r, k, a, g: ecs_backends[a][g].untag_resource(r.arn, k)),
    "AWS::ECS::Service": _tagger(lambda r, t, a, g: ecs_backends[a][g].tag_resource(r.arn, t),
                                 lambda r, k, a, g: ecs_backends[a][g].untag_resource(r.arn, k)),
    "AWS::ECS::TaskDefinition": _tagger(lambda r, t, a, g: ecs_backends[a][g].tag_resource(r.arn, t),
                                        lambda r, k, a, g: ecs_backends[a][g].untag_resource(r.arn, k)),
    "AWS::IAM::Role": _tagger(
        lambda r, t, a, g: iam_backends[a][get_partition(g)].tag_role(r.name, _as_list(t)),
        lambda r, k, a, g: iam_backends[a][get_partition(g)].untag_role(r.name, k)),
    "AWS::KMS::Key": _tagger(
        lambda r, t, a, g: kms_backends[a][g].tag_resource(r.id, t),
        lambda r, k, a, g: kms_backends[a][g].untag_resource(r.id, k)),
    "AWS::Lambda::Function": _tagger(lambda r, t, a, g: setattr(r, "tags", {**tag_dict(r.tags), **t}),
                                     lambda r, k, a, g: setattr(r, "tags", {key: v for key, v in
                                                                            tag_dict(r.tags).items()
                                                                            if key not in k})),
    "AWS::Logs::LogGroup": _tagger(lambda r, t, a, g: logs_backends[a][g].tag_log_group(r.name, t),
                                   lambda r, k, a, g: logs_backends[a][g].untag_log_group(r.name, k)),
    "AWS::S3::Bucket": lambda r, old, new, a, g: s3_backends[a][get_partition(g)].put_bucket_tagging(r.name, new),
    "AWS::SNS::Topic": _tagger(lambda r, t, a, g: sns_backends[a][g].tag_resource(r.arn, t),
                               lambda r, k, a, g: sns_backends[a][g].untag_resource(r.arn, k)),
    "AWS::CloudWatch::Dashboard": _tagger(
        lambda r, t, a, g: cloudwatch_backends[a][g].tagger.tag_resource(_dashboard_arn(r, a, g), _as_list(t)),
        lambda r, k, a, g: cloudwatch_backends[a][g].tagger.untag_resource_using_names(_dashboard_arn(r, a, g), k)),
    **{t: _tagger(lambda r, tags, a, g: elbv2_backends[a][g].add_tags([r.arn], _as_list(tags)),
                  lambda r, k, a, g: elbv2_backends[a][g].remove_tags([r.arn], k))
       for t in ("AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup",
                 "AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::ListenerRule")},
}


def _set_tags(r, old, new, a, g):
    tagger = TAGGERS.get(r.cf_resource_type) or (_ec2_tags if isinstance(r, TaggedEC2Resource) else None)
    if tagger is None:
        raise _Unsupported("Tags")
    tagger(r, tag_dict(old), tag_dict(new), a, g)


# Other properties, per type ---------------------------------------------------------------------

def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _iam(a: str, g: str) -> Any:
    return iam_backends[a][get_partition(g)]


def _role_policies(r, old, new, a, g):
    old_names = {p["PolicyName"] for p in old or []}
    new_policies = {p["PolicyName"]: p["PolicyDocument"] for p in new or []}
    for name in old_names - set(new_policies):
        _iam(a, g).delete_role_policy(r.name, name)
    for name, document in new_policies.items():
        _iam(a, g).put_role_policy(r.name, name, _json_text(document))


def _role_managed(r, old, new, a, g):
    for arn in set(old or []) - set(new or []):
        _iam(a, g).detach_role_policy(arn, r.name)
    for arn in set(new or []) - set(old or []):
        _iam(a, g).attach_role_policy(arn, r.name)


def _role_boundary(r, old, new, a, g):
    if new:
        _iam(a, g).put_role_permissions_boundary(r.name, new)
    else:
        _iam(a, g).delete_role_permissions_boundary(r.name)


def _log_retention(r, old, new, a, g):
    if new is None:
        logs_backends[a][g].delete_retention_policy(r.name)
    else:
        logs_backends[a][g].put_retention_policy(r.name, int(new))


def _table_pitr(r, old, new, a, g):
    enabled = str((new or {}).get("PointInTimeRecoveryEnabled", False)).lower() == "true"
    dynamodb_backends[a][g].update_continuous_backups(r.name, {"PointInTimeRecoveryEnabled": enabled})


def _attribute(name: str) -> Setter:
    def set_attribute(r, old, new, a, g):
        setattr(r, name, new)
    return set_attribute


def _kms_rotation(r, old, new, a, g):
    kms = kms_backends[a][g]
    (kms.enable_key_rotation if str(new).lower() == "true" else kms.disable_key_rotation)(r.id)


def _kms_enabled(r, old, new, a, g):
    kms = kms_backends[a][g]
    (kms.disable_key if str(new).lower() == "false" else kms.enable_key)(r.id)


def _group_rules(egress: bool) -> Setter:
    """The group's inline rules: the old ones revoked, the new ones authorized (rules that separate
    SecurityGroupIngress/Egress resources added stay)."""

    def set_rules(r, old, new, a, g):
        from perfdeploy.local.native import _rule_arguments

        ec2 = ec2_backends[a][g]
        revoke = ec2.revoke_security_group_egress if egress else ec2.revoke_security_group_ingress
        authorize = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
        for rule in old or []:
            if rule not in (new or []):
                revoke(**_rule_arguments({**rule, "GroupId": r.id}, egress))
        for rule in new or []:
            if rule not in (old or []):
                authorize(**_rule_arguments({**rule, "GroupId": r.id}, egress))
    return set_rules


def _vpc_attribute(name: str) -> Setter:
    def set_attribute(r, old, new, a, g):
        ec2_backends[a][g].modify_vpc_attribute(r.id, name, str(new).lower() == "true")
    return set_attribute


def _subnet_public_ip(r, old, new, a, g):
    ec2_backends[a][g].modify_subnet_attribute(r.id, "map_public_ip_on_launch", str(new).lower())


def _lb_attributes(r, old, new, a, g):
    elbv2_backends[a][g].modify_load_balancer_attributes(r.arn, {i["Key"]: i["Value"] for i in new or []})


def _tg_attributes(r, old, new, a, g):
    elbv2_backends[a][g].modify_target_group_attributes(r.arn, {i["Key"]: i["Value"] for i in new or []})


def _dashboard_body(r, old, new, a, g):
    cloudwatch_backends[a][g].put_dashboard(r.name, _json_text(new))


def _topic_attribute(name: str) -> Setter:
    def set_attribute(r, old, new, a, g):
        sns_backends[a][g].set_topic_attribute(r.arn, name, "" if new is None else str(new))
    return set_attribute


def _repository(r, old, new, a, g):
    """EmptyOnDelete is CloudFormation's own: it decides what the repository's delete does (native.py)."""


SETTERS: dict[str, dict[str, Setter]] = {
    "AWS::IAM::Role": {
        "AssumeRolePolicyDocument": lambda r, o, n, a, g: _iam(a, g).update_assume_role_policy(r.name,
                                                                                              _json_text(n)),
        "Policies": _role_policies,
        "ManagedPolicyArns": _role_managed,
        "PermissionsBoundary": _role_boundary,
        "Description": lambda r, o, n, a, g: _iam(a, g).update_role_description(r.name, n or ""),
        "MaxSessionDuration": _attribute("max_session_duration"),
    },
    "AWS::Logs::LogGroup": {"RetentionInDays": _log_retention, "KmsKeyId": _attribute("kms_key_id")},
    "AWS::DynamoDB::Table": {
        "PointInTimeRecoverySpecification": _table_pitr,
        "DeletionProtectionEnabled": _attribute("deletion_protection_enabled"),
    },
    "AWS::KMS::Key": {
        "EnableKeyRotation": _kms_rotation,
        "Enabled": _kms_enabled,
        "KeyPolicy": lambda r, o, n, a, g: kms_backends[a][g].put_key_policy(r.id, _json_text(n)),
        "Description": lambda r, o, n, a, g: kms_backends[a][g].update_key_description(r.id, n or ""),
        "PendingWindowInDays": lambda r, o, n, a, g: None,  # used only when the key is scheduled for deletion
    },
    "AWS::EC2::SecurityGroup": {"SecurityGroupIngress": _group_rules(False),
                                "SecurityGroupEgress": _group_rules(True)},
    "AWS::EC2::VPC": {"EnableDnsHostnames": _vpc_attribute("enable_dns_hostnames"),
                      "EnableDnsSupport": _vpc_attribute("enable_dns_support")},
    "AWS::EC2::Subnet": {"MapPublicIpOnLaunch": _subnet_public_ip},
    "AWS::ElasticLoadBalancingV2::LoadBalancer": {
        "LoadBalancerAttributes": _lb_attributes,
        "SecurityGroups": lambda r, o, n, a, g: elbv2_backends[a][g].set_security_groups(r.arn, list(n or [])),
    },
    "AWS::ElasticLoadBalancingV2::TargetGroup": {"TargetGroupAttributes": _tg_attributes},
    "AWS::CloudWatch::Dashboard": {"DashboardBody": _dashboard_body},
    "AWS::SNS::Topic": {"DisplayName": _topic_attribute("DisplayName"),
                        "KmsMasterKeyId": _topic_attribute("KmsMasterKeyId")},
    "AWS::ECR::Repository": {"EmptyOnDelete": _repository},
    "AWS::ECS::Cluster": {"ClusterSettings": _attribute("settings"), "Configuration": _attribute("configuration")},
}


class _Unsupported(Exception):
    def __init__(self, prop: str):
        self.prop = prop
        super().__init__(prop)


def update(resource: Any, resource_type: str, logical_id: str, before: dict[str, Any], after: dict[str, Any],
           account: str, region: str) -> Any:
    """Apply ``before`` -> ``after`` to the live resource in place; returns it (moto may hand back another
    object for the same physical resource). Fails naming the property it cannot change."""
    changed = schemas.changed_properties(before, after)
    if isinstance(resource, Placeholder):
        resource.properties = dict(after)
        return resource
    setters = SETTERS.get(resource_type, {})
    by_moto = resource_type in MOTO_IN_PLACE
    unsupported = [p for p in changed if p != "Tags" and p not in setters and not by_moto]
    if unsupported:
        raise ResourceFailed(logical_id, resource_type, _cannot(unsupported))
    try:
        for prop in changed:
            if prop == "Tags":
                _set_tags(resource, before.get("Tags"), after.get("Tags"), account, region)
            elif prop in setters:
                setters[prop](resource, before.get(prop), after.get(prop), account, region)
    except _Unsupported as exc:
        raise ResourceFailed(logical_id, resource_type, _cannot([exc.prop])) from exc
    if by_moto and any(p != "Tags" and p not in setters for p in changed):
        updated = type(resource).update_from_cloudformation_json(
            original_resource=resource, new_resource_name=getattr(resource, "name", logical_id),
            cloudformation_json={"Type": resource_type, "Properties": dict(after)}, account_id=account,
            region_name=region)
        if updated is None or updated.physical_resource_id != resource.physical_resource_id:
            raise ResourceFailed(logical_id, resource_type, "the local emulator (moto) replaced the resource "
                                                            "where AWS updates it in place")
        updated.cf_resource_type, updated.logical_resource_id = resource_type, logical_id
        return updated
    return resource


def _cannot(properties: list[str]) -> str:
    return (f"the local emulator cannot update {', '.join(properties)} in place (AWS would, keeping the "
            "resource); change it on AWS, or delete and re-create the stack locally")


# Properties moto's create ignores (read in moto 5.2.5): set right after the create, as AWS creates them.
IGNORED_ON_CREATE = {
    "AWS::Logs::LogGroup": ("KmsKeyId",),
    "AWS::EC2::VPC": ("EnableDnsHostnames", "EnableDnsSupport"),
    "AWS::SNS::Topic": ("Tags",),
}


def complete_create(resource: Any, resource_type: str, logical_id: str, properties: dict[str, Any],
                    account: str, region: str) -> Any:
    """Apply the properties moto's create ignored, so the resource is what the template says."""
    given = {p: properties[p] for p in IGNORED_ON_CREATE.get(resource_type, ()) if p in properties}
    if not given:
        return resource
    return update(resource, resource_type, logical_id, {}, given, account, region)
