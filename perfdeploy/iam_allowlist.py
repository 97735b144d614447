"""The one place that lists IAM actions allowed on ``Resource: "*"``.

AWS grants these actions only on every resource: they act on no resource ARN (a registry-wide token, trace
segments, metric data scoped by a condition instead, task definition families that have no ARN before they
exist). Everything else must name its resources. The lint gate (house rule E9104) and the iam tests read
this set.
"""

RESOURCE_WILDCARD_ACTIONS = frozenset({
    "ecr:GetAuthorizationToken",          # one token for the whole registry
    "xray:PutTraceSegments",              # X-Ray has no resource-level permissions for these
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",           # no resource ARN; scoped by the cloudwatch:namespace condition
    "ecs:RegisterTaskDefinition",         # task definitions have no ARN until registered
    "ecs:DescribeTaskDefinition",
    "ecs:DeregisterTaskDefinition",
})
