"""Data-safety facts shared by the blueprints, the lint gate, render (stack policies) and the deploy guard.

One list of what "stateful" means, so the template, the linter and the engine never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the deploy guard reads these facts without importing troposphere
    from troposphere import AWSObject

# Resource types whose loss loses data (issue 8 names these; Backup vaults hold the recovery points).
STATEFUL_TYPES = frozenset({
    "AWS::DynamoDB::Table",
    "AWS::MSK::Cluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::KMS::Key",
    "AWS::S3::Bucket",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
    "AWS::ECR::Repository",
    "AWS::Backup::BackupVault",
})

# Types whose DeletionPolicy may be Snapshot (CloudFormation takes a final snapshot before deleting).
SNAPSHOT_TYPES = frozenset({"AWS::ElastiCache::ReplicationGroup", "AWS::RDS::DBCluster", "AWS::RDS::DBInstance"})

RETAINING_DELETION_POLICIES = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})
RETAINING_REPLACE_POLICIES = frozenset({"Retain", "Snapshot"})


def protect(resource: AWSObject, stateful_env: bool) -> AWSObject:
    """Give a stateful resource the environment's deletion and replacement policies.

    In staging and prod a later mistake must never delete data, yet a failed first create should clean up
    after itself: RetainExceptOnCreate (or Snapshot where the type supports it). In dev data is disposable.
    """
    if resource.resource_type not in STATEFUL_TYPES:
        raise ValueError(f"{resource.title} ({resource.resource_type}) is not a stateful type")
    if stateful_env:
        snapshot = resource.resource_type in SNAPSHOT_TYPES
        resource.DeletionPolicy = "Snapshot" if snapshot else "RetainExceptOnCreate"
        resource.UpdateReplacePolicy = "Snapshot" if snapshot else "Retain"
    else:
        resource.DeletionPolicy = "Delete"
        resource.UpdateReplacePolicy = "Delete"
    return resource


def stack_policy(stateful_logical_ids: list[str]) -> dict:
    """A stack policy that allows every update but the replacement or deletion of the given resources."""
    statements: list[dict] = [{"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}]
    if stateful_logical_ids:
        statements.append({
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["Update:Replace", "Update:Delete"],
            "Resource": [f"LogicalResourceId/{lid}" for lid in sorted(stateful_logical_ids)],
        })
    return {"Statement": statements}
