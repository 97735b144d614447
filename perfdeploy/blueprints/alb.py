"""alb: the internet-facing Application Load Balancer, its target group and listeners, its access-log bucket,
and (where configured) a WAFv2 web ACL.

HTTPS terminates here with the environment's ACM certificate; HTTP redirects to it. The web ACL logs every
request it sees to its own log group (authorization and cookie headers redacted). Plain HTTP forwarding
exists only where an environment sets ``allow_http: true`` (dev, which has no certificate): config refuses it
in staging and prod, and the lint gate reports it as the notice I9105 wherever it appears.
"""

from __future__ import annotations

from awacs import s3
from awacs.aws import Allow, Bool, Condition, Deny, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Join, Ref, Select, Split, Sub, Template
from troposphere.ec2 import SecurityGroup
from troposphere.elasticloadbalancingv2 import (
    Action,
    Certificate,
    ForwardConfig,
    Listener,
    ListenerRule,
    ListenerRuleAction,
    LoadBalancer,
    LoadBalancerAttributes,
    Matcher,
    PathPatternConfig,
    RedirectConfig,
    TargetGroup,
    TargetGroupAttribute,
    TargetGroupTuple,
)
from troposphere.elasticloadbalancingv2 import Condition as RuleCondition
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    Bucket,
    BucketEncryption,
    BucketPolicy,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentVersionExpiration,
    OwnershipControls,
    OwnershipControlsRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)
from troposphere.wafv2 import (
    AllowAction,
    BlockAction,
    DefaultAction,
    LoggingConfiguration,
    LoggingConfigurationFieldToMatch,
    ManagedRuleGroupStatement,
    OverrideAction,
    RateBasedStatement,
    RuleAction,
    SingleHeader,
    VisibilityConfig,
    WebACL,
    WebACLAssociation,
    WebACLRule,
)
from troposphere.wafv2 import Statement as WafStatement

from perfdeploy.blueprints.base import (
    SECURITY_GROUP_ID,
    SUBNET_IDS,
    VPC_ID,
    Blueprint,
    Input,
    log_group,
    output,
    param,
    stateful,
    tags,
)
from perfdeploy.config import EnvConfig

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # TLS 1.3 preferred, TLS 1.2 the floor
HTTPS, HTTP = 443, 80
DEREGISTRATION_DELAY_SECONDS = 30  # the service answers in well under a second; drain quickly on deploys
NONCURRENT_LOG_VERSION_DAYS = 7  # an overwritten or deleted access log can be recovered for a week
WAF_REDACTED_HEADERS = ("authorization", "cookie")  # credentials never reach the WAF logs

# ELB log delivery writes as a regional AWS account in the regions that existed before August 2022; AWS
# documents the service principal only for regions opened since. We know the region at build time (cfg.region
# is where the stack is deployed), so the policy names exactly the principal AWS documents for that region.
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
ELB_LOG_DELIVERY_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "af-south-1": "098369216593", "ap-east-1": "754344448648",
    "ap-south-1": "718504428378", "ap-northeast-1": "582318560864", "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ca-central-1": "985666609251", "eu-central-1": "054676820928", "eu-west-1": "156460612806",
    "eu-west-2": "652711504416", "eu-west-3": "009996457667", "eu-south-1": "635631232127",
    "eu-north-1": "897822967062", "me-south-1": "076674570225", "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584", "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993", "cn-northwest-1": "037604701340",
}


