"""Drift: has anything changed a deployed stack's resources outside CloudFormation?

Detection is started for every deployed stack at once (CloudFormation runs them in parallel), then each is
waited for with backoff (a throttled status call is waited out, never a verdict), and the resources found
MODIFIED or DELETED are read with their property differences.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

from botocore.exceptions import ClientError

from perfdeploy.aws import Aws
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.stacks import describe
from perfdeploy.deploy.waiter import Backoff, poll
from perfdeploy.render import Rendered

# The stack states CloudFormation can detect drift in.
CHECKABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED",
                       "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"})
DRIFTED_STATUSES = ["MODIFIED", "DELETED"]
BACKOFF = Backoff(initial=2.0, maximum=10.0)  # detection takes seconds to a few minutes per stack

# A stack's status in the report: CloudFormation's StackDriftStatus (IN_SYNC, DRIFTED, NOT_CHECKED, UNKNOWN)
# or one of these.
NOT_DEPLOYED = "NOT_DEPLOYED"
ERROR = "ERROR"                        # detection could not run
DETECTION_FAILED = "DETECTION_FAILED"  # it ran, but not for every resource: the answer is incomplete


@dataclass
class Difference:
    property_path: str
    expected_value: str
    actual_value: str
    difference_type: str               # ADD | REMOVE | NOT_EQUAL


@dataclass
class ResourceDrift:
    logical_id: str
    type: str
    status: str                        # MODIFIED | DELETED
    physical_id: str = ""
    differences: list[Difference] = field(default_factory=list)


@dataclass
class StackDrift:
    key: str
    stack_name: str
    status: str
    drifted: list[ResourceDrift] = field(default_factory=list)
    reason: str = ""

    @property
    def error(self) -> bool:
        return self.status in (ERROR, DETECTION_FAILED)


@dataclass
class DriftReport:
    env: str
    region: str
    stacks: list[StackDrift]

    @property
    def drifted(self) -> bool:
        return any(s.drifted for s in self.stacks)

    @property
    def errors(self) -> list[StackDrift]:
        return [s for s in self.stacks if s.error]

    def to_json(self) -> dict:
        return {"env": self.env, "region": self.region, "drifted": self.drifted, "ok": not self.errors,
                "stacks": [asdict(s) for s in self.stacks]}


def detect_drift(rendered: Rendered, aws: Aws, reporter: Reporter, backoff: Backoff | None = None,
                 stop: threading.Event | None = None) -> DriftReport:
    """Detect drift in every deployed stack of the environment and read what drifted."""
    backoff = backoff or BACKOFF
    cfn = aws.client("cloudformation")
    results: list[StackDrift] = []
    detections: dict[str, str] = {}     # key -> StackDriftDetectionId
    for spec in rendered.stacks:
        result = StackDrift(spec.key, spec.stack_name, NOT_DEPLOYED)
        results.append(result)
        stack = describe(cfn, spec.stack_name)
        if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            continue
        if stack["StackStatus"] not in CHECKABLE:
            result.status = ERROR
            result.reason = f"drift cannot be detected in {stack['StackStatus']}"
            continue
        try:
            detections[spec.key] = poll(lambda name=spec.stack_name: _start(cfn, name), backoff, stop)
        except ClientError as exc:
            result.status, result.reason = ERROR, str(exc)
    absent = [r.key for r in results if r.key not in detections and r.status == NOT_DEPLOYED]
    if absent:
        reporter.notice(f"not deployed: {', '.join(absent)}")
    for result in results:
        if result.key not in detections:
            continue
        try:
            _finish(cfn, result, detections[result.key], backoff, stop)
        except ClientError as exc:
            result.status, result.reason = ERROR, str(exc)
        reporter.notice(f"{result.key}: {result.status}" + (f" ({len(result.drifted)} drifted)"
                                                             if result.drifted else ""))
    return DriftReport(rendered.env, rendered.region, results)


def _start(cfn, stack_name: str) -> str:
    return cfn.detect_stack_drift(StackName=stack_name)["StackDriftDetectionId"]


def _finish(cfn, result: StackDrift, detection_id: str, backoff: Backoff, stop) -> None:
    def detected():
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id)
        return None if status["DetectionStatus"] == "DETECTION_IN_PROGRESS" else status

    status = poll(detected, backoff, stop)
    result.status = status.get("StackDriftStatus", "UNKNOWN")
    if status["DetectionStatus"] == "DETECTION_FAILED":
        result.status = DETECTION_FAILED
        result.reason = status.get("DetectionStatusReason", "drift detection failed for some resources")
    result.drifted = _resource_drifts(cfn, result.stack_name)


def _resource_drifts(cfn, stack_name: str) -> list[ResourceDrift]:
    drifts, token = [], None
    while True:
        page = cfn.describe_stack_resource_drifts(StackName=stack_name,
                                                  StackResourceDriftStatusFilters=DRIFTED_STATUSES,
                                                  **({"NextToken": token} if token else {}))
        for d in page.get("StackResourceDrifts", []):
            drifts.append(ResourceDrift(
                d["LogicalResourceId"], d["ResourceType"], d["StackResourceDriftStatus"],
                d.get("PhysicalResourceId", ""),
                [Difference(p["PropertyPath"], p.get("ExpectedValue", ""), p.get("ActualValue", ""),
                            p["DifferenceType"]) for p in d.get("PropertyDifferences", [])]))
        token = page.get("NextToken")
        if not token:
            return sorted(drifts, key=lambda r: r.logical_id)


def drift_lines(report: DriftReport) -> list[str]:
    """The drifted resources, each followed by its property differences (plain lines: CI logs read well and
    nothing is cut to a terminal's width)."""
    lines = []
    for stack in report.stacks:
        for resource in stack.drifted:
            lines.append(f"{stack.key}/{resource.logical_id} ({resource.type}) {resource.physical_id}: "
                         f"{resource.status}")
            for diff in resource.differences:
                lines.append(f"    {diff.property_path}: expected {diff.expected_value}, actual "
                             f"{diff.actual_value} ({diff.difference_type})")
    return lines
