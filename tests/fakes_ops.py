"""Fakes for destroy and drift: deletes that take time and can fail like CloudFormation's, stack resources
with physical ids, drift detection (the emulator has none), and the S3/Backup/ElastiCache calls destroy makes."""

from __future__ import annotations

import itertools
import threading

from fakes import FakeCloudFormation, FakeS3, FakeStack, _event, client_error

_ids = itertools.count(1)


class OpsCloudFormation(FakeCloudFormation):
    """FakeCloudFormation plus, like AWS:
    - a deleted stack answers by its id (DELETE_COMPLETE) but no longer by its name;
    - delete_stack is asynchronous (DELETE_IN_PROGRESS, then DELETE_COMPLETE), refused while termination
      protection is on, RetainResources accepted only in DELETE_FAILED;
    - list_stack_resources from the stack's template (physical id `<stack>-<logical id>`, a role's its RoleName);
    - a stack whose RoleARN names a role no longer in any stack fails to delete, as AWS answers it.
    Knobs:
    - delete_gates[stack_name] = Event: the delete completes only once the test sets it;
    - undeletable[stack_name] = {logical_id: reason}: those resources fail to delete unless retained;
    - drift[stack_name] = [StackResourceDrift dicts]; drift_polls = N: detection is in progress for N status
      calls; throttle_drift_status = N: the next N status calls raise Throttling.
    """

    def __init__(self):
        super().__init__()
        self.delete_gates: dict[str, threading.Event] = {}
        self.undeletable: dict[str, dict[str, str]] = {}
        self.timeline: list[tuple[str, str]] = []      # ("start" | "done", stack name), in order
        self.drift: dict[str, list[dict]] = {}
        self.drift_polls = 2
        self.throttle_drift_status = 0
        self.detections: dict[str, dict] = {}
        self.resource_status: dict[tuple[str, str], str] = {}

    def _stack(self, name_or_id: str) -> FakeStack:
        for key, stack in self.stacks.items():
            if name_or_id == stack.stack_id or (name_or_id == stack.name and not key.startswith("deleted:")):
                return stack
        raise client_error("ValidationError", f"Stack with id {name_or_id} does not exist", "DescribeStacks")

    def deployed(self, name: str, resources: dict[str, dict], **kwargs) -> FakeStack:
        """A stack in CREATE_COMPLETE with these template resources."""
        return self.put(name, "CREATE_COMPLETE", {"Resources": resources}, **kwargs)

    def list_stack_resources(self, StackName, NextToken=None):
        stack = self._stack(StackName)
        return {"StackResourceSummaries": [
            {"LogicalResourceId": lid, "PhysicalResourceId": _physical_id(stack, lid, res), "ResourceType": res["Type"],
             "ResourceStatus": self.resource_status.get((stack.name, lid), "CREATE_COMPLETE")}
            for lid, res in stack.template.get("Resources", {}).items()]}

    def delete_stack(self, StackName, RetainResources=(), ClientRequestToken=None):
        self._log("delete_stack", StackName=StackName, RetainResources=list(RetainResources),
                  ClientRequestToken=ClientRequestToken)
        stack = self._stack(StackName)
        if self._repeated(stack, ClientRequestToken):
            return {}
        if stack.termination_protection:
            raise client_error("ValidationError", f"Stack [{stack.name}] cannot be deleted while "
                               "TerminationProtection is enabled", "DeleteStack")
        if RetainResources and stack.status != "DELETE_FAILED":
            raise client_error("ValidationError", "RetainResources is only valid for stacks in DELETE_FAILED",
                               "DeleteStack")
        with self.lock:
            self.timeline.append(("start", stack.name))
        stack.status = "DELETE_IN_PROGRESS"
        threading.Thread(target=self._finish_delete, args=(stack, set(RetainResources)), daemon=True).start()

    def _finish_delete(self, stack: FakeStack, retain: set[str]) -> None:
        gate = self.delete_gates.get(stack.name)
        if gate is not None:
            gate.wait(10)
        with self.lock:
            failing = {lid: why for lid, why in self.undeletable.get(stack.name, {}).items() if lid not in retain}
            # As AWS answers it: the stack goes DELETE_FAILED, "Role ... is invalid or cannot be assumed"
            # (e.g. https://github.com/awslabs/route53-dynamic-dns-with-lambda/issues/55).
            if stack.role_arn and not self._role_exists(stack.role_arn.rsplit("/", 1)[-1]):
                failing = {stack.name: f"Role {stack.role_arn} is invalid or cannot be assumed"}
            if failing:
                for lid, why in failing.items():
                    self.resource_status[(stack.name, lid)] = "DELETE_FAILED"
                    stack.events.append(_event(stack, lid, "DELETE_FAILED", why))
                stack.status = "DELETE_FAILED"
                return
            stack.status = "DELETE_COMPLETE"
            stack.events.append(_event(stack, stack.name, "DELETE_COMPLETE", ""))
            self.stacks.pop(stack.name, None)
            self.stacks[f"deleted:{stack.stack_id}"] = stack
            self.timeline.append(("done", stack.name))

    def _role_exists(self, name: str) -> bool:
        """A role of a stack not deleted."""
        return any(res.get("Type") == "AWS::IAM::Role" and _physical_id(stack, lid, res) == name
                   for key, stack in self.stacks.items() if not key.startswith("deleted:")
                   for lid, res in stack.template.get("Resources", {}).items())

    # drift
    def detect_stack_drift(self, StackName):
        self._log("detect_stack_drift", StackName=StackName)
        stack = self._stack(StackName)
        detection = f"drift-{next(_ids)}"
        self.detections[detection] = {"stack": stack.name, "remaining": self.drift_polls}
        return {"StackDriftDetectionId": detection}

    def describe_stack_drift_detection_status(self, StackDriftDetectionId):
        self._log("describe_stack_drift_detection_status", StackDriftDetectionId=StackDriftDetectionId)
        self.throttle("throttle_drift_status", "DescribeStackDriftDetectionStatus")
        detection = self.detections[StackDriftDetectionId]
        if detection["remaining"] > 0:
            detection["remaining"] -= 1
            return {"StackDriftDetectionId": StackDriftDetectionId, "DetectionStatus": "DETECTION_IN_PROGRESS"}
        drifted = self.drift.get(detection["stack"], [])
        return {"StackDriftDetectionId": StackDriftDetectionId, "DetectionStatus": "DETECTION_COMPLETE",
                "StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC", "DriftedStackResourceCount": len(drifted)}

    def describe_stack_resource_drifts(self, StackName, StackResourceDriftStatusFilters=(), NextToken=None):
        stack = self._stack(StackName)
        found = [d for d in self.drift.get(stack.name, [])
                 if d["StackResourceDriftStatus"] in StackResourceDriftStatusFilters]
        start = int(NextToken or 0)          # one drift per page: callers must follow NextToken
        page = {"StackResourceDrifts": found[start:start + 1]}
        if start + 1 < len(found):
            page["NextToken"] = str(start + 1)
        return page


