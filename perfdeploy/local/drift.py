"""Drift detection (moto has none): the template's properties compared with the live resource.

``DetectStackDrift`` runs at once (the detection is complete when it answers), ``DescribeStackDriftDetectionStatus``
and ``DescribeStackResourceDrifts`` answer as CloudFormation does
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html): per resource
IN_SYNC, MODIFIED (with the property differences), DELETED, or NOT_CHECKED for a type it cannot read.

The emulator reads the live values of the properties in ``READERS`` (what someone changes behind a stack's
back with boto3: a topic's display name, a log group's retention, a table's billing mode, a key's rotation,
EC2 tags, ...); a property it does not read is not compared, a type it does not read is NOT_CHECKED, and
placeholders, having nothing behind them, are NOT_CHECKED too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.core.utils import utcnow
from moto.dynamodb.models import dynamodb_backends
from moto.ec2.models import ec2_backends
from moto.ecr.models import ecr_backends
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.utilities.utils import get_partition

from perfdeploy.local.in_place import tag_dict

Live = dict[str, Any]
Reader = Callable[[Any, str, str], "Live | None"]  # (resource, account, region) -> live properties, None if gone


def _ec2_tags(a: str, g: str, resource_id: str) -> dict[str, str]:
    tags = ec2_backends[a][g].tags.get(resource_id, {})
    return {k: v for k, v in tags.items() if not k.startswith("aws:")}


def _topic(r, a, g) -> Live | None:
    topic = sns_backends[a][g].topics.get(r.arn)
    return None if topic is None else {"TopicName": topic.name, "DisplayName": topic.display_name,
                                       "KmsMasterKeyId": topic.kms_master_key_id, "Tags": dict(topic._tags)}


def _log_group(r, a, g) -> Live | None:
    group = logs_backends[a][g].groups.get(r.name)
    return None if group is None else {"LogGroupName": group.name, "RetentionInDays": group.retention_in_days,
                                       "KmsKeyId": group.kms_key_id}


def _table(r, a, g) -> Live | None:
    table = dynamodb_backends[a][g].tables.get(r.name)
    return None if table is None else {"TableName": table.name, "KeySchema": table.schema,
                                       "BillingMode": table.billing_mode,
                                       "DeletionProtectionEnabled": table.deletion_protection_enabled}


def _key(r, a, g) -> Live | None:
    key = kms_backends[a][g].keys.get(r.id)
    return None if key is None else {"Description": key.description, "Enabled": key.enabled,
                                     "EnableKeyRotation": key.key_rotation_status}


def _repository(r, a, g) -> Live | None:
    repository = ecr_backends[a][g].repositories.get(r.name)
    return None if repository is None else {"RepositoryName": repository.name,
                                            "ImageTagMutability": repository.image_tag_mutability}


def _vpc(r, a, g) -> Live | None:
    vpc = ec2_backends[a][g].vpcs.get(r.id)
    return None if vpc is None else {"CidrBlock": vpc.cidr_block, "EnableDnsHostnames": vpc.enable_dns_hostnames,
                                     "EnableDnsSupport": vpc.enable_dns_support, "Tags": _ec2_tags(a, g, r.id)}


def _security_group(r, a, g) -> Live | None:
    group = ec2_backends[a][g].get_security_group_from_id(r.id)
    return None if group is None else {"GroupDescription": group.description, "VpcId": group.vpc_id,
                                       "Tags": _ec2_tags(a, g, r.id)}


def _bucket(r, a, g) -> Live | None:
    bucket = s3_backends[a][get_partition(g)].buckets.get(r.name)
    return None if bucket is None else {"BucketName": bucket.name}


def _role(r, a, g) -> Live | None:
    role = next((x for x in iam_backends[a][get_partition(g)].roles.values() if x.name == r.name), None)
    return None if role is None else {"RoleName": role.name, "Description": role.description,
                                      "MaxSessionDuration": role.max_session_duration}


READERS: dict[str, Reader] = {
    "AWS::SNS::Topic": _topic, "AWS::Logs::LogGroup": _log_group, "AWS::DynamoDB::Table": _table,
    "AWS::KMS::Key": _key, "AWS::ECR::Repository": _repository, "AWS::EC2::VPC": _vpc,
    "AWS::EC2::SecurityGroup": _security_group, "AWS::S3::Bucket": _bucket, "AWS::IAM::Role": _role,
}


def _plain(value: Any) -> str:
    """A value as drift compares it: booleans and numbers as the template's text would give them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def resource_drift(stack: Stack, logical_id: str, resource: Any) -> dict[str, Any]:
    """One StackResourceDrift, as DescribeStackResourceDrifts gives it."""
    resource_type = getattr(resource, "cf_resource_type", "")
    expected = dict(getattr(resource, "cfn_properties", None) or {})
    drift: dict[str, Any] = {
        "StackId": stack.stack_id, "LogicalResourceId": logical_id, "ResourceType": resource_type,
        "PhysicalResourceId": getattr(resource, "physical_resource_id", ""),
        "ExpectedProperties": json.dumps(expected, sort_keys=True, default=str), "Timestamp": utcnow(),
        "PropertyDifferences": [],
    }
    reader = READERS.get(resource_type)
    if reader is None:
        drift["StackResourceDriftStatus"] = "NOT_CHECKED"
        return drift
    live = reader(resource, stack.account_id, stack.region_name)
    if live is None:
        drift["StackResourceDriftStatus"] = "DELETED"
        return drift
    actual = dict(expected)
    for prop, value in live.items():
        if prop not in expected:
            continue  # CloudFormation compares the properties the template sets
        want = tag_dict(expected[prop]) if prop == "Tags" else expected[prop]
        if _plain(want) != _plain(value):
            actual[prop] = [{"Key": k, "Value": v} for k, v in value.items()] if prop == "Tags" else value
            drift["PropertyDifferences"].append({"PropertyPath": f"/{prop}", "ExpectedValue": _plain(want),
                                                 "ActualValue": _plain(value), "DifferenceType": "NOT_EQUAL"})
    drift["ActualProperties"] = json.dumps(actual, sort_keys=True, default=str)
    drift["StackResourceDriftStatus"] = "MODIFIED" if drift["PropertyDifferences"] else "IN_SYNC"
    return drift


def detect(backend: CloudFormationBackend, stack: Stack) -> str:
    """Detect drift in every resource of the stack now; returns the detection id."""
    drifts = [resource_drift(stack, lid, r) for lid, r in stack.resource_map._parsed_resources.items()
              if lid in stack.resource_map._resource_json_map and r is not None and not isinstance(r, (str, list))]
    drifted = [d for d in drifts if d["StackResourceDriftStatus"] in ("MODIFIED", "DELETED")]
    detection_id = str(uuid.uuid4())
    stack.resource_drifts = drifts
    stack.drift_status = "DRIFTED" if drifted else "IN_SYNC"
    stack.drift_checked = utcnow()
    detections(backend)[detection_id] = {
        "StackId": stack.stack_id, "StackDriftDetectionId": detection_id, "StackDriftStatus": stack.drift_status,
        "DetectionStatus": "DETECTION_COMPLETE", "DriftedStackResourceCount": len(drifted),
        "Timestamp": stack.drift_checked,
    }
    return detection_id


def detections(backend: CloudFormationBackend) -> dict[str, dict[str, Any]]:
    if not hasattr(backend, "drift_detections"):
        backend.drift_detections = {}
    return backend.drift_detections
