"""The local emulator layer (perfdeploy/local/): each test pins one gap perfdeploy fills in moto and fails on
plain moto 5.2.5, so a moto upgrade that changes behaviour is caught here, not in a demo."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from perfdeploy.blueprints import all_blueprints, network, security
from perfdeploy.cli import cli
from perfdeploy.config import load_config
from perfdeploy.local import Emulator
from perfdeploy.local.checks import parse_template, unknown_types
from perfdeploy.render import render_env

REGION = "us-east-1"
NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."

# Every resource type the blueprints use (docs/stacks.md, DESIGN.md), with the Ref and Fn::GetAtt values
# the stacks read. Native moto types and placeholders alike.
KITCHEN_SINK = """
Parameters:
  Env: {Type: String, Default: sink}
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      EnableKeyRotation: true
      KeyPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow,
                  Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}, Action: "kms:*",
                  Resource: "*"}]}
      Tags: [{Key: Name, Value: k}]
  KeyAlias: {Type: AWS::KMS::Alias, Properties: {AliasName: !Sub "alias/${Env}", TargetKeyId: !Ref Key}}
  Secret:
    Type: AWS::SecretsManager::Secret
    Properties: {Name: !Sub "${Env}/app", KmsKeyId: !Ref Key, GenerateSecretString: {PasswordLength: 32}}
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.1.0.0/16, EnableDnsHostnames: true}}
  SubnetA: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.1.0.0/24,
            AvailabilityZone: !Select [0, !GetAZs ""]}}
  SubnetB: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.1.1.0/24,
            AvailabilityZone: !Select [1, !GetAZs ""]}}
  Igw: {Type: AWS::EC2::InternetGateway}
  IgwAttachment: {Type: AWS::EC2::VPCGatewayAttachment, Properties: {VpcId: !Ref Vpc,
                  InternetGatewayId: !Ref Igw}}
  RouteTable: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}
  DefaultRoute:
    Type: AWS::EC2::Route
    DependsOn: IgwAttachment
    Properties: {RouteTableId: !Ref RouteTable, DestinationCidrBlock: 0.0.0.0/0, GatewayId: !Ref Igw}
  Association: {Type: AWS::EC2::SubnetRouteTableAssociation, Properties: {SubnetId: !Ref SubnetA,
                RouteTableId: !Ref RouteTable}}
  Eip: {Type: AWS::EC2::EIP, DependsOn: IgwAttachment, Properties: {Domain: vpc}}
  Nat: {Type: AWS::EC2::NatGateway, Properties: {AllocationId: !GetAtt Eip.AllocationId,
        SubnetId: !Ref SubnetA}}
  NatRoute: {Type: AWS::EC2::Route, Properties: {RouteTableId: !Ref RouteTable,
             DestinationCidrBlock: 10.9.0.0/16, NatGatewayId: !Ref Nat}}
  S3Endpoint:
    Type: AWS::EC2::VPCEndpoint
    Properties: {VpcId: !Ref Vpc, VpcEndpointType: Gateway,
                 ServiceName: !Sub "com.amazonaws.${AWS::Region}.s3", RouteTableIds: [!Ref RouteTable]}
  LogGroup: {Type: AWS::Logs::LogGroup, Properties: {LogGroupName: !Sub "/${Env}/app", RetentionInDays: 30,
             KmsKeyId: !GetAtt Key.Arn}}
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "${Env}-role"
      AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: [{Effect: Allow,
                                 Principal: {Service: ecs-tasks.amazonaws.com}, Action: "sts:AssumeRole"}]}
  Policy:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: logs
      Roles: [!Ref Role]
      PolicyDocument: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "logs:PutLogEvents",
                       Resource: !GetAtt LogGroup.Arn}]}
  FlowLog:
    Type: AWS::EC2::FlowLog
    Properties: {ResourceId: !Ref Vpc, ResourceType: VPC, TrafficType: ALL,
                 LogDestinationType: cloud-watch-logs, LogGroupName: !Ref LogGroup,
                 DeliverLogsPermissionArn: !GetAtt Role.Arn}
  AlbSg:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: alb
      VpcId: !Ref Vpc
      SecurityGroupIngress: [{IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 0.0.0.0/0}]
  TaskSg: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: task, VpcId: !Ref Vpc}}
  TaskIngress:
    Type: AWS::EC2::SecurityGroupIngress
    Properties: {GroupId: !Ref TaskSg, IpProtocol: tcp, FromPort: 8080, ToPort: 8080,
                 SourceSecurityGroupId: !Ref AlbSg}
  TaskEgress:
    Type: AWS::EC2::SecurityGroupEgress
    Properties: {GroupId: !Ref TaskSg, IpProtocol: tcp, FromPort: 6379, ToPort: 6379,
                 DestinationSecurityGroupId: !Ref AlbSg}
  MetricFilter:
    Type: AWS::Logs::MetricFilter
    Properties: {LogGroupName: !Ref LogGroup, FilterPattern: "ERROR",
                 MetricTransformations: [{MetricName: Errors, MetricNamespace: Sink, MetricValue: "1"}]}
  Query: {Type: AWS::Logs::QueryDefinition, Properties: {Name: errors, QueryString: "fields @message",
          LogGroupNames: [!Ref LogGroup]}}
  Repo: {Type: AWS::ECR::Repository, Properties: {RepositoryName: !Sub "${Env}-app",
         ImageTagMutability: IMMUTABLE}}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${Env}-reviews"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      SSESpecification: {SSEEnabled: true, SSEType: KMS, KMSMasterKeyId: !GetAtt Key.Arn}
  Vault: {Type: AWS::Backup::BackupVault, Properties: {BackupVaultName: !Sub "${Env}-vault",
          EncryptionKeyArn: !GetAtt Key.Arn}}
  Plan:
    Type: AWS::Backup::BackupPlan
    Properties: {BackupPlan: {BackupPlanName: daily, BackupPlanRule: [{RuleName: daily,
                 TargetBackupVault: !Ref Vault}]}}
  Selection:
    Type: AWS::Backup::BackupSelection
    Properties: {BackupPlanId: !Ref Plan, BackupSelection: {SelectionName: tables,
                 IamRoleArn: !GetAtt Role.Arn, Resources: [!GetAtt Table.Arn]}}
  KafkaConfig: {Type: AWS::MSK::Configuration, Properties: {Name: !Sub "${Env}-kafka",
                ServerProperties: "auto.create.topics.enable=false"}}
  Kafka:
    Type: AWS::MSK::Cluster
    Properties:
      ClusterName: !Sub "${Env}-kafka"
      KafkaVersion: 3.6.0
      NumberOfBrokerNodes: 2
      BrokerNodeGroupInfo: {InstanceType: kafka.t3.small, ClientSubnets: [!Ref SubnetA, !Ref SubnetB]}
      ConfigurationInfo: {Arn: !GetAtt KafkaConfig.Arn, Revision: !GetAtt KafkaConfig.LatestRevision.Revision}
  CacheSubnets: {Type: AWS::ElastiCache::SubnetGroup, Properties: {CacheSubnetGroupName: !Sub "${Env}-Redis",
                 Description: s, SubnetIds: [!Ref SubnetA, !Ref SubnetB]}}
  CacheParams: {Type: AWS::ElastiCache::ParameterGroup, Properties: {CacheParameterGroupFamily: redis7,
                Description: p}}
  Redis:
    Type: AWS::ElastiCache::ReplicationGroup
    Properties:
      ReplicationGroupId: !Sub "${Env}-redis"
      ReplicationGroupDescription: redis
      NumCacheClusters: 2
      CacheSubnetGroupName: !Ref CacheSubnets
      CacheParameterGroupName: !Ref CacheParams
      AuthToken: !Sub "{{resolve:secretsmanager:${Secret}:SecretString}}"
  SamplingRule:
    Type: AWS::XRay::SamplingRule
    Properties: {SamplingRule: {RuleName: !Sub "${Env}-rule", Priority: 100, FixedRate: 0.1, ReservoirSize: 1,
                 ServiceName: "*", ServiceType: "*", Host: "*", HTTPMethod: "*", URLPath: "*",
                 ResourceARN: "*", Version: 1}}
  XrayGroup: {Type: AWS::XRay::Group, Properties: {GroupName: !Sub "${Env}-group",
              FilterExpression: 'service("app")'}}
  Bucket: {Type: AWS::S3::Bucket, Properties: {BucketName: !Sub "${Env}-logs-${AWS::AccountId}"}}
  BucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties: {Bucket: !Ref Bucket, PolicyDocument: {Version: "2012-10-17", Statement: [{Effect: Allow,
                 Principal: {Service: logdelivery.elasticloadbalancing.amazonaws.com}, Action: "s3:PutObject",
                 Resource: !Sub "${Bucket.Arn}/*"}]}}
  Alb: {Type: AWS::ElasticLoadBalancingV2::LoadBalancer, Properties: {Name: !Sub "${Env}-alb",
        Subnets: [!Ref SubnetA, !Ref SubnetB], SecurityGroups: [!Ref AlbSg]}}
  TargetGroup: {Type: AWS::ElasticLoadBalancingV2::TargetGroup, Properties: {Name: !Sub "${Env}-tg",
                Port: 8080, Protocol: HTTP, TargetType: ip, VpcId: !Ref Vpc}}
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties: {LoadBalancerArn: !Ref Alb, Port: 80, Protocol: HTTP, DefaultActions: [{Type: forward,
                 TargetGroupArn: !Ref TargetGroup}]}
  GreenTargetGroup: {Type: AWS::ElasticLoadBalancingV2::TargetGroup, Properties: {Name: !Sub "${Env}-tg-alt",
                     Port: 8080, Protocol: HTTP, TargetType: ip, VpcId: !Ref Vpc}}
  ListenerRule:
    Type: AWS::ElasticLoadBalancingV2::ListenerRule
    Properties: {ListenerArn: !Ref Listener, Priority: 1,
                 Conditions: [{Field: path-pattern, PathPatternConfig: {Values: ["/*"]}}],
                 Actions: [{Type: forward, ForwardConfig: {TargetGroups: [
                   {TargetGroupArn: !Ref TargetGroup, Weight: 100}, {TargetGroupArn: !Ref GreenTargetGroup,
                   Weight: 0}]}}]}
  WebAcl:
    Type: AWS::WAFv2::WebACL
    Properties: {Name: !Sub "${Env}-acl", Scope: REGIONAL, DefaultAction: {Allow: {}},
                 VisibilityConfig: {SampledRequestsEnabled: true, CloudWatchMetricsEnabled: true,
                 MetricName: acl}}
  WebAclAssociation: {Type: AWS::WAFv2::WebACLAssociation, Properties: {ResourceArn: !Ref Alb,
                      WebACLArn: !GetAtt WebAcl.Arn}}
  Cluster: {Type: AWS::ECS::Cluster, Properties: {ClusterName: !Sub "${Env}-cluster"}}
  CapacityProviders:
    Type: AWS::ECS::ClusterCapacityProviderAssociations
    Properties: {Cluster: !Ref Cluster, CapacityProviders: [FARGATE],
                 DefaultCapacityProviderStrategy: [{CapacityProvider: FARGATE, Weight: 1}]}
  TaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: !Sub "${Env}-app"
      Cpu: "512"
      Memory: "1024"
      NetworkMode: awsvpc
      RequiresCompatibilities: [FARGATE]
      ExecutionRoleArn: !GetAtt Role.Arn
      ContainerDefinitions:
        - {Name: app, Image: !Sub "${Repo.RepositoryUri}:v1", PortMappings: [{ContainerPort: 8080}],
           Environment: [{Name: REDIS, Value: !GetAtt Redis.PrimaryEndPoint.Address}]}
  Service:
    Type: AWS::ECS::Service
    DependsOn: Listener
    Properties:
      ServiceName: !Sub "${Env}-service"
      Cluster: !Ref Cluster
      TaskDefinition: !Ref TaskDefinition
      DesiredCount: 1
      LaunchType: FARGATE
      NetworkConfiguration: {AwsvpcConfiguration: {Subnets: [!Ref SubnetA], SecurityGroups: [!Ref TaskSg]}}
      LoadBalancers: [{ContainerName: app, ContainerPort: 8080, TargetGroupArn: !Ref TargetGroup,
                       AdvancedConfiguration: {AlternateTargetGroupArn: !Ref GreenTargetGroup,
                                               ProductionListenerRule: !Ref ListenerRule,
                                               RoleArn: !GetAtt Role.Arn}}]
      DeploymentController: {Type: ECS}
      DeploymentConfiguration:
        Strategy: CANARY
        BakeTimeInMinutes: 15
        CanaryConfiguration: {CanaryPercent: 10.0, CanaryBakeTimeInMinutes: 10}
        Alarms: {AlarmNames: [!Sub "${Env}-not-there-yet"], Enable: true, Rollback: true}
  ScalableTarget:
    Type: AWS::ApplicationAutoScaling::ScalableTarget
    Properties: {ServiceNamespace: ecs, ScalableDimension: "ecs:service:DesiredCount",
                 ResourceId: !Sub "service/${Cluster}/${Service.Name}", MinCapacity: 1, MaxCapacity: 4}
  ScalingPolicy:
    Type: AWS::ApplicationAutoScaling::ScalingPolicy
    Properties: {PolicyName: cpu, PolicyType: TargetTrackingScaling, ScalingTargetId: !Ref ScalableTarget,
                 TargetTrackingScalingPolicyConfiguration: {TargetValue: 60}}
  Topic: {Type: AWS::SNS::Topic, Properties: {TopicName: !Sub "${Env}-critical"}}
  Subscription: {Type: AWS::SNS::Subscription, Properties: {TopicArn: !Ref Topic, Protocol: email,
                 Endpoint: ops@example.com}}
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {AlarmName: !Sub "${Env}-5xx", Namespace: AWS/ApplicationELB,
                 MetricName: HTTPCode_Target_5XX_Count, Dimensions: [{Name: LoadBalancer,
                 Value: !GetAtt Alb.LoadBalancerFullName}], Statistic: Sum, Period: 60, EvaluationPeriods: 1,
                 Threshold: 5, ComparisonOperator: GreaterThanThreshold, AlarmActions: [!Ref Topic]}
  Composite: {Type: AWS::CloudWatch::CompositeAlarm, Properties: {AlarmName: !Sub "${Env}-unhealthy",
              AlarmRule: !Sub 'ALARM("${Alarm}")'}}
  Dashboard: {Type: AWS::CloudWatch::Dashboard, Properties: {DashboardName: !Sub "${Env}-overview",
              DashboardBody: '{"widgets":[]}'}}
