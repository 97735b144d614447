"""The one place that lists IAM actions allowed on ``Resource: "*"``.

AWS grants these actions only on every resource: they act on no resource ARN (a registry-wide token, trace
segments, metric data scoped by a condition instead, task definition families that have no ARN before they
exist). Everything else must name its resources. The lint gate (house rule E9104) and the iam tests read
this set; add an action here only with a comment saying why AWS offers no narrower grant.
"""

RESOURCE_WILDCARD_ACTIONS = frozenset({
    "ecr:GetAuthorizationToken",          # one token for the whole registry; pull/push are scoped to our repo
    "xray:PutTraceSegments",              # X-Ray has no resource-level permissions for these: the daemon
    "xray:PutTelemetryRecords",           # sidecar sends segments and telemetry,
    "xray:GetSamplingRules",              # and reads the sampling rules and targets
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",           # no resource ARN; scoped by the cloudwatch:namespace condition
    "ecs:RegisterTaskDefinition",         # task definitions have no ARN until registered (CI/CD deploy role)
    "ecs:DescribeTaskDefinition",         # takes no resource-level permission (CI/CD reads the current one)
    # Elastic Load Balancing's Describe actions take no resource-level permission (the ECS load balancer
    # role reads the listeners, rules and target groups it shifts; its writes are scoped to ours).
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
})
