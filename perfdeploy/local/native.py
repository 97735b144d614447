"""Fixes to resource types moto does implement, where its CloudFormation support is broken or missing
a piece perfdeploy's templates rely on. Each function fixes one thing; ``apply()`` runs them all."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.ec2.models.security_groups import SecurityGroupIngress
from moto.ec2.models.subnets import Subnet, SubnetRouteTableAssociation
from moto.ecr.models import ecr_backends
from moto.ecs.models import ecs_backends
from moto.elbv2.models import elbv2_backends
from moto.kms.models import Key
from moto.utilities.utils import get_partition


def kms_key_from_template() -> None:
    """CloudFormation gives KeyPolicy as a JSON object and Tags as Key/Value; moto's KMS wants a policy
    string (describe_key fails on a dict) and TagKey/TagValue (create fails), and lacks Fn::GetAtt KeyId."""
    create = Key.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                        **kwargs):
        properties = dict(cloudformation_json.get("Properties") or {})
        policy = properties.get("KeyPolicy")
        properties["KeyPolicy"] = json.dumps(policy) if isinstance(policy, dict) else policy
        properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties.get("Tags", [])]
        key = create(cls, resource_name, {**cloudformation_json, "Properties": properties}, account_id,
                     region_name, **kwargs)
        if "KeySpec" in properties or "KeyUsage" in properties:
            key.key_spec = properties.get("KeySpec", key.key_spec)
            key.key_usage = properties.get("KeyUsage", key.key_usage)
        return key

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return self.arn
        if attribute_name == "KeyId":
            return self.id
        raise UnformattedGetAttTemplateException()

    Key.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    Key.has_cfn_attr = classmethod(lambda cls, attr: attr in ("Arn", "KeyId"))
    Key.get_cfn_attribute = get_cfn_attribute


# Fn::GetAtt attributes moto's types lack (or answer with NotImplementedError / AttributeError).
ATTRIBUTES: dict[str, dict[str, Callable[[Any], Any]]] = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": {
        "LoadBalancerFullName": lambda r: r.arn.split(":loadbalancer/", 1)[1],
        "LoadBalancerArn": lambda r: r.arn,
        "SecurityGroups": lambda r: list(r.security_groups),
        "CanonicalHostedZoneID": lambda r: "Z35SXDOTRQ7X7K",  # us-east-1's ALB zone; a placeholder elsewhere
    },
    "AWS::ElasticLoadBalancingV2::TargetGroup": {
        "TargetGroupFullName": lambda r: r.arn.rsplit(":", 1)[1],
        "TargetGroupName": lambda r: r.name,
        "TargetGroupArn": lambda r: r.arn,
        "LoadBalancerArns": lambda r: list(r.load_balancer_arns),
    },
    "AWS::ElasticLoadBalancingV2::Listener": {"ListenerArn": lambda r: r.arn},
    "AWS::EC2::Subnet": {
        "SubnetId": lambda r: r.id,
        "AvailabilityZone": lambda r: r.availability_zone,
        "AvailabilityZoneId": lambda r: r.availability_zone_id,
        "CidrBlock": lambda r: r.cidr_block,
        "VpcId": lambda r: r.vpc_id,
    },
    "AWS::EC2::SecurityGroup": {"Id": lambda r: r.id, "VpcId": lambda r: r.vpc_id},
    "AWS::EC2::InternetGateway": {"InternetGatewayId": lambda r: r.id},
    "AWS::EC2::RouteTable": {"RouteTableId": lambda r: r.id},
    "AWS::EC2::SubnetRouteTableAssociation": {"Id": lambda r: r.association_id},
    "AWS::EC2::EIP": {"PublicIp": lambda r: r.public_ip},
    "AWS::EC2::NatGateway": {"NatGatewayId": lambda r: r.id},
    "AWS::EC2::VPCEndpoint": {"Id": lambda r: r.id, "DnsEntries": lambda r: [], "NetworkInterfaceIds": lambda r: []},
    "AWS::EC2::FlowLog": {"Id": lambda r: r.id},
    "AWS::IAM::Policy": {"Id": lambda r: r.physical_resource_id},
    "AWS::ECS::TaskDefinition": {"TaskDefinitionArn": lambda r: r.arn},
    "AWS::ECS::Service": {"ServiceArn": lambda r: r.arn},
    "AWS::SNS::Topic": {"TopicArn": lambda r: r.arn},
}


def missing_attributes() -> None:
    for resource_type, attributes in ATTRIBUTES.items():
        model = parsing.get_model_map()[resource_type]
        original_get = getattr(model, "get_cfn_attribute", None)
        original_has = model.has_cfn_attr.__func__

        def get_cfn_attribute(self, attribute_name, _own=attributes, _get=original_get):
            if attribute_name in _own:
                return _own[attribute_name](self)
            if _get is None:
                raise UnformattedGetAttTemplateException()
            return _get(self, attribute_name)

        def has_cfn_attr(cls, attr, _own=attributes, _has=original_has):
            return attr in _own or _has(cls, attr)

        model.get_cfn_attribute = get_cfn_attribute
        model.has_cfn_attr = classmethod(has_cfn_attr)


def _rule_arguments(properties: dict[str, Any], egress: bool) -> dict[str, Any]:
    other_group = properties.get("DestinationSecurityGroupId" if egress else "SourceSecurityGroupId")
    cidr = properties.get("CidrIp")
    return {
        "group_name_or_id": properties.get("GroupId") or properties.get("GroupName"),
        "ip_protocol": str(properties["IpProtocol"]),
        "from_port": properties.get("FromPort"),
        "to_port": properties.get("ToPort"),
        "ip_ranges": [{"CidrIp": cidr, "Description": properties.get("Description")}] if cidr else [],
        "source_groups": [{"GroupId": other_group}] if other_group else [],
        "prefix_list_ids": ([{"PrefixListId": properties["DestinationPrefixListId"]}]
                            if properties.get("DestinationPrefixListId") else []),
    }


class SecurityGroupRuleResource:
    """AWS::EC2::SecurityGroupIngress / Egress as real rules on the group: Ref gives the rule id (sgr-...),
    and deleting the resource revokes the rule. moto has no Egress type at all, and its Ingress has no Ref
    and is never revoked."""

    egress: bool

    def __init__(self, rule_id: str, group_id: str):
        self.rule_id, self.group_id = rule_id, group_id

    @property
    def physical_resource_id(self) -> str:
        return self.rule_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Id", "GroupId")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Id":
            return self.rule_id
        if attribute_name == "GroupId":
            return self.group_id
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                        **kwargs):
        backend = ec2_backends[account_id][region_name]
        authorize = (backend.authorize_security_group_egress if cls.egress
                     else backend.authorize_security_group_ingress)
        rules, group = authorize(**_rule_arguments(cloudformation_json["Properties"], cls.egress))
        return cls(rules[0].id, group.id)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id,
                                                   region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        if not any(self.group_id in groups for groups in backend.groups.values()):
            return  # the group went first; its rules went with it
        revoke = backend.revoke_security_group_egress if self.egress else backend.revoke_security_group_ingress
        revoke(self.group_id, None, None, None, [], security_rule_ids=[self.rule_id])


class SecurityGroupEgressModel(SecurityGroupRuleResource, CloudFormationModel):
    egress = True
    cloudformation_type = staticmethod(lambda: "AWS::EC2::SecurityGroupEgress")
    cloudformation_name_type = staticmethod(lambda: "")


def security_group_rules() -> None:
    """Ingress rules get the same behaviour as the Egress type added above."""
    for name in ("physical_resource_id", "has_cfn_attr", "get_cfn_attribute", "create_from_cloudformation_json",
                 "update_from_cloudformation_json", "delete", "__init__"):
        setattr(SecurityGroupIngress, name, SecurityGroupRuleResource.__dict__[name])
    SecurityGroupIngress.egress = False


def subnet_route_table_association() -> None:
    """moto records the association outside the route table (describe_route_tables does not show it) and
    its Ref gives the route table id; AWS's Ref is the association id (rtbassoc-...)."""

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                        **kwargs):
        properties = cloudformation_json["Properties"]
        association = cls(properties["RouteTableId"], properties["SubnetId"])
        association.association_id = ec2_backends[account_id][region_name].associate_route_table(
            properties["RouteTableId"], subnet_id=properties["SubnetId"])
        return association

    def delete(self, account_id: str, region_name: str) -> None:
        ec2_backends[account_id][region_name].disassociate_route_table(self.association_id)

    SubnetRouteTableAssociation.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    SubnetRouteTableAssociation.physical_resource_id = property(lambda self: self.association_id)
    SubnetRouteTableAssociation.delete = delete