Outputs:
  KeyArn: {Value: !GetAtt Key.Arn}
  KeyId: {Value: !GetAtt Key.KeyId}
  AliasName: {Value: !Ref KeyAlias}
  SecretArn: {Value: !Ref Secret}
  VpcId: {Value: !Ref Vpc}
  SubnetIds: {Value: !Join [",", [!Ref SubnetA, !Ref SubnetB]]}
  SubnetAZs: {Value: !Join [",", [!GetAtt SubnetA.AvailabilityZone, !GetAtt SubnetB.AvailabilityZone]]}
  AssociationId: {Value: !Ref Association}
  NatId: {Value: !Ref Nat}
  LogGroupArn: {Value: !GetAtt LogGroup.Arn}
  RoleArn: {Value: !GetAtt Role.Arn}
  TaskIngressId: {Value: !Ref TaskIngress}
  TaskEgressId: {Value: !Ref TaskEgress}
  MetricFilterName: {Value: !Ref MetricFilter}
  QueryId: {Value: !GetAtt Query.QueryDefinitionId}
  RepositoryUri: {Value: !GetAtt Repo.RepositoryUri}
  TableArn: {Value: !GetAtt Table.Arn}
  VaultArn: {Value: !GetAtt Vault.BackupVaultArn}
  PlanArn: {Value: !GetAtt Plan.BackupPlanArn}
  SelectionId: {Value: !GetAtt Selection.SelectionId}
  KafkaArn: {Value: !Ref Kafka}
  KafkaConfigRevision: {Value: !GetAtt KafkaConfig.LatestRevision.Revision}
  RedisId: {Value: !Ref Redis}
  RedisPrimary: {Value: !GetAtt Redis.PrimaryEndPoint.Address}
  RedisPort: {Value: !GetAtt Redis.PrimaryEndPoint.Port}
  RedisReader: {Value: !GetAtt Redis.ReaderEndPoint.Address}
  CacheSubnetGroup: {Value: !Ref CacheSubnets}
  SamplingRuleArn: {Value: !GetAtt SamplingRule.RuleARN}
  XrayGroupArn: {Value: !GetAtt XrayGroup.GroupARN}
  BucketName: {Value: !Ref BucketPolicy}
  AlbDns: {Value: !GetAtt Alb.DNSName}
  AlbFullName: {Value: !GetAtt Alb.LoadBalancerFullName}
  TargetGroupFullName: {Value: !GetAtt TargetGroup.TargetGroupFullName}
  ListenerArn: {Value: !Ref Listener}
  ListenerRuleArn: {Value: !Ref ListenerRule}
  WebAclArn: {Value: !GetAtt WebAcl.Arn}
  WebAclAssociation: {Value: !Ref WebAclAssociation}
  CapacityProviders: {Value: !Ref CapacityProviders}
  ClusterArn: {Value: !GetAtt Cluster.Arn}
  TaskDefinitionArn: {Value: !Ref TaskDefinition}
  ServiceName: {Value: !GetAtt Service.Name}
  ScalableTargetId: {Value: !Ref ScalableTarget}
  ScalingPolicyArn: {Value: !Ref ScalingPolicy}
  TopicArn: {Value: !Ref Topic}
  SubscriptionArn: {Value: !Ref Subscription}
  AlarmArn: {Value: !GetAtt Alarm.Arn}
  CompositeArn: {Value: !GetAtt Composite.Arn}
  DashboardName: {Value: !Ref Dashboard}
