"""network: VPC, public and private subnets per AZ, internet and NAT gateways, routes, flow logs,
gateway endpoints, and the security groups of the ALB, the tasks, Kafka and Redis.

Security groups reference each other (ALB -> tasks -> Kafka/Redis), so cross-group rules are separate
ingress/egress resources: no group depends on another's creation order.
"""

from __future__ import annotations

from awacs import logs as logs_actions
from awacs import sts
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from troposphere import AccountId, GetAtt, Join, Ref, Sub, Template
from troposphere.ec2 import (
    EIP,
    VPC,
    FlowLog,
    InternetGateway,
    NatGateway,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupEgress,
    SecurityGroupIngress,
    Subnet,
    SubnetRouteTableAssociation,
    VPCEndpoint,
    VPCGatewayAttachment,
)
from troposphere.iam import Policy, Role

from perfdeploy.blueprints.base import Blueprint, Input, log_group, output, tags
from perfdeploy.config import EnvConfig

KAFKA_PORTS = {9094: "Kafka TLS", 9098: "Kafka IAM over TLS"}
REDIS_PORT = 6379
HTTPS, HTTP = 443, 80


def vpc(cfg: EnvConfig) -> VPC:
    return VPC("Vpc", CidrBlock=cfg.network.vpc_cidr, EnableDnsSupport=True, EnableDnsHostnames=True,
               Tags=tags(cfg, cfg.resource_name("vpc")))


def subnet(cfg: EnvConfig, tier: str, index: int, cidr: str) -> Subnet:
    """A subnet in the configured zone *id*: GetAZs returns zone names, which map to different physical zones
    in every account, so a name cannot keep MSK out of a zone it refuses (use1-az3)."""
    return Subnet(
        f"{tier}Subnet{index + 1}",
        VpcId=Ref("Vpc"),
        CidrBlock=cidr,
        AvailabilityZoneId=cfg.network.zones()[index],
        MapPublicIpOnLaunch=False,
        Tags=tags(cfg, cfg.resource_name(f"{tier.lower()}-{index + 1}"), Tier=tier.lower()),
    )


def internet_gateway(cfg: EnvConfig) -> list:
    return [
        InternetGateway("InternetGateway", Tags=tags(cfg, cfg.resource_name("igw"))),
        VPCGatewayAttachment("InternetGatewayAttachment", VpcId=Ref("Vpc"), InternetGatewayId=Ref("InternetGateway")),
    ]


def public_routes(cfg: EnvConfig, azs: int) -> list:
    resources: list = [
        RouteTable("PublicRouteTable", VpcId=Ref("Vpc"), Tags=tags(cfg, cfg.resource_name("public-rt"))),
        Route("PublicDefaultRoute", RouteTableId=Ref("PublicRouteTable"), DestinationCidrBlock="0.0.0.0/0",
              GatewayId=Ref("InternetGateway"), DependsOn="InternetGatewayAttachment"),
    ]
    resources += [SubnetRouteTableAssociation(f"PublicSubnet{i + 1}RouteTableAssociation",
                                              SubnetId=Ref(f"PublicSubnet{i + 1}"),
                                              RouteTableId=Ref("PublicRouteTable")) for i in range(azs)]
    return resources


def nat_gateways(cfg: EnvConfig) -> list:
    """One NAT gateway in dev (cost), one per AZ elsewhere (an AZ outage must not cut egress)."""
    resources: list = []
    for i in range(cfg.network.nat_gateways):
        n = i + 1
        resources.append(EIP(f"NatEip{n}", Domain="vpc", Tags=tags(cfg, cfg.resource_name(f"nat-eip-{n}")),
                             DependsOn="InternetGatewayAttachment"))
        resources.append(NatGateway(f"NatGateway{n}", AllocationId=GetAtt(f"NatEip{n}", "AllocationId"),
                                    SubnetId=Ref(f"PublicSubnet{n}"), Tags=tags(cfg, cfg.resource_name(f"nat-{n}"))))
    return resources


