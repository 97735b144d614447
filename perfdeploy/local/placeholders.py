"""Placeholder resources: the types perfdeploy's stacks use that moto's CloudFormation does not create.

Each placeholder is created on stack create, updated in place or replaced as its type's schema says
(updates.py), removed on stack delete, and answers
``Ref`` and ``Fn::GetAtt`` with a value shaped like the real one (an ARN where AWS gives an ARN, a host
name for an endpoint address, "6379" for a Redis port). Values are deterministic: the same stack name,
logical id and name property give the same values, so outputs are stable across updates and runs.

Nothing behind a placeholder exists: it is a stand-in so the templates deploy end to end, never a claim
about how AWS behaves. The emulator lists the live placeholders at ``GET /_perfdeploy/placeholders``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.common_models import CloudFormationModel
from moto.utilities.utils import get_partition

Value = Callable[["Placeholder"], Any]
_HEX = str.maketrans("ghijklmnopqrstuvwxyz", "0123456789abcdef0123")


@dataclass(frozen=True)
class Kind:
    """How one resource type names itself and what its Ref and Fn::GetAtt return."""

    type: str
    ref: Value
    attributes: dict[str, Value] = field(default_factory=dict)
    name_property: str = ""  # the property that names the resource, when the type has one
    lowercase: bool = False  # names AWS stores in lower case (ElastiCache)
    max_name: int = 255


class Placeholder:
    """One placeholder resource; mixed into one CloudFormationModel subclass per Kind (see ``_model``)."""

    kind: Kind

    def __init__(self, properties: dict[str, Any], account_id: str, region_name: str, stack_id: str,
                 logical_id: str):
        self.properties = properties
        self.account_id, self.region_name = account_id, region_name
        self.partition = get_partition(region_name)
        self.stack_id = stack_id
        self.stack_name = stack_id.split(":stack/")[-1].split("/")[0]
        self.logical_id = logical_id
        self.name = self._name()
        self.ref = self.kind.ref(self)  # fixed at creation: an update in place keeps the physical id

    # Deterministic building blocks ----------------------------------------------------------------

    def _stable_chars(self, length: int, lower: bool, *salt: str) -> str:
        """Random-looking but stable characters, like the suffixes AWS appends to generated names."""
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz" if lower else "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        text = "/".join((self.account_id, self.region_name, self.stack_name, self.logical_id, *salt))
        number = int(hashlib.sha256(text.encode()).hexdigest(), 16)
        chars = []
        for _ in range(length):
            number, index = divmod(number, len(alphabet))
            chars.append(alphabet[index])
        return "".join(chars)

    def suffix(self, length: int, lower: bool = False) -> str:
        return self._stable_chars(length, lower, "suffix", self.name)

    @property
    def uuid(self) -> str:
        return str(uuid.UUID(hex=self._stable_chars(32, True, "uuid", self.name).translate(_HEX)))

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region_name}:{self.account_id}:{resource}"

    def prop(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)

    @property
    def region_code(self) -> str:
        """us-east-1 -> use1, ap-southeast-2 -> apse2: the form in ElastiCache endpoint names."""
        area, direction, number = (self.region_name.split("-") + ["", ""])[:3]
        letters = "".join(w[0] for w in re.findall("north|south|east|west|central", direction))
        return f"{area}{letters}{number}"

    def _name(self) -> str:
        kind = self.kind
        given = self.properties.get(kind.name_property) if kind.name_property else None
        if given is None:
            # AWS generates stack-logicalid-SUFFIX; here the suffix depends on nothing random.
            base = f"{self.stack_name}-{self.logical_id}"[: kind.max_name - 13]
            given = f"{base}-{self._stable_chars(12, False, 'name')}"
        return str(given).lower() if kind.lowercase else str(given)

    # moto's CloudFormationModel interface ---------------------------------------------------------

    @property
    def physical_resource_id(self) -> str:
        return self.ref

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.kind.attributes

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.kind.attributes:
            raise UnformattedGetAttTemplateException()
        return self.kind.attributes[attribute_name](self)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Placeholder:
        resource = cls(cloudformation_json.get("Properties") or {}, account_id, region_name,
                       kwargs["StackId"], kwargs["LogicalId"])
        placeholder_backends[account_id][region_name].add(resource)
        return resource

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Placeholder, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> Placeholder:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id,
                                                   region_name, StackId=original_resource.stack_id,
                                                   LogicalId=original_resource.logical_id)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        placeholder_backends[account_id][region_name].remove_by_ref(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        placeholder_backends[account_id][region_name].remove(self)

    def describe(self) -> dict[str, Any]:
        return {"Type": self.kind.type, "StackName": self.stack_name, "LogicalResourceId": self.logical_id,
                "PhysicalResourceId": self.physical_resource_id, "Region": self.region_name,
                "Attributes": {a: self.get_cfn_attribute(a) for a in self.kind.attributes}}


class PlaceholderBackend(BaseBackend):
    """The live placeholders of one account and region; reset with the rest of moto's state."""

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.resources: dict[tuple[str, str], Placeholder] = {}

    def add(self, resource: Placeholder) -> None:
        self.resources[(resource.stack_id, resource.logical_id)] = resource

    def remove(self, resource: Placeholder) -> None:
        self.resources.pop((resource.stack_id, resource.logical_id), None)

    def remove_by_ref(self, ref: str) -> None:
        for key, resource in list(self.resources.items()):
            if resource.physical_resource_id == ref:
                del self.resources[key]