"""

# The types named in issue 6 and DESIGN.md; the sink must cover every one.
BLUEPRINT_TYPES = {
    "AWS::KMS::Key", "AWS::KMS::Alias", "AWS::SecretsManager::Secret", "AWS::EC2::VPC", "AWS::EC2::Subnet",
    "AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment", "AWS::EC2::RouteTable", "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::EIP", "AWS::EC2::NatGateway", "AWS::EC2::VPCEndpoint",
    "AWS::EC2::FlowLog", "AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::Logs::LogGroup",
    "AWS::Logs::MetricFilter", "AWS::Logs::QueryDefinition", "AWS::ECR::Repository", "AWS::DynamoDB::Table",
    "AWS::Backup::BackupVault", "AWS::Backup::BackupPlan", "AWS::Backup::BackupSelection", "AWS::MSK::Cluster",
    "AWS::MSK::Configuration", "AWS::ElastiCache::ReplicationGroup", "AWS::ElastiCache::SubnetGroup",
    "AWS::ElastiCache::ParameterGroup", "AWS::XRay::SamplingRule", "AWS::XRay::Group",
    "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::ListenerRule", "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy", "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation", "AWS::ECS::Cluster", "AWS::ECS::ClusterCapacityProviderAssociations",
    "AWS::ECS::TaskDefinition", "AWS::ECS::Service", "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::SNS::Topic", "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::CloudWatch::Dashboard",
}

SECRET_WITH_OUTPUT = """
Parameters:
  Name: {Type: String}