def subnet_by_zone_id() -> None:
    """moto's AWS::EC2::Subnet reads AvailabilityZone only: a subnet placed by AvailabilityZoneId landed in
    the region's first zone, whatever the template said. Its create_subnet takes the zone id; pass it."""
    create = Subnet.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                        **kwargs):
        properties = cloudformation_json.get("Properties") or {}
        if "AvailabilityZoneId" not in properties:
            return create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        subnet = ec2_backends[account_id][region_name].create_subnet(
            vpc_id=properties["VpcId"], cidr_block=properties["CidrBlock"],
            availability_zone_id=properties["AvailabilityZoneId"])
        for tag in properties.get("Tags", []):
            subnet.add_tag(tag["Key"], tag["Value"])
        return subnet

    Subnet.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


# Deletion for the types moto creates but never deletes: without these, a deleted stack would leave its
# VPC pieces, listeners and ECS resources behind, and the VPC itself could not go.
Deleter = Callable[[Any, str, str], None]


def _ec2(account_id: str, region_name: str) -> Any:
    return ec2_backends[account_id][region_name]


DELETERS: dict[str, Deleter] = {
    "AWS::EC2::InternetGateway": lambda r, a, g: _ec2(a, g).delete_internet_gateway(r.id),
    "AWS::EC2::VPCGatewayAttachment": lambda r, a, g: (
        _ec2(a, g).detach_internet_gateway(r.gateway_id, r.vpc_id) if r.gateway_id.startswith("igw-")
        else _ec2(a, g).detach_vpn_gateway(r.gateway_id, r.vpc_id)),
    "AWS::EC2::RouteTable": lambda r, a, g: _ec2(a, g).delete_route_table(r.id),
    "AWS::EC2::Route": lambda r, a, g: _ec2(a, g).delete_route(r.route_table.id, r.destination_cidr_block),
    "AWS::EC2::EIP": lambda r, a, g: _ec2(a, g).release_address(address=r.public_ip),
    "AWS::EC2::NatGateway": lambda r, a, g: _ec2(a, g).delete_nat_gateway(r.id),
    "AWS::EC2::VPCEndpoint": lambda r, a, g: _ec2(a, g).delete_vpc_endpoints([r.id]),
    "AWS::EC2::FlowLog": lambda r, a, g: _ec2(a, g).delete_flow_logs([r.id]),
    "AWS::ElasticLoadBalancingV2::TargetGroup": lambda r, a, g: elbv2_backends[a][g].delete_target_group(r.arn),
    "AWS::ElasticLoadBalancingV2::Listener": lambda r, a, g: elbv2_backends[a][g].delete_listener(r.arn),
    "AWS::ECS::Service": lambda r, a, g: ecs_backends[a][g].delete_service(r.cluster_name, r.name, force=True),
    "AWS::ECS::TaskDefinition": lambda r, a, g: ecs_backends[a][g].deregister_task_definition(r.arn),
    "AWS::ECS::Cluster": lambda r, a, g: ecs_backends[a][g].delete_cluster(r.name),
    "AWS::ECR::Repository": lambda r, a, g: ecr_backends[a][g].delete_repository(
        r.name, force=str((getattr(r, "cfn_properties", None) or {}).get("EmptyOnDelete")).lower() == "true"),
}