def access_log_bucket(cfg: EnvConfig) -> Bucket:
    """SSE-S3 (AES256): ALB log delivery cannot write to a bucket encrypted with a KMS key. Versioned, so a
    log deleted or overwritten by mistake can be recovered; old versions expire after a week."""
    return stateful(Bucket(
        "AccessLogBucket",
        BucketEncryption=BucketEncryption(ServerSideEncryptionConfiguration=[ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256"))]),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True),
        OwnershipControls=OwnershipControls(Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
        LifecycleConfiguration=LifecycleConfiguration(Rules=[LifecycleRule(
            Id="expire-access-logs",
            Status="Enabled",
            ExpirationInDays=cfg.alb.access_log_expiry_days,
            NoncurrentVersionExpiration=NoncurrentVersionExpiration(NoncurrentDays=NONCURRENT_LOG_VERSION_DAYS),
            AbortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(DaysAfterInitiation=1),
        )]),
        Tags=tags(cfg, cfg.resource_name("alb-logs")),
    ), cfg)


def log_delivery_principal(cfg: EnvConfig) -> Principal:
    account = ELB_LOG_DELIVERY_ACCOUNTS.get(cfg.region)
    if account is None:
        return Principal("Service", ELB_LOG_DELIVERY_SERVICE)
    return Principal("AWS", Sub(f"arn:${{AWS::Partition}}:iam::{account}:root"))


def access_log_bucket_policy(cfg: EnvConfig) -> BucketPolicy:
    bucket_arn = GetAtt("AccessLogBucket", "Arn")
    return BucketPolicy(
        "AccessLogBucketPolicy",
        Bucket=Ref("AccessLogBucket"),
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[
            Statement(
                Sid="ElbLogDelivery",
                Effect=Allow,
                Principal=log_delivery_principal(cfg),
                Action=[s3.PutObject],
                Resource=[Sub("${AccessLogBucket.Arn}/AWSLogs/${AWS::AccountId}/*")],
            ),
            Statement(
                Sid="DenyInsecureTransport",
                Effect=Deny,
                Principal=Principal("*"),
                Action=[s3.Action("*")],
                Resource=[bucket_arn, Sub("${AccessLogBucket.Arn}/*")],
                Condition=Condition(Bool("aws:SecureTransport", "false")),
            ),
        ]),
    )


def load_balancer(cfg: EnvConfig) -> LoadBalancer:
    attributes = {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": Ref("AccessLogBucket"),
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": str(cfg.alb.deletion_protection).lower(),
    }
    return LoadBalancer(
        "LoadBalancer",
        Type="application",
        Scheme="internet-facing",
        IpAddressType="ipv4",
        Subnets=param("PublicSubnetIds"),
        SecurityGroups=[param("AlbSecurityGroupId")],
        LoadBalancerAttributes=[LoadBalancerAttributes(Key=k, Value=v) for k, v in attributes.items()],
        Tags=tags(cfg, cfg.resource_name("alb")),
        # ELB checks that it may write to the log bucket when the attribute is set.
        DependsOn="AccessLogBucketPolicy",
    )


def target_group(cfg: EnvConfig) -> TargetGroup:
    return TargetGroup(
        "TargetGroup",
        TargetType="ip",
        Protocol="HTTP",
        ProtocolVersion="HTTP1",
        Port=cfg.ecs.container_port,
        VpcId=param("VpcId"),
        HealthCheckEnabled=True,
        HealthCheckProtocol="HTTP",
        HealthCheckPath=cfg.ecs.health_check_path,
        HealthCheckIntervalSeconds=15,
        HealthCheckTimeoutSeconds=5,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=3,
        Matcher=Matcher(HttpCode="200"),
        TargetGroupAttributes=[TargetGroupAttribute(Key="deregistration_delay.timeout_seconds",
                                                    Value=str(DEREGISTRATION_DELAY_SECONDS))],
        Tags=tags(cfg, cfg.resource_name("tg")),
    )


def forward() -> Action:
    return Action(Type="forward", TargetGroupArn=Ref("TargetGroup"))


def https_listener(cfg: EnvConfig) -> Listener:
    return Listener(
        "HttpsListener",
        LoadBalancerArn=Ref("LoadBalancer"),
        Port=HTTPS,
        Protocol="HTTPS",
        SslPolicy=TLS_POLICY,
        Certificates=[Certificate(CertificateArn=cfg.alb.certificate_arn)],
        DefaultActions=[forward()],
        Tags=tags(cfg),
    )


def http_listener(cfg: EnvConfig) -> Listener:
    """Redirect to HTTPS; forward plain HTTP only where the environment explicitly allows it."""
    if cfg.alb.allow_http:
        action = forward()
    else:
        action = Action(Type="redirect", RedirectConfig=RedirectConfig(
            Protocol="HTTPS", Port=str(HTTPS), Host="#{host}", Path="/#{path}", Query="#{query}",
            StatusCode="HTTP_301"))
    return Listener("HttpListener", LoadBalancerArn=Ref("LoadBalancer"), Port=HTTP, Protocol="HTTP",
                    DefaultActions=[action], Tags=tags(cfg))


def _visibility(name: str) -> VisibilityConfig:
    return VisibilityConfig(SampledRequestsEnabled=True, CloudWatchMetricsEnabled=True, MetricName=name)


def _managed_rule(name: str, priority: int) -> WebACLRule:
    return WebACLRule(
        Name=name,
        Priority=priority,
        Statement=WafStatement(ManagedRuleGroupStatement=ManagedRuleGroupStatement(VendorName="AWS", Name=name)),
        OverrideAction=OverrideAction(**{"None": {}}),  # the group's own actions (block) apply
        VisibilityConfig=_visibility(name),
    )


def web_acl(cfg: EnvConfig) -> list:
    """AWS managed common and known-bad-inputs rule groups, and a per-IP rate limit."""
    name = cfg.resource_name("waf")
    acl = WebACL(
        "WebAcl",
        Name=name,
        Scope="REGIONAL",
        Description=f"{cfg.service} {cfg.env}: managed rule groups and a per-IP rate limit",
        DefaultAction=DefaultAction(Allow=AllowAction()),
        Rules=[
            _managed_rule("AWSManagedRulesCommonRuleSet", 0),
            _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 1),
            WebACLRule(
                Name="RateLimitPerIp",
                Priority=2,
                Statement=WafStatement(RateBasedStatement=RateBasedStatement(
                    Limit=cfg.alb.waf_rate_limit, AggregateKeyType="IP")),
                Action=RuleAction(Block=BlockAction()),
                VisibilityConfig=_visibility("RateLimitPerIp"),
            ),
        ],
        VisibilityConfig=_visibility(name),
        Tags=tags(cfg, name),
    )
    association = WebACLAssociation("WebAclAssociation", ResourceArn=Ref("LoadBalancer"),
                                    WebACLArn=GetAtt("WebAcl", "Arn"))
    return [acl, association, *waf_logging(cfg)]


def waf_log_group_name(cfg: EnvConfig) -> str:
    """WAF writes only to log groups whose names start with aws-waf-logs-."""
    return f"aws-waf-logs-{cfg.resource_name('waf')}"


def waf_logging(cfg: EnvConfig) -> list:
    """Every request the web ACL evaluates, to a log group of our own (our logs key, the env's retention).
    The destination is the group's ARN without the ":*" that Fn::GetAtt Arn appends."""
    name = waf_log_group_name(cfg)
    group = log_group(cfg, "WafLogGroup", name)
    logging = LoggingConfiguration(
        "WafLogging",
        ResourceArn=GetAtt("WebAcl", "Arn"),
        LogDestinationConfigs=[Sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:"
                                   f"log-group:{name}")],
        RedactedFields=[LoggingConfigurationFieldToMatch(SingleHeader=SingleHeader(Name=h))
                        for h in WAF_REDACTED_HEADERS],
        DependsOn="WafLogGroup",
    )
    return [group, logging]