Resources:
  Secret: {Type: AWS::SecretsManager::Secret, Properties: {Name: !Ref Name}}
Outputs:
  SecretArn: {Value: !Ref Secret, Export: {Name: !Sub "${AWS::StackName}-secret"}}
  Name: {Value: !Ref Name}
"""

TOPIC = """
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  TopicArn: {Value: !Ref Topic}
"""


# Fixtures and helpers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emulator():
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        running = Emulator()
        running.start()
        yield running
        running.stop()


@pytest.fixture(scope="module")
def client(emulator):
    clients: dict[tuple[str, str], object] = {}

    def make(service: str, region: str = REGION):
        if (service, region) not in clients:
            clients[(service, region)] = boto3.client(service, endpoint_url=emulator.url, region_name=region)
        return clients[(service, region)]

    return make


@pytest.fixture(scope="module")
def cf(client):
    return client("cloudformation")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def change_set(cf, stack: str, body: str, parameters: dict[str, str] | None = None, kind: str | None = None,
               **extra) -> dict:
    """Create a change set (CREATE for a new stack, else UPDATE) and return its description."""
    if kind is None:
        kind = "UPDATE" if _exists(cf, stack) else "CREATE"
    created = cf.create_change_set(
        StackName=stack, ChangeSetName=unique("cs"), TemplateBody=body, ChangeSetType=kind,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Capabilities=extra.pop("Capabilities", ["CAPABILITY_NAMED_IAM"]), **extra)
    return cf.describe_change_set(ChangeSetName=created["Id"])


def deploy(cf, stack: str, body: str, parameters: dict[str, str] | None = None, **extra) -> dict:
    """Change set, execute, and the stack as DescribeStacks gives it."""
    described = change_set(cf, stack, body, parameters, **extra)
    assert described["Status"] == "CREATE_COMPLETE", described.get("StatusReason")
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    return describe(cf, described["StackId"])


def describe(cf, stack: str) -> dict:
    return cf.describe_stacks(StackName=stack)["Stacks"][0]


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def _exists(cf, stack: str) -> bool:
    try:
        return describe(cf, stack)["StackStatus"] != "REVIEW_IN_PROGRESS"
    except ClientError:
        return False


def placeholders(emulator) -> list[dict]:
    with urllib.request.urlopen(f"{emulator.url}/_perfdeploy/placeholders") as response:
        return json.load(response)["Placeholders"]


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]


# 1. Outputs and exports after a change set --------------------------------------------------------------

def test_outputs_are_computed_when_a_create_change_set_executes(cf):
    stack = deploy(cf, unique("outputs"), SECRET_WITH_OUTPUT, {"Name": "app/one"})
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(stack)["Name"] == "app/one"
    assert outputs(stack)["SecretArn"].startswith(f"arn:aws:secretsmanager:{REGION}:123456789012:secret:app/one-")


def test_outputs_and_exports_are_recomputed_after_an_update_change_set(cf):
    name = unique("exports")
    deploy(cf, name, SECRET_WITH_OUTPUT, {"Name": "app/before"})
    stack = deploy(cf, name, SECRET_WITH_OUTPUT, {"Name": "app/after"})
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(stack)["Name"] == "app/after"
    exports = {e["Name"]: e["Value"] for e in cf.list_exports()["Exports"]}
    assert exports[f"{name}-secret"] == outputs(stack)["SecretArn"]
    assert "app/after-" in exports[f"{name}-secret"]


# 2. Change sets dropped once one executes ---------------------------------------------------------------

def test_executing_a_change_set_drops_every_change_set_of_the_stack(cf):
    name = unique("drop")
    deploy(cf, name, TOPIC)
    first = change_set(cf, name, TOPIC.replace("Topic: {Type", "Other: {Type: AWS::SNS::Topic}\n  Topic: {Type"))
    second = change_set(cf, name, TOPIC.replace("Topic}", "Topic, Properties: {DisplayName: x}}"))
    cf.execute_change_set(ChangeSetName=first["ChangeSetId"])
    assert cf.list_change_sets(StackName=name)["Summaries"] == []
    error = error_of(lambda: cf.describe_change_set(ChangeSetName=second["ChangeSetId"]))
    assert error["Code"] == "ChangeSetNotFound"


def test_change_sets_are_listed_per_stack(cf):
    mine, other = unique("mine"), unique("other")
    change_set(cf, mine, TOPIC)
    change_set(cf, other, TOPIC)
    assert [s["StackName"] for s in cf.list_change_sets(StackName=mine)["Summaries"]] == [mine]


# 3. Placeholders for the types moto lacks, and loud failure for unknown types ----------------------------

REDIS = """
Parameters:
  Description: {Type: String, Default: first}
Resources:
  Redis:
    Type: AWS::ElastiCache::ReplicationGroup
    Properties: {ReplicationGroupId: Perf-Redis, ReplicationGroupDescription: !Ref Description, Port: 6380}
  Kafka: {Type: AWS::MSK::Cluster, Properties: {ClusterName: perf-kafka, KafkaVersion: 3.6.0}}
  Alarm: {Type: AWS::CloudWatch::Alarm}