def private_routes(cfg: EnvConfig, azs: int) -> list:
    single = cfg.network.nat == "single"
    resources: list = []
    for i in range(azs):
        n = i + 1
        resources += [
            RouteTable(f"PrivateRouteTable{n}", VpcId=Ref("Vpc"), Tags=tags(cfg, cfg.resource_name(f"private-rt-{n}"))),
            Route(f"PrivateDefaultRoute{n}", RouteTableId=Ref(f"PrivateRouteTable{n}"),
                  DestinationCidrBlock="0.0.0.0/0", NatGatewayId=Ref("NatGateway1" if single else f"NatGateway{n}")),
            SubnetRouteTableAssociation(f"PrivateSubnet{n}RouteTableAssociation", SubnetId=Ref(f"PrivateSubnet{n}"),
                                        RouteTableId=Ref(f"PrivateRouteTable{n}")),
        ]
    return resources


def gateway_endpoints(cfg: EnvConfig) -> list:
    """S3 and DynamoDB traffic stays on the AWS network and costs no NAT processing."""
    route_tables = [Ref(f"PrivateRouteTable{i + 1}") for i in range(cfg.network.availability_zones)]
    return [
        VPCEndpoint(f"{name}Endpoint", VpcId=Ref("Vpc"), VpcEndpointType="Gateway",
                    ServiceName=Sub(f"com.amazonaws.${{AWS::Region}}.{service}"), RouteTableIds=route_tables,
                    Tags=tags(cfg, cfg.resource_name(f"{service}-endpoint")))
        for name, service in (("S3", "s3"), ("DynamoDb", "dynamodb"))
    ]


def flow_log_group_name(cfg: EnvConfig) -> str:
    return f"/vpc/{cfg.resource_name('flow-logs')}"


def flow_logs(cfg: EnvConfig) -> list:
    """All VPC traffic to an encrypted log group, through a role only the flow-log service can assume."""
    group = log_group(cfg, "FlowLogGroup", flow_log_group_name(cfg), cfg.network.flow_log_retention_days)
    role = Role(
        "FlowLogRole",
        RoleName=cfg.resource_name("flow-logs-role"),
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Effect=Allow,
            Principal=Principal("Service", "vpc-flow-logs.amazonaws.com"),
            Action=[sts.AssumeRole],
            Condition=Condition(StringEquals("aws:SourceAccount", AccountId)),
        )]),
        Policies=[Policy(PolicyName="write-flow-logs", PolicyDocument=PolicyDocument(
            Version="2012-10-17",
            Statement=[Statement(
                Effect=Allow,
                Action=[logs_actions.CreateLogStream, logs_actions.PutLogEvents, logs_actions.DescribeLogStreams],
                Resource=[GetAtt("FlowLogGroup", "Arn")],
            )],
        ))],
        Tags=tags(cfg),
    )
    flow_log = FlowLog(
        "VpcFlowLog",
        ResourceId=Ref("Vpc"),
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=Ref("FlowLogGroup"),
        DeliverLogsPermissionArn=GetAtt("FlowLogRole", "Arn"),
        Tags=tags(cfg, cfg.resource_name("flow-log")),
    )
    return [group, role, flow_log]