def delete_resource(resource: Any, account_id: str, region_name: str) -> bool:
    """Delete with our deleter when the type has one; False when moto's own deletion should run.

    A resource already gone counts as deleted, as CloudFormation counts it (a route goes with its table)."""
    deleter = DELETERS.get(getattr(resource, "cf_resource_type", ""))
    if deleter is None:
        return False
    try:
        deleter(resource, account_id, region_name)
    except Exception as exc:  # noqa: BLE001
        if "NotFound" not in str(getattr(exc, "code", "")):
            raise
    return True


def certificates_of_the_account() -> None:
    """staging and prod name an ACM certificate that exists only in their AWS account; moto's listeners refuse
    a certificate its own ACM does not hold. Accept any ACM certificate ARN of the emulator's own account
    and region as a placeholder certificate (still refused: another account's or region's)."""
    from moto.acm.models import CertificateNotFound, acm_backends
    from moto.elbv2 import models as elbv2_models
    from moto.elbv2.models import ELBv2Backend

    register = elbv2_models.register_certificate
    exists = ELBv2Backend._certificate_exists

    def ours(account_id: str, region: str, arn: str) -> bool:
        return arn.startswith(f"arn:{get_partition(region)}:acm:{region}:{account_id}:certificate/")

    def register_certificate(account_id: str, region: str, arn_certificate: str, arn_user: str) -> None:
        try:
            acm_backends[account_id][region].get_certificate(arn_certificate)
        except CertificateNotFound:
            if ours(account_id, region, arn_certificate):
                return
        register(account_id=account_id, region=region, arn_certificate=arn_certificate, arn_user=arn_user)

    def _certificate_exists(self: ELBv2Backend, certificate_arn: str) -> bool:
        return ours(self.account_id, self.region_name, certificate_arn) or exists(self, certificate_arn)

    elbv2_models.register_certificate = register_certificate
    ELBv2Backend._certificate_exists = _certificate_exists