Outputs:
  RedisId: {Value: !Ref Redis}
  Primary: {Value: !GetAtt Redis.PrimaryEndPoint.Address}
  Port: {Value: !GetAtt Redis.PrimaryEndPoint.Port}
  Reader: {Value: !Sub "${Redis.ReaderEndPoint.Address}:${Redis.ReaderEndPoint.Port}"}
  KafkaArn: {Value: !GetAtt Kafka.Arn}
  AlarmName: {Value: !Ref Alarm}
  AlarmArn: {Value: !GetAtt Alarm.Arn}
"""


def test_placeholders_answer_ref_and_getatt_with_values_shaped_like_aws(cf):
    name = unique("shapes")
    values = outputs(deploy(cf, name, REDIS))
    assert values["RedisId"] == "perf-redis"  # ElastiCache ids are lower case
    assert values["Primary"].startswith("master.perf-redis.")
    assert values["Primary"].endswith(".use1.cache.amazonaws.com")
    assert values["Port"] == "6380"
    assert values["Reader"].startswith("replica.perf-redis.") and values["Reader"].endswith(":6380")
    assert values["KafkaArn"].startswith(f"arn:aws:kafka:{REGION}:123456789012:cluster/perf-kafka/")
    assert values["AlarmName"].startswith(f"{name}-Alarm-")
    assert values["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{values['AlarmName']}"


def test_placeholder_values_are_stable_across_updates_and_recreation(cf):
    name = unique("stable")
    first = outputs(deploy(cf, name, REDIS))
    updated = outputs(deploy(cf, name, REDIS, {"Description": "second"}))
    cf.delete_stack(StackName=name)
    recreated = outputs(deploy(cf, name, REDIS))
    assert set(first) == {"RedisId", "Primary", "Port", "Reader", "KafkaArn", "AlarmName", "AlarmArn"}
    assert first == updated == recreated


def test_placeholders_are_removed_when_their_stack_is_deleted(cf, emulator):
    name = unique("removed")
    deploy(cf, name, REDIS)
    assert {p["LogicalResourceId"] for p in placeholders(emulator) if p["StackName"] == name} == {
        "Redis", "Kafka", "Alarm"}
    cf.delete_stack(StackName=name)
    assert [p for p in placeholders(emulator) if p["StackName"] == name] == []


def test_every_type_the_blueprints_use_is_created_answered_and_deleted(cf, client, emulator):
    sink = parse_template(KITCHEN_SINK)
    assert {r["Type"] for r in sink["Resources"].values()} >= BLUEPRINT_TYPES
    name = unique("sink")
    stack = deploy(cf, name, KITCHEN_SINK)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    values = outputs(stack)
    assert all(values.values()) and len(values) == len(sink["Outputs"])
    assert values["AssociationId"].startswith("rtbassoc-")
    assert values["TaskIngressId"].startswith("sgr-") and values["TaskEgressId"].startswith("sgr-")
    assert values["AlbFullName"].startswith("app/sink-alb/")
    assert values["TargetGroupFullName"].startswith("targetgroup/sink-tg/")
    assert values["SubnetAZs"] == f"{REGION}a,{REGION}b"
    vpc = values["VpcId"]

    cf.delete_stack(StackName=name)
    assert describe(cf, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"
    assert [p for p in placeholders(emulator) if p["StackName"] == name] == []
    ec2 = client("ec2")
    assert vpc not in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    nats = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]
    assert {n["State"] for n in nats} <= {"deleted"}
    assert client("ecs").describe_clusters(clusters=["sink-cluster"])["clusters"][0]["status"] == "INACTIVE"
    assert "sink-reviews" not in client("dynamodb").list_tables()["TableNames"]
    assert client("elbv2").describe_target_groups()["TargetGroups"] == []


def test_a_resource_type_aws_does_not_have_fails_like_aws(cf):
    body = "Resources:\n  Thing: {Type: AWS::Foo::Bar}\n"
    error = error_of(lambda: change_set(cf, unique("unknown"), body))
    assert error["Message"] == "Template format error: Unrecognized resource types: [AWS::Foo::Bar]"


def test_a_resource_type_the_emulator_does_not_know_fails_loudly(cf):
    body = TOPIC.replace("Outputs:", "  Runner: {Type: AWS::AppRunner::Service}\nOutputs:")
    name = unique("unsupported")
    error = error_of(lambda: change_set(cf, name, body))
    assert "cannot create resource types [AWS::AppRunner::Service]" in error["Message"]
    assert error_of(lambda: describe(cf, name))["Code"] == "ValidationError"  # no stack was left behind


def test_a_failing_resource_rolls_the_stack_back_with_its_reason(cf, client):
    body = """
Resources:
  Topic: {Type: AWS::SNS::Topic, DeletionPolicy: RetainExceptOnCreate, Properties: {TopicName: rolled-back}}
  Subnet: {Type: AWS::EC2::Subnet, DependsOn: Topic, Properties: {VpcId: vpc-00000000, CidrBlock: 10.0.0.0/24}}
"""
    name = unique("rollback")
    described = change_set(cf, name, body)
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    stack = describe(cf, name)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "[Subnet]" in stack["StackStatusReason"]
    events = cf.describe_stack_events(StackName=name)["StackEvents"]
    failed = [e for e in events if e["LogicalResourceId"] == "Subnet" and e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and "vpc-00000000" in failed[0]["ResourceStatusReason"]
    # RetainExceptOnCreate: a failed first create cleans up after itself
    assert not any(t["TopicArn"].endswith(":rolled-back") for t in client("sns").list_topics()["Topics"])


FAILING_SUBNET = "  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: vpc-00000000, CidrBlock: 10.0.0.0/24}}\n"


def test_a_failing_update_rolls_back_to_the_previous_template_and_parameters(cf):
    name = unique("badupdate")
    deploy(cf, name, SECRET_WITH_OUTPUT, {"Name": "kept"})
    broken = SECRET_WITH_OUTPUT.replace("Outputs:", FAILING_SUBNET + "Outputs:")
    described = change_set(cf, name, broken, {"Name": "changed"})
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    stack = describe(cf, name)
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {"Name": "kept"}
    assert change_set(cf, name, SECRET_WITH_OUTPUT, {"Name": "kept"})["StatusReason"] == NO_CHANGES


def test_disable_rollback_pauses_a_failed_create_until_rollback_stack(cf, client):
    body = TOPIC.replace("Topic}", "Topic, Properties: {TopicName: paused}}").replace(
        "Outputs:", FAILING_SUBNET + "Outputs:")
    name = unique("paused")
    described = change_set(cf, name, body)
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"], DisableRollback=True)
    assert describe(cf, name)["StackStatus"] == "CREATE_FAILED"
    topics = lambda: {t["TopicArn"].rsplit(":", 1)[1] for t in client("sns").list_topics()["Topics"]}  # noqa: E731
    assert "paused" in topics()  # kept for debugging
    assert "CancelUpdateStack cannot be called" in error_of(lambda: cf.cancel_update_stack(StackName=name))["Message"]
    cf.rollback_stack(StackName=name)
    assert describe(cf, name)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "paused" not in topics()


# 4. KMS key policies as objects ------------------------------------------------------------------------

def test_a_kms_key_policy_given_as_an_object_can_be_described(cf, client):
    body = """
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy: {Version: "2012-10-17",
                  Statement: [{Sid: Root, Effect: Allow, Principal: {AWS: "*"}, Action: "kms:*", Resource: "*"}]}
      Tags: [{Key: team, Value: perf}]
