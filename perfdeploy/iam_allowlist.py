"""Which IAM actions may be granted on ``Resource: "*"``: those AWS grants no other way.

AWS's own data decides first: an action for which the Service Authorization Reference lists no resource type
(cfn-lint's Policies.json, read by perfdeploy/iam_permissions.py) can only be granted on every resource.
The set below adds the actions that do name a resource type but that our roles need before any such
resource exists, or where AWS scopes them by a condition instead; add one only with a comment saying why.
The lint gate (house rule E9104) and the iam tests use ``granted_only_on_every_resource``.
"""

from perfdeploy import iam_permissions

RESOURCE_WILDCARD_ACTIONS = frozenset({
    "ecr:GetAuthorizationToken",          # one token for the whole registry; pull/push are scoped to our repo
    "xray:PutTraceSegments",              # X-Ray has no resource-level permissions for these: the daemon
    "xray:PutTelemetryRecords",           # sidecar sends segments and telemetry,
    "xray:GetSamplingRules",              # and reads the sampling rules and targets
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",           # no resource ARN; scoped by the cloudwatch:namespace condition
})


def granted_only_on_every_resource(action: str) -> bool:
    """True when ``Resource: "*"`` is the only way to grant the action (AWS's data, or the set above)."""
    return action in RESOURCE_WILDCARD_ACTIONS or iam_permissions.takes_no_resource(action)