# Progressive delivery (blue/green, canary, linear): what ECS needs on the load balancer -------------------
# "Application Load Balancer resources for blue/green, linear, and canary deployments",
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html: a second
# (alternate) target group, a production listener rule and a test listener rule that forward to both groups
# with weights; ECS moves the weights during a deployment. Rules must forward only: a rule that mixes forward
# with redirect, fixed-response or authenticate actions fails the deployment.

def alternate_target_group(cfg: EnvConfig) -> TargetGroup:
    """The green side: the same settings as the primary target group; ECS registers the new revision here."""
    properties = {**target_group(cfg).properties, "Tags": tags(cfg, cfg.resource_name("tg-alt"))}
    return TargetGroup("AlternateTargetGroup", **properties)


def weighted_forward() -> ListenerRuleAction:
    """All traffic to the primary target group, none to the alternate: ECS shifts the weights as it deploys."""
    return ListenerRuleAction(Type="forward", ForwardConfig=ForwardConfig(TargetGroups=[
        TargetGroupTuple(TargetGroupArn=Ref("TargetGroup"), Weight=100),
        TargetGroupTuple(TargetGroupArn=Ref("AlternateTargetGroup"), Weight=0),
    ]))


def every_path_rule(cfg: EnvConfig, title: str, listener: str) -> ListenerRule:
    """A rule that matches every request, so the listener's default action is never what serves it.

    After a deployment the weights stand where ECS left them (the new revision's group at 100), not where the
    template says: change nothing in this rule casually, CloudFormation would put the weights back."""
    return ListenerRule(title, ListenerArn=Ref(listener), Priority=1,
                        Conditions=[RuleCondition(Field="path-pattern",
                                                  PathPatternConfig=PathPatternConfig(Values=["/*"]))],
                        Actions=[weighted_forward()], Tags=tags(cfg))


def test_listener_security_group(cfg: EnvConfig) -> SecurityGroup:
    """Who may reach the test listener: the VPC's own clients and the CIDRs in config, never the internet.

    The ALB is internet-facing, so a client inside the VPC reaches it through its NAT gateway: the source the
    ALB sees is the NAT gateway's Elastic IP, not a VPC address. Hence one /32 per NAT gateway."""
    port = cfg.deployment.listener.port
    sources = [(Join("", [Select(i, Split(",", param("NatPublicIps"))), "/32"]), f"NAT gateway {i + 1} of the VPC")
               for i in range(cfg.network.nat_gateways)]
    sources += [(cidr, "test listener CIDR from config") for cidr in cfg.deployment.listener.cidrs]
    name = cfg.resource_name("alb-test-sg")
    return SecurityGroup(
        "TestListenerSecurityGroup",
        GroupName=name,
        GroupDescription="Load balancer test listener: from inside the VPC and the configured CIDRs only",
        VpcId=param("VpcId"),
        SecurityGroupIngress=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIp": cidr,
                               "Description": description} for cidr, description in sources],
        # Replace the default allow-all egress: like the ALB's own group, only to the service tasks.
        SecurityGroupEgress=[{"IpProtocol": "tcp", "FromPort": cfg.ecs.container_port,
                              "ToPort": cfg.ecs.container_port,
                              "DestinationSecurityGroupId": param("TaskSecurityGroupId"),
                              "Description": "To the service tasks"}],
        Tags=tags(cfg, name),
    )