Outputs:
  KeyArn: {Value: !GetAtt Key.Arn}
  KeyId: {Value: !GetAtt Key.KeyId}
"""
    values = outputs(deploy(cf, unique("kms"), body))
    kms = client("kms")
    assert kms.describe_key(KeyId=values["KeyArn"])["KeyMetadata"]["KeyId"] == values["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=values["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Sid"] == "Root"
    assert kms.list_resource_tags(KeyId=values["KeyId"])["Tags"] == [{"TagKey": "team", "TagValue": "perf"}]


def test_a_kms_key_created_by_cloudformation_has_the_key_pair_of_its_key_spec(cf, client):
    """moto made every key's pair (RSA-2048) before the template's KeySpec was applied; it is made on first
    use now, from the spec the key has (and not at all for a symmetric key, which has none to give)."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    body = """
Resources:
  Signing: {Type: AWS::KMS::Key, Properties: {KeySpec: RSA_4096, KeyUsage: SIGN_VERIFY,
            KeyPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {AWS: "*"}, Action: "kms:*",
                                                            Resource: "*"}]}}}
Outputs:
  KeyId: {Value: !GetAtt Signing.KeyId}
"""
    key_id = outputs(deploy(cf, unique("kms-rsa"), body))["KeyId"]
    answer = client("kms").get_public_key(KeyId=key_id)
    assert load_der_public_key(answer["PublicKey"]).key_size == 4096


def test_the_default_amazon_images_are_there_when_first_asked_for(client):
    """moto loads its default images (~1,300 in us-east-1, a volume and a snapshot each) on an account's first
    EC2 call; the emulator loads them on the first read of images, and that read still finds them."""
    images = client("ec2", "eu-west-1").describe_images(Owners=["amazon"])["Images"]
    assert len(images) > 10 and all(i["ImageId"].startswith("ami-") for i in images)


def test_a_template_is_read_as_cloudformation_reads_it_and_a_copy_each_time():
    body = "Resources:\n  R: {Type: AWS::SNS::Topic}\nOutputs:\n  A: {Value: !GetAtt Redis.PrimaryEndPoint.Address}\n"
    first = parse_template(body)
    assert first["Outputs"]["A"]["Value"] == {"Fn::GetAtt": ["Redis", "PrimaryEndPoint.Address"]}
    first["Resources"].clear()  # moto changes what it is given: the next reader must not see it
    assert parse_template(body)["Resources"] == {"R": {"Type": "AWS::SNS::Topic"}}


# 5. List parameters ------------------------------------------------------------------------------------

LISTS = """
Parameters:
  Subnets: {Type: "List<AWS::EC2::Subnet::Id>"}
  Names: {Type: CommaDelimitedList, Default: "alpha, beta"}
Resources:
  Group: {Type: AWS::ElastiCache::SubnetGroup, Properties: {Description: d, SubnetIds: !Ref Subnets}}
Outputs:
  First: {Value: !Select [0, !Ref Subnets]}
  Joined: {Value: !Join [",", !Ref Subnets]}
  Second: {Value: !Select [1, !Split [",", !Join [",", !Ref Subnets]]]}
  SecondName: {Value: !Select [1, !Ref Names]}
"""


def test_list_parameters_are_lists_in_the_template_and_strings_in_describe_stacks(cf, client):
    subnets = [s["SubnetId"] for s in client("ec2").describe_subnets()["Subnets"]][:2]
    passed = ",".join(subnets)
    stack = deploy(cf, unique("lists"), LISTS, {"Subnets": passed})
    assert outputs(stack) == {"First": subnets[0], "Joined": passed, "Second": subnets[1], "SecondName": "beta"}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters == {"Subnets": passed, "Names": "alpha, beta"}


def test_a_subnet_parameter_naming_no_subnet_is_refused_like_aws(cf):
    error = error_of(lambda: change_set(cf, unique("nosubnet"), LISTS, {"Subnets": "subnet-00000000"}))
    assert "parameter value subnet-00000000 for parameter name Subnets does not exist" in error["Message"]


# 6. One request at a time ------------------------------------------------------------------------------

def test_requests_are_served_one_at_a_time(emulator, client):
    served, inner = emulator.app, emulator.app.app
    active, peak, count = 0, 0, threading.Lock()

    def probe(environ, start_response):
        nonlocal active, peak
        with count:
            active += 1
            peak = max(peak, active)
        try:
            time.sleep(0.02)
            return inner(environ, start_response)
        finally:
            with count:
                active -= 1

    served.app = probe
    try:
        threads = [threading.Thread(target=client("cloudformation").list_stacks) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        served.app = inner
    assert peak == 1


def test_stacks_deployed_from_several_threads_all_complete(cf):
    names = [unique("thread") for _ in range(4)]
    results: dict[str, str] = {}

    def one(name: str) -> None:
        results[name] = deploy(cf, name, REDIS.replace("Perf-Redis", name).replace("perf-kafka", name))["StackStatus"]

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == dict.fromkeys(names, "CREATE_COMPLETE")


# 7. Change sets with no changes ------------------------------------------------------------------------

def test_a_change_set_without_changes_fails_with_the_aws_reason(cf):
    name = unique("nochange")
    deploy(cf, name, SECRET_WITH_OUTPUT, {"Name": "same"}, Tags=[{"Key": "env", "Value": "dev"}])
    described = change_set(cf, name, SECRET_WITH_OUTPUT, {"Name": "same"})
    assert (described["Status"], described["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert described["StatusReason"] == NO_CHANGES
    assert described["Changes"] == []


def test_a_parameter_change_modifies_and_replaces_what_uses_it(cf):
    name = unique("replace")
    deploy(cf, name, SECRET_WITH_OUTPUT, {"Name": "old"})
    described = change_set(cf, name, SECRET_WITH_OUTPUT, {"Name": "new"})
    [change] = [c["ResourceChange"] for c in described["Changes"]]
    assert (change["Action"], change["LogicalResourceId"], change["Replacement"]) == ("Modify", "Secret", "True")
    assert change["PhysicalResourceId"].startswith("arn:aws:secretsmanager:")


# 8. The rest CloudFormation does that moto did not -------------------------------------------------------

def test_get_azs_answers_the_zones_of_the_stack_region(client):
    cf_eu = client("cloudformation", "eu-west-1")
    body = """
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.2.0.0/16}}
  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.2.0.0/24,
           AvailabilityZone: !Select [1, !GetAZs ""]}}