placeholder_backends = BackendDict(PlaceholderBackend, "cloudformation")


def placeholder_named(resource_type: str, name: str) -> Placeholder | None:
    """The live placeholder of that type and name (or physical id), in any account and region."""
    return next((r for _, _, backend in placeholder_backends.iter_backends() for r in backend.resources.values()
                 if r.kind.type == resource_type and name in (r.name, r.physical_resource_id)), None)


def live_placeholders() -> list[dict[str, Any]]:
    """Every placeholder that exists now, in every account and region."""
    return [r.describe() for _, _, backend in placeholder_backends.iter_backends()
            for r in backend.resources.values()]


# The kinds ------------------------------------------------------------------------------------------

def _same(name: str) -> Value:
    return lambda p: p.prop(name)


def _name(p: Placeholder) -> str:
    return p.name


def _cache_host(role: str) -> Value:
    return lambda p: f"{role}.{p.name}.{p.suffix(6, lower=True)}.{p.region_code}.cache.amazonaws.com"


def _redis_port(p: Placeholder) -> str:
    return str(p.prop("Port", 6379))


def _secret_arn(p: Placeholder) -> str:
    return p.arn("secretsmanager", f"secret:{p.name}-{p.suffix(6, lower=True)}")


def _msk_arn(kind: str) -> Value:
    return lambda p: p.arn("kafka", f"{kind}/{p.name}/{p.uuid}-2")


def _backup_plan_arn(p: Placeholder) -> str:
    return p.arn("backup", f"backup-plan:{p.uuid}")


def _sampling_rule_name(p: Placeholder) -> str:
    return (p.prop("SamplingRule") or {}).get("RuleName") or p.prop("RuleName") or p.name


def _scalable_target_id(p: Placeholder) -> str:
    return f"{p.prop('ResourceId')}|{p.prop('ScalableDimension')}|{p.prop('ServiceNamespace')}"


def _scaling_policy_arn(p: Placeholder) -> str:
    resource_id, _, namespace = (str(p.prop("ScalingTargetId") or "") + "||").split("|")[:3]
    resource_id = p.prop("ResourceId") or resource_id
    namespace = p.prop("ServiceNamespace") or namespace
    return p.arn("autoscaling", f"scalingPolicy:{p.uuid}:resource/{namespace}/{resource_id}:policyName/{p.name}")