def intrinsic_functions() -> None:
    """Fn::GetAZs "" means the stack's region (moto always answered us-east-1's zones). Fn::GetAtt of a
    dotted attribute (Redis.PrimaryEndPoint.Address, also inside Fn::Sub) splits at the first dot only
    (moto split at every dot and asked for "PrimaryEndPoint")."""
    clean_json = parsing.clean_json

    def fixed_clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAZs" in resource_json:
            region = clean_json(resource_json["Fn::GetAZs"], resources_map) or resources_map["AWS::Region"]
            account = resources_map["AWS::AccountId"]
            zones = ec2_backends[account][region].describe_availability_zones()
            return sorted(zone.name for zone in zones)
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            return get_att(resource_json["Fn::GetAtt"], resources_map)
        return clean_json(resource_json, resources_map)

    def get_att(target: Any, resources_map: Any) -> Any:
        """moto answered an attribute it lacks with a warning and the unresolved {"Fn::GetAtt": ...} as the
        value (a bogus output, silently); here it fails the stack."""
        if isinstance(target, str):
            target = target.split(".", 1)
        name = target[0]
        attribute = ".".join(str(part) for part in parsing.clean_json(target[1:], resources_map))
        resource = resources_map.get(name)
        if resource is None:
            raise ValidationError(message=f"Template error: instance of Fn::GetAtt references undefined resource "
                                          f"{name}")
        try:
            return resource.get_cfn_attribute(attribute)
        except (NotImplementedError, UnformattedGetAttTemplateException, AttributeError) as exc:
            raise ValidationError(message=f"Template error: resource {name} does not support attribute type "
                                          f"{attribute} in Fn::GetAtt (in the local emulator)") from exc

    parsing.clean_json = fixed_clean_json


def apply() -> None:
    missing_attributes()
    certificates_of_the_account()
    kms_key_from_template()
    security_group_rules()
    subnet_route_table_association()
    subnet_by_zone_id()
    intrinsic_functions()