Outputs:
  Zone: {Value: !GetAtt Subnet.AvailabilityZone}
  Arn: {Value: !Sub "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:subnet/${Subnet}"}
"""
    values = outputs(deploy(cf_eu, unique("azs"), body))
    assert values["Zone"] == "eu-west-1b"
    assert values["Arn"].startswith("arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-")


def test_termination_protection_is_kept_and_refuses_deletion(cf):
    name = unique("protected")
    deploy(cf, name, TOPIC)
    cf.update_termination_protection(StackName=name, EnableTerminationProtection=True)
    assert describe(cf, name)["EnableTerminationProtection"] is True
    assert "TerminationProtection is enabled" in error_of(lambda: cf.delete_stack(StackName=name))["Message"]
    cf.update_termination_protection(StackName=name, EnableTerminationProtection=False)
    cf.delete_stack(StackName=name)
    assert error_of(lambda: describe(cf, name))["Code"] == "ValidationError"


def test_a_stack_policy_refuses_the_replacement_it_denies_and_allows_the_rest(cf):
    name = unique("policy")
    before = outputs(deploy(cf, name, SECRET_WITH_OUTPUT, {"Name": "guarded"}))
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": ["Update:Replace", "Update:Delete"],
         "Resource": ["LogicalResourceId/Secret"]},
    ]}
    cf.set_stack_policy(StackName=name, StackPolicyBody=json.dumps(policy))
    assert json.loads(cf.get_stack_policy(StackName=name)["StackPolicyBody"]) == policy

    deploy(cf, name, SECRET_WITH_OUTPUT, {"Name": "replaced"})  # Name is create-only: a replacement
    stack = describe(cf, name)
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert "Action denied by stack policy: Update:Replace on LogicalResourceId/Secret" in stack["StackStatusReason"]
    assert outputs(stack) == before

    allowed = deploy(cf, name, SECRET_WITH_OUTPUT.replace("Outputs:", "  Topic: {Type: AWS::SNS::Topic}\nOutputs:"),
                     {"Name": "guarded"})
    assert allowed["StackStatus"] == "UPDATE_COMPLETE"


def test_tags_of_an_update_change_set_become_the_stack_tags(cf):
    name = unique("tags")
    deploy(cf, name, TOPIC, Tags=[{"Key": "release", "Value": "1"}])
    described = change_set(cf, name, TOPIC, Tags=[{"Key": "release", "Value": "2"}])
    assert (described["Status"], described["Tags"]) == ("CREATE_COMPLETE", [{"Key": "release", "Value": "2"}])
    cf.execute_change_set(ChangeSetName=described["ChangeSetId"])
    assert describe(cf, name)["Tags"] == [{"Key": "release", "Value": "2"}]


def test_retain_except_on_create_keeps_the_resource_when_the_stack_is_deleted(cf, client):
    body = ("Resources:\n"
            "  Topic: {Type: AWS::SNS::Topic, DeletionPolicy: RetainExceptOnCreate, UpdateReplacePolicy: Retain}\n")
    name = unique("retained")
    deploy(cf, name, body + "Outputs:\n  Arn: {Value: !Ref Topic}\n")
    arn = outputs(describe(cf, name))["Arn"]
    cf.delete_stack(StackName=name)
    assert arn in {t["TopicArn"] for t in client("sns").list_topics()["Topics"]}


def test_named_iam_resources_need_the_named_iam_capability(cf):
    body = """
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: named-role
      AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: [{Effect: Allow,
                                 Principal: {Service: ecs-tasks.amazonaws.com}, Action: "sts:AssumeRole"}]}
"""
    error = error_of(lambda: change_set(cf, unique("iam"), body, Capabilities=["CAPABILITY_IAM"]))
    assert (error["Code"], error["Message"]) == ("InsufficientCapabilitiesException",
                                                 "Requires capabilities : [CAPABILITY_NAMED_IAM]")
    assert deploy(cf, unique("iam"), body)["Capabilities"] == ["CAPABILITY_NAMED_IAM"]


HTTPS_LISTENER = """
Parameters:
  Vpc: {Type: "AWS::EC2::VPC::Id"}
  Subnets: {Type: "List<AWS::EC2::Subnet::Id>"}
  Certificate: {Type: String}
Resources:
  Alb: {Type: AWS::ElasticLoadBalancingV2::LoadBalancer, Properties: {Subnets: !Ref Subnets}}
  Targets:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties: {Port: 8080, Protocol: HTTP, TargetType: ip, VpcId: !Ref Vpc}
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties: {LoadBalancerArn: !Ref Alb, Port: 443, Protocol: HTTPS,
                 Certificates: [{CertificateArn: !Ref Certificate}],
                 DefaultActions: [{Type: forward, TargetGroupArn: !Ref Targets}]}