def _web_acl_arn(p: Placeholder) -> str:
    return p.arn("wafv2", f"{str(p.prop('Scope', 'REGIONAL')).lower()}/webacl/{p.name}/{p.uuid}")


def _alarm_arn(p: Placeholder) -> str:
    return p.arn("cloudwatch", f"alarm:{p.name}")


def _read_endpoint(p: Placeholder, what: str) -> list[str]:
    replicas = int(p.prop("NumCacheClusters") or 1)
    if what == "Addresses":
        return [f"{p.name}-{i:03d}.{p.suffix(6, lower=True)}.{p.region_code}.cache.amazonaws.com"
                for i in range(1, replicas + 1)]
    return [_redis_port(p)] * replicas


KINDS: tuple[Kind, ...] = (
    Kind("AWS::SecretsManager::Secret", _secret_arn, {"Id": _secret_arn}, name_property="Name"),
    Kind("AWS::Logs::MetricFilter", _name, name_property="FilterName"),
    Kind("AWS::Logs::QueryDefinition", lambda p: p.uuid, {"QueryDefinitionId": lambda p: p.uuid}),
    Kind("AWS::Logs::SubscriptionFilter", _name, name_property="FilterName"),
    Kind("AWS::Backup::BackupVault", _name, {
        "BackupVaultName": _name,
        "BackupVaultArn": lambda p: p.arn("backup", f"backup-vault:{p.name}"),
    }, name_property="BackupVaultName"),
    Kind("AWS::Backup::BackupPlan", lambda p: p.uuid, {
        "BackupPlanId": lambda p: p.uuid,
        "BackupPlanArn": _backup_plan_arn,
        "VersionId": lambda p: p.suffix(32, lower=True),
    }),
    Kind("AWS::Backup::BackupSelection", lambda p: p.uuid, {
        "Id": lambda p: p.uuid,
        "SelectionId": lambda p: p.uuid,
        "BackupPlanId": _same("BackupPlanId"),
    }),
    Kind("AWS::MSK::Cluster", _msk_arn("cluster"), {
        "Arn": _msk_arn("cluster"),
        "CurrentVersion": lambda p: p.suffix(14),
    }, name_property="ClusterName"),
    Kind("AWS::MSK::Configuration", _msk_arn("configuration"), {
        "Arn": _msk_arn("configuration"),
        "LatestRevision.Revision": lambda p: "1",
        "LatestRevision.CreationTime": lambda p: "2024-01-01T00:00:00.000Z",
        "LatestRevision.Description": _same("Description"),
    }, name_property="Name"),
    Kind("AWS::ElastiCache::ReplicationGroup", _name, {
        "PrimaryEndPoint.Address": _cache_host("master"),
        "PrimaryEndPoint.Port": _redis_port,
        "ReaderEndPoint.Address": _cache_host("replica"),
        "ReaderEndPoint.Port": _redis_port,
        "ConfigurationEndPoint.Address": _cache_host("clustercfg"),
        "ConfigurationEndPoint.Port": _redis_port,
        "ReadEndPoint.Addresses": lambda p: ",".join(_read_endpoint(p, "Addresses")),
        "ReadEndPoint.Ports": lambda p: ",".join(_read_endpoint(p, "Ports")),
        "ReadEndPoint.Addresses.List": lambda p: _read_endpoint(p, "Addresses"),
        "ReadEndPoint.Ports.List": lambda p: _read_endpoint(p, "Ports"),
        "ReadEndPoint.AddressesList": lambda p: _read_endpoint(p, "Addresses"),
        "ReadEndPoint.PortsList": lambda p: _read_endpoint(p, "Ports"),
    }, name_property="ReplicationGroupId", lowercase=True, max_name=40),
    Kind("AWS::ElastiCache::SubnetGroup", _name, name_property="CacheSubnetGroupName", lowercase=True),
    # Ref: the user's / user group's id (issue 13: IAM authentication for the cache).
    Kind("AWS::ElastiCache::User", _name, {"Arn": lambda p: p.arn("elasticache", f"user:{p.name}")},
         name_property="UserId", lowercase=True),
    Kind("AWS::ElastiCache::UserGroup", _name, {"Arn": lambda p: p.arn("elasticache", f"usergroup:{p.name}")},
         name_property="UserGroupId", lowercase=True),
    # Ref: the secret's ARN; nothing rotates here (the emulator runs no rotation function).
    Kind("AWS::SecretsManager::RotationSchedule", _same("SecretId")),
    # Ref: the web ACL's ARN.
    Kind("AWS::WAFv2::LoggingConfiguration", _same("ResourceArn")),
    Kind("AWS::ElastiCache::ParameterGroup", _name, {"CacheParameterGroupName": _name}, lowercase=True),
    Kind("AWS::XRay::SamplingRule", lambda p: p.arn("xray", f"sampling-rule/{_sampling_rule_name(p)}"), {
        "RuleARN": lambda p: p.arn("xray", f"sampling-rule/{_sampling_rule_name(p)}"),
        "RuleName": _sampling_rule_name,
    }),
    Kind("AWS::XRay::Group", lambda p: p.arn("xray", f"group/{p.name}/{p.suffix(26)}"), {
        "GroupARN": lambda p: p.arn("xray", f"group/{p.name}/{p.suffix(26)}"),
    }, name_property="GroupName"),
    Kind("AWS::S3::BucketPolicy", lambda p: p.prop("Bucket")),
    Kind("AWS::WAFv2::WebACL", lambda p: f"{p.name}|{p.uuid}|{p.prop('Scope', 'REGIONAL')}", {
        "Arn": _web_acl_arn,
        "Id": lambda p: p.uuid,
        "LabelNamespace": lambda p: f"awswaf:{p.account_id}:webacl:{p.name}:",
        "Capacity": lambda p: len(p.prop("Rules") or []),
    }, name_property="Name"),
    Kind("AWS::WAFv2::WebACLAssociation", lambda p: f"{p.prop('ResourceArn')}|{p.prop('WebACLArn')}"),
    Kind("AWS::ECS::ClusterCapacityProviderAssociations", _same("Cluster")),
    Kind("AWS::ApplicationAutoScaling::ScalableTarget", _scalable_target_id, {"Id": _scalable_target_id}),
    Kind("AWS::ApplicationAutoScaling::ScalingPolicy", _scaling_policy_arn, {"Arn": _scaling_policy_arn},
         name_property="PolicyName"),
    Kind("AWS::SNS::Subscription", lambda p: f"{p.prop('TopicArn')}:{p.uuid}",
         {"Arn": lambda p: f"{p.prop('TopicArn')}:{p.uuid}"}),
    Kind("AWS::SNS::TopicPolicy", lambda p: p.name, {"Id": lambda p: p.name}),
    Kind("AWS::CloudWatch::Alarm", _name, {"Arn": _alarm_arn}, name_property="AlarmName"),
    Kind("AWS::CloudWatch::CompositeAlarm", _name, {"Arn": _alarm_arn}, name_property="AlarmName"),
    Kind("AWS::CertificateManager::Certificate", lambda p: p.arn("acm", f"certificate/{p.uuid}"),
         {"CertificateArn": lambda p: p.arn("acm", f"certificate/{p.uuid}")}),
)


def _model(kind: Kind) -> type[Placeholder]:
    """A CloudFormationModel for one kind. It must be a *direct* subclass of CloudFormationModel: moto
    builds its type map from ``CloudFormationModel.__subclasses__()``."""
    short = kind.type.split("::", 1)[1].replace("::", "")
    namespace = {
        "kind": kind,
        "cloudformation_type": staticmethod(lambda: kind.type),
        "cloudformation_name_type": staticmethod(lambda: kind.name_property),
    }
    return type(f"{short}Placeholder", (Placeholder, CloudFormationModel), namespace)  # type: ignore[return-value]


MODELS: dict[str, type[Placeholder]] = {kind.type: _model(kind) for kind in KINDS}