def security_groups(cfg: EnvConfig) -> list:
    port = cfg.ecs.container_port

    def group(name: str, description: str) -> SecurityGroup:
        return SecurityGroup(f"{name}SecurityGroup", GroupDescription=description, VpcId=Ref("Vpc"),
                             GroupName=cfg.resource_name(f"{name.lower()}-sg"),
                             Tags=tags(cfg, cfg.resource_name(f"{name.lower()}-sg")))

    def ingress(title: str, to: str, from_group: str, port_: int, description: str) -> SecurityGroupIngress:
        return SecurityGroupIngress(title, GroupId=Ref(f"{to}SecurityGroup"), IpProtocol="tcp", FromPort=port_,
                                    ToPort=port_, SourceSecurityGroupId=Ref(f"{from_group}SecurityGroup"),
                                    Description=description)

    alb = group("Alb", "Load balancer: HTTPS and HTTP (redirected) from the internet")
    alb.SecurityGroupIngress = [
        {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "CidrIp": "0.0.0.0/0", "Description": d}
        for p, d in ((HTTPS, "HTTPS from the internet"), (HTTP, "HTTP from the internet, redirected to HTTPS"))
    ]
    tasks = group("Task", "Service tasks: the container port from the load balancer only")
    # Replace the default allow-all egress: the ALB talks to the tasks' group only (not the whole VPC).
    # Inline, because a separate egress resource would leave the default rule in place.
    alb.SecurityGroupEgress = [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                                "DestinationSecurityGroupId": Ref("TaskSecurityGroup"),
                                "Description": "To the service tasks"}]
    tasks.SecurityGroupEgress = [{"IpProtocol": "tcp", "FromPort": HTTPS, "ToPort": HTTPS, "CidrIp": "0.0.0.0/0",
                                  "Description": "HTTPS to AWS APIs and the image registry"}]
    kafka = group("Kafka", "MSK brokers: TLS and IAM ports from the service tasks only")
    redis = group("Redis", "Redis: port 6379 from the service tasks only")
    resources: list = [alb, tasks, kafka, redis,
                       ingress("TaskIngressFromAlb", "Task", "Alb", port, "Container port from the load balancer")]
    for p, d in KAFKA_PORTS.items():
        resources.append(ingress(f"KafkaIngress{p}FromTasks", "Kafka", "Task", p, f"{d} from the service tasks"))
        resources.append(SecurityGroupEgress(f"TaskEgressToKafka{p}", GroupId=Ref("TaskSecurityGroup"),
                                             IpProtocol="tcp", FromPort=p, ToPort=p,
                                             DestinationSecurityGroupId=Ref("KafkaSecurityGroup"),
                                             Description=f"{d} to the brokers"))
    resources.append(ingress("RedisIngressFromTasks", "Redis", "Task", REDIS_PORT, "Redis TLS from the service tasks"))
    resources.append(SecurityGroupEgress("TaskEgressToRedis", GroupId=Ref("TaskSecurityGroup"), IpProtocol="tcp",
                                         FromPort=REDIS_PORT, ToPort=REDIS_PORT,
                                         DestinationSecurityGroupId=Ref("RedisSecurityGroup"),
                                         Description="Redis TLS to the replication group"))
    return resources


class NetworkBlueprint(Blueprint):
    key = "network"
    description = "VPC, subnets, gateways, routes, flow logs, endpoints and security groups"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {"LogsKeyArn": Input("security", "LogsKeyArn")}

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        azs = cfg.network.availability_zones
        public, private = cfg.network.subnet_cidrs()
        t.add_resource(vpc(cfg))
        for i in range(azs):
            t.add_resource(subnet(cfg, "Public", i, public[i]))
            t.add_resource(subnet(cfg, "Private", i, private[i]))
        for resource in (internet_gateway(cfg) + public_routes(cfg, azs) + nat_gateways(cfg)
                         + private_routes(cfg, azs) + gateway_endpoints(cfg) + flow_logs(cfg)
                         + security_groups(cfg)):
            t.add_resource(resource)

        nats = cfg.network.nat_gateways
        output(t, "VpcId", Ref("Vpc"), "VPC id")
        output(t, "VpcCidr", cfg.network.vpc_cidr, "VPC CIDR block")
        output(t, "PublicSubnetIds", Join(",", [Ref(f"PublicSubnet{i + 1}") for i in range(azs)]),
               "Public subnet ids, comma-separated")
        output(t, "PrivateSubnetIds", Join(",", [Ref(f"PrivateSubnet{i + 1}") for i in range(azs)]),
               "Private subnet ids, comma-separated")
        output(t, "ZoneIds", ",".join(cfg.network.zones()), "Availability Zone ids of the subnets, in order")
        output(t, "NatGatewayIds", Join(",", [Ref(f"NatGateway{i + 1}") for i in range(nats)]),
               "NAT gateway ids, comma-separated")
        output(t, "NatPublicIps", Join(",", [Ref(f"NatEip{i + 1}") for i in range(nats)]),
               "NAT gateways' Elastic IPs, comma-separated: the source of the VPC's requests to public endpoints")
        for name in ("Alb", "Task", "Kafka", "Redis"):
            output(t, f"{name}SecurityGroupId", Ref(f"{name}SecurityGroup"), f"{name} security group id")
        output(t, "FlowLogGroupName", Ref("FlowLogGroup"), "VPC flow log group")
        return t


BLUEPRINT = NetworkBlueprint()