"""


def test_an_https_listener_may_name_a_certificate_of_the_emulators_own_account(cf, client):
    vpc = client("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = client("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    parameters = {"Vpc": vpc, "Subnets": ",".join(s["SubnetId"] for s in subnets[:2])}
    ours = f"arn:aws:acm:{REGION}:123456789012:certificate/00000000-0000-0000-0000-000000000002"
    theirs = f"arn:aws:acm:{REGION}:999999999999:certificate/00000000-0000-0000-0000-000000000002"
    assert deploy(cf, unique("https"), HTTPS_LISTENER, {**parameters, "Certificate": ours})["StackStatus"] == (
        "CREATE_COMPLETE")
    assert deploy(cf, unique("https"), HTTPS_LISTENER, {**parameters, "Certificate": theirs})["StackStatus"] == (
        "ROLLBACK_COMPLETE")


def test_a_template_url_on_the_emulators_own_s3_is_read(cf, client, emulator):
    s3 = client("s3")
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key="dev/topic.yaml", Body=TOPIC.encode())
    name = unique("url")
    created = cf.create_change_set(StackName=name, ChangeSetName="fromurl", ChangeSetType="CREATE",
                                   TemplateURL=f"{emulator.url}/templates/dev/topic.yaml")
    assert cf.describe_change_set(ChangeSetName=created["Id"])["Status"] == "CREATE_COMPLETE"


def test_a_tls_only_bucket_policy_lets_the_emulators_requests_through(client):
    s3 = client("s3")
    s3.create_bucket(Bucket="tls-only")
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"]}
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {**deny, "Sid": "TlsOnly", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    s3.put_object(Bucket="tls-only", Key="lock", Body=b"x")
    assert s3.get_object(Bucket="tls-only", Key="lock")["Body"].read() == b"x"
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]}))
    assert error_of(lambda: s3.put_object(Bucket="tls-only", Key="other", Body=b"x"))["Code"] in ("403",
                                                                                                  "AccessDenied")


def test_dynamic_references_are_left_as_they_are(cf):
    body = """
Resources:
  Secret: {Type: AWS::SecretsManager::Secret, Properties: {Name: token}}
  Redis:
    Type: AWS::ElastiCache::ReplicationGroup
    Properties: {ReplicationGroupDescription: r, AuthToken: !Sub "{{resolve:secretsmanager:${Secret}:SecretString}}"}
  Topic: {Type: AWS::SNS::Topic, Properties: {DisplayName: "{{resolve:ssm:/perf/display-name}}"}}
"""
    assert deploy(cf, unique("dynamic"), body)["StackStatus"] == "CREATE_COMPLETE"


# Real templates ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered_dev():
    return render_env(load_config("dev"), {"security": security.BLUEPRINT, "network": network.BLUEPRINT})


def test_rendered_security_and_network_stacks_deploy_with_chained_parameters(cf, client, rendered_dev):
    security_stack = deploy(cf, "dev-performance-mgmt-security", rendered_dev.stack("security").body)
    assert security_stack["StackStatus"] == "CREATE_COMPLETE"
    upstream = outputs(security_stack)
    network_manifest = rendered_dev.stack("network").manifest
    parameters = {name: upstream[item["output"]] for name, item in network_manifest["parameters"].items()}
    network_stack = deploy(cf, network_manifest["stack_name"], rendered_dev.stack("network").body, parameters)
    assert network_stack["StackStatus"] == "CREATE_COMPLETE"
    assert set(outputs(network_stack)) == set(network_manifest["outputs"])
    private = outputs(network_stack)["PrivateSubnetIds"].split(",")
    subnets = client("ec2").describe_subnets(SubnetIds=private)["Subnets"]
    # Placed by zone id, as the template says (moto's own Subnet ignored AvailabilityZoneId).
    assert sorted(s["AvailabilityZoneId"] for s in subnets) == sorted(load_config("dev").network.zones())
    # deploying the same templates again changes nothing
    again = change_set(cf, network_manifest["stack_name"], rendered_dev.stack("network").body, parameters)
    assert again["StatusReason"] == NO_CHANGES


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_emulator_knows_every_type_the_blueprints_use(env):
    cfg = load_config(env)
    unknown = {key: unknown_types(parse_template(bp.build(cfg).to_yaml())) for key, bp in all_blueprints().items()}
    assert unknown == dict.fromkeys(unknown, [])


# The command -------------------------------------------------------------------------------------------

def test_local_says_it_is_a_tool_for_trying_and_testing_never_a_claim_about_aws():
    result = CliRunner().invoke(cli, ["local", "--help"])
    assert result.exit_code == 0
    assert "for trying and testing" in result.output and "never a claim about AWS" in result.output


def test_local_without_moto_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "moto" else real(name, *a))
    result = CliRunner().invoke(cli, ["local"])
    assert result.exit_code == 2
    assert "pip install 'perfdeploy[local]'" in result.output


def test_local_on_a_taken_port_is_a_usage_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = CliRunner().invoke(cli, ["local", "--port", str(taken.getsockname()[1])])
    assert result.exit_code == 2
    assert "cannot listen on 127.0.0.1:" in result.output


def test_the_cli_does_not_import_moto():
    code = "import sys, perfdeploy.cli; print('moto' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_local_serves_until_terminated(tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen([sys.executable, "-m", "perfdeploy", "local", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        local = boto3.client("cloudformation", endpoint_url=url, region_name=REGION)
        assert local.list_stacks()["StackSummaries"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert f"export AWS_ENDPOINT_URL={url}" in stderr and "emulator stopped" in stderr


# Several emulators in one session (last: starting one resets the state every emulator shares) ------------

def test_a_new_emulator_starts_empty_on_its_own_port(emulator):
    with Emulator() as url:
        assert url != emulator.url
        fresh = boto3.client("cloudformation", endpoint_url=url, region_name=REGION)
        assert fresh.list_stacks()["StackSummaries"] == []
        assert deploy(fresh, "fresh", TOPIC)["StackStatus"] == "CREATE_COMPLETE"


# An action moto lacks ---------------------------------------------------------------------------------

def test_an_action_moto_does_not_implement_is_a_clear_error_not_a_server_error(client):
    ecs = client("ecs")
    with pytest.raises(ClientError) as caught:
        ecs.list_service_deployments(cluster="no-such-cluster", service="no-such-service")
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400  # plain moto: HTTP 500, retried, a traceback
    assert response["Error"]["Code"] == "UnknownOperationException"
    assert response["Error"]["Message"] == "The local emulator (moto) does not implement ecs ListServiceDeployments"
    assert response["ResponseMetadata"].get("RetryAttempts", 0) == 0