def test_listener(cfg: EnvConfig) -> Listener:
    """Where ECS sends test traffic to the new revision before production traffic (same TLS as production)."""
    listener = Listener("TestListener", LoadBalancerArn=Ref("LoadBalancer"), Port=cfg.deployment.listener.port,
                        Protocol="HTTP", DefaultActions=[forward()], Tags=tags(cfg))
    if cfg.alb.certificate_arn:
        listener.Protocol, listener.SslPolicy = "HTTPS", TLS_POLICY
        listener.Certificates = [Certificate(CertificateArn=cfg.alb.certificate_arn)]
    return listener


def progressive_delivery(cfg: EnvConfig, serving: str) -> list:
    """The alternate target group, the production rule on the serving listener, the test listener and rule."""
    return [alternate_target_group(cfg), every_path_rule(cfg, "ProductionListenerRule", serving),
            test_listener_security_group(cfg), test_listener(cfg),
            every_path_rule(cfg, "TestListenerRule", "TestListener")]


def progressive_delivery_outputs(t: Template) -> None:
    output(t, "AlternateTargetGroupArn", Ref("AlternateTargetGroup"), "Alternate (green) target group ARN")
    output(t, "AlternateTargetGroupFullName", GetAtt("AlternateTargetGroup", "TargetGroupFullName"),
           "Alternate target group full name (the TargetGroup dimension of CloudWatch metrics)")
    output(t, "ProductionListenerRuleArn", Ref("ProductionListenerRule"), "Production listener rule ECS shifts")
    output(t, "TestListenerArn", Ref("TestListener"), "Test listener ARN")
    output(t, "TestListenerRuleArn", Ref("TestListenerRule"), "Test listener rule ECS shifts")


class AlbBlueprint(Blueprint):
    key = "alb"
    description = "Application Load Balancer, target group, listeners, access-log bucket, WAF"
    guarded_by_rollback_trigger = True

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        found = {
            "VpcId": Input("network", "VpcId", VPC_ID),
            "PublicSubnetIds": Input("network", "PublicSubnetIds", SUBNET_IDS),
            "AlbSecurityGroupId": Input("network", "AlbSecurityGroupId", SECURITY_GROUP_ID),
            **({"LogsKeyArn": Input("security", "LogsKeyArn")} if cfg.alb.waf else {}),
        }
        if cfg.deployment.progressive:  # the test listener's security group
            found.update(TaskSecurityGroupId=Input("network", "TaskSecurityGroupId", SECURITY_GROUP_ID),
                         NatPublicIps=Input("network", "NatPublicIps"))
        return found

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(access_log_bucket(cfg))
        t.add_resource(access_log_bucket_policy(cfg))
        lb = t.add_resource(load_balancer(cfg))
        if cfg.deployment.progressive:
            lb.SecurityGroups = [*lb.SecurityGroups, Ref("TestListenerSecurityGroup")]
        t.add_resource(target_group(cfg))
        serving = "HttpListener"
        if cfg.alb.certificate_arn:
            t.add_resource(https_listener(cfg))
            serving = "HttpsListener"
        t.add_resource(http_listener(cfg))
        if cfg.alb.waf:
            for resource in web_acl(cfg):
                t.add_resource(resource)
        if cfg.deployment.progressive:
            t.add_resource(progressive_delivery(cfg, serving))
            progressive_delivery_outputs(t)

        output(t, "LoadBalancerArn", Ref("LoadBalancer"), "ALB ARN")
        output(t, "LoadBalancerDnsName", GetAtt("LoadBalancer", "DNSName"), "ALB DNS name")
        output(t, "LoadBalancerFullName", GetAtt("LoadBalancer", "LoadBalancerFullName"),
               "ALB full name (the LoadBalancer dimension of CloudWatch metrics)")
        output(t, "TargetGroupArn", Ref("TargetGroup"), "Target group ARN")
        output(t, "TargetGroupFullName", GetAtt("TargetGroup", "TargetGroupFullName"),
               "Target group full name (the TargetGroup dimension of CloudWatch metrics)")
        output(t, "ListenerArn", Ref(serving), "ARN of the listener that forwards to the target group")
        return t


BLUEPRINT = AlbBlueprint()