def _physical_id(stack: FakeStack, lid: str, resource: dict) -> str:
    """A role's is its RoleName, as on AWS; anything else `<stack>-<logical id>`."""
    props = resource.get("Properties") or {}
    return props.get("RoleName") if resource.get("Type") == "AWS::IAM::Role" and props.get("RoleName") \
        else f"{stack.name}-{lid}"


def resource_drift(logical_id: str, rtype: str, status: str = "MODIFIED", differences=()) -> dict:
    return {"LogicalResourceId": logical_id, "ResourceType": rtype, "StackResourceDriftStatus": status,
            "PhysicalResourceId": f"phys-{logical_id}",
            "PropertyDifferences": [{"PropertyPath": path, "ExpectedValue": expected, "ActualValue": actual,
                                     "DifferenceType": kind} for path, expected, actual, kind in differences]}


class VersionedS3(FakeS3):
    """The artifacts-bucket fake (the environment's lock lives there) plus versioned buckets to empty:
    versions[bucket] = [{"Key", "VersionId", "marker"?}]; locked[(key, version)] = (code, message): that
    version cannot be deleted (object lock, a denying policy), reported as S3 does, in a 200 answer."""

    def __init__(self, versions: dict[str, list[dict]] | None = None):
        super().__init__()
        self.versions = versions or {}
        self.locked: dict[tuple[str, str], tuple[str, str]] = {}
        self.delete_calls = 0

    def list_object_versions(self, Bucket, MaxKeys=1000):
        if Bucket not in self.versions:
            raise client_error("NoSuchBucket", "The specified bucket does not exist")
        items = self.versions[Bucket][:MaxKeys]
        return {"Versions": [i for i in items if not i.get("marker")],
                "DeleteMarkers": [i for i in items if i.get("marker")]}

    def delete_objects(self, Bucket, Delete):
        self.delete_calls += 1
        assert self.delete_calls < 100, "DeleteObjects called again and again for the same keys"
        asked = [(o["Key"], o["VersionId"]) for o in Delete["Objects"]]
        errors = [{"Key": k, "VersionId": v, "Code": self.locked[(k, v)][0], "Message": self.locked[(k, v)][1]}
                  for k, v in asked if (k, v) in self.locked]
        gone = {a for a in asked if a not in self.locked}
        self.versions[Bucket] = [i for i in self.versions[Bucket] if (i["Key"], i["VersionId"]) not in gone]
        answer = {} if Delete.get("Quiet") else {"Deleted": [{"Key": k, "VersionId": v} for k, v in gone]}
        return {**answer, **({"Errors": errors} if errors else {})}


class FakeBackup:
    def __init__(self, vaults: dict[str, list[str]] | None = None, unlistable: bool = False):
        self.vaults = vaults or {}
        self.unlistable = unlistable   # like the emulator, which does not implement the listing
        self.deleted: list[str] = []

    def list_recovery_points_by_backup_vault(self, BackupVaultName, NextToken=None):
        if self.unlistable:
            raise client_error("404", "Not Found", "ListRecoveryPointsByBackupVault", status=404)
        if BackupVaultName not in self.vaults:
            raise client_error("ResourceNotFoundException", "no such vault")
        return {"RecoveryPoints": [{"RecoveryPointArn": arn, "Status": "COMPLETED"}
                                   for arn in self.vaults[BackupVaultName]]}

    def delete_recovery_point(self, BackupVaultName, RecoveryPointArn):
        self.deleted.append(RecoveryPointArn)
        self.vaults[BackupVaultName].remove(RecoveryPointArn)


class FakeElastiCache:
    def __init__(self, snapshots: dict[str, list[str]] | None = None):
        self.snapshots = snapshots or {}

    def describe_snapshots(self, ReplicationGroupId):
        return {"Snapshots": [{"SnapshotName": n} for n in self.snapshots.get(ReplicationGroupId, [])]}
