"""Destroy an environment: its stacks deleted in reverse dependency order (consumers before producers),
concurrently where the graph allows, each delete waited for with its events.

Nothing is lost silently. Before deleting, each stack's deployed template and resources are read, so the run
can say afterwards what CloudFormation kept: resources whose DeletionPolicy retains them (Retain,
RetainExceptOnCreate), the final snapshots of Snapshot resources, and deletion-protected resources, which
stay (perfdeploy never switches deletion protection off). Prod is refused unless --force-prod, which also
lifts the stacks' termination protection. Only where the environment keeps no data (dev) are S3 buckets and
backup vaults emptied first, so their deletes can succeed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import click
from botocore.exceptions import ClientError
from cfn_flip import load as load_template

from perfdeploy.aws import AWS_ERRORS, Aws, error_code
from perfdeploy.config import EnvConfig
from perfdeploy.console import plural
from perfdeploy.deploy import operations
from perfdeploy.deploy.artifacts import Artifacts
from perfdeploy.deploy.executor import DEFAULT_CONCURRENCY, PoolInterrupted, run_pool
from perfdeploy.deploy.releases import ReleaseStore
from perfdeploy.deploy.report import Reporter
from perfdeploy.deploy.results import Action, RunResult, StackResult
from perfdeploy.deploy.stacks import describe, failure_reason
from perfdeploy.deploy.waiter import Backoff, EventReader, GaveUp, Interrupted, poll, wait_for_stack
from perfdeploy.errors import DeployError, SafetyRefusal, UsageError
from perfdeploy.graph import dependents
from perfdeploy.render import Rendered, render_env
from perfdeploy.safety import RETAINING_DELETION_POLICIES

NOT_DEPLOYED = "not deployed"
DELETION_PROTECTION = "DeletionProtection"  # the `policy` of a resource kept because it is deletion-protected


def _true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _alb_protected(props: dict) -> bool:
    return any(a.get("Key") == "deletion_protection.enabled" and _true(a.get("Value"))
               for a in props.get("LoadBalancerAttributes") or [] if isinstance(a, dict))


# Resource type -> "is this resource deletion-protected?" from its template properties. Only literal values
# count: a protection set through a parameter or a condition is not recognised here.
DELETION_PROTECTED: dict[str, Callable[[dict], bool]] = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _alb_protected,
    "AWS::DynamoDB::Table": lambda p: _true(p.get("DeletionProtectionEnabled")),
    "AWS::RDS::DBInstance": lambda p: _true(p.get("DeletionProtection")),
    "AWS::RDS::DBCluster": lambda p: _true(p.get("DeletionProtection")),
}

# What dev empties before a delete (dev keeps no data); never done where cfg.stateful.
EMPTIED_TYPES = frozenset({"AWS::S3::Bucket", "AWS::Backup::BackupVault"})

BACKOFF = Backoff()  # stack deletes take minutes: polls start at a second and back off to 15


@dataclass(frozen=True)
class DestroyOptions:
    yes: bool = False
    force_prod: bool = False
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass
class Retained:
    """A resource CloudFormation did not delete with its stack (or deleted after a final snapshot)."""

    stack: str                 # the stack's key
    logical_id: str
    type: str
    physical_id: str
    policy: str                # its DeletionPolicy, or DeletionProtection when kept for that reason alone
    deletion_protected: bool = False
    snapshots: list[str] = field(default_factory=list)   # Snapshot policy: the final snapshots found

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def name(self) -> str:
        return f"{self.stack}/{self.logical_id} ({self.type}) {self.physical_id}"

    def describe(self) -> str:
        what = self.name
        if self.policy == "Snapshot":
            taken = ", ".join(self.snapshots) or "look for it by the resource's id"
            return f"{what}: deleted after a final snapshot ({taken})"
        if self.policy == DELETION_PROTECTION:
            return f"{what}: kept, deletion protection is on"
        protected = ", deletion protection is on" if self.deletion_protected else ""
        return f"{what}: kept, DeletionPolicy {self.policy}{protected}"


@dataclass
class DestroyResult(RunResult):
    """A destroy run: deploy's result shape, plus what was retained."""

    retained: list[Retained] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        # A stack that was never deployed has nothing to delete: skipping it is not a failure.
        return all(s.action.ok or s.reason == NOT_DEPLOYED for s in self.stacks)

    def to_json(self) -> dict:
        data = super().to_json()
        data["retained"] = [r.to_json() for r in self.retained]
        return data


@dataclass
class Target:
    """One stack to destroy, as read before anything is deleted."""

    key: str
    stack_name: str
    stack: dict | None                                    # its description; None when not deployed
    resources: list[dict] = field(default_factory=list)   # list_stack_resources summaries
    template: dict = field(default_factory=dict)

    @property
    def deployed(self) -> bool:
        return self.stack is not None

    def physical_ids(self, types: frozenset[str]) -> list[str]:
        return [r["PhysicalResourceId"] for r in self.resources
                if r["ResourceType"] in types and r.get("PhysicalResourceId")]

    def kept(self) -> list[Retained]:
        """The resources that will outlive the stack: retaining DeletionPolicy, or deletion protection."""
        kept = []
        declared = self.template.get("Resources") or {}
        for summary in self.resources:
            lid, physical = summary["LogicalResourceId"], summary.get("PhysicalResourceId")
            if not physical or summary.get("ResourceStatus") == "DELETE_COMPLETE":
                continue
            resource = declared.get(lid) or {}
            policy = str(resource.get("DeletionPolicy", "Delete"))
            check = DELETION_PROTECTED.get(summary["ResourceType"])
            protected = bool(check and check(resource.get("Properties") or {}))
            if policy in RETAINING_DELETION_POLICIES or protected:
                kept.append(Retained(self.key, lid, summary["ResourceType"], physical,
                                     policy if policy in RETAINING_DELETION_POLICIES else DELETION_PROTECTION,
                                     protected))
        return kept


class Destroyer:
    def __init__(self, cfg: EnvConfig, aws: Aws, rendered: Rendered, options: DestroyOptions, reporter: Reporter,
                 backoff: Backoff | None = None, stop: threading.Event | None = None):
        self.cfg, self.aws, self.rendered, self.options, self.report = cfg, aws, rendered, options, reporter
        self.backoff = backoff or BACKOFF
        self.stop = stop or threading.Event()
        self.cfn = aws.client("cloudformation")
        aws.on_retry = reporter.notice   # botocore's own long retries of a call say so
        self.targets: dict[str, Target] = {}
        self.retained: dict[str, list[Retained]] = {}

    def check_allowed(self) -> None:
        """Prod is destroyed only with --force-prod; nothing is read or deleted otherwise."""
        if self.cfg.prod and not self.options.force_prod:
            raise SafetyRefusal(f"refusing to destroy {self.cfg.env}: it holds production data and traffic. "
                                "If that is really meant, run it again with --force-prod (termination "
                                "protection is lifted; retained and deletion-protected resources stay)")

    # Before anything is deleted -----------------------------------------------------------------

    def inventory(self) -> list[Target]:
        """Read every stack: is it deployed, its template (DeletionPolicies) and its resources' physical ids."""
        targets = []
        for spec in self.rendered.stacks:
            stack = describe(self.cfn, spec.stack_name)
            target = Target(spec.key, spec.stack_name, stack)
            if stack is not None:
                target.template = self._template(stack["StackId"])
                target.resources = self._resources(stack["StackId"])
            self.targets[spec.key] = target
            targets.append(target)
        return targets

    def _template(self, stack_id: str) -> dict:
        try:
            body = self.cfn.get_template(StackName=stack_id, TemplateStage="Original")["TemplateBody"]
        except ClientError as exc:  # a stack in REVIEW_IN_PROGRESS has no template yet
            if error_code(exc) == "ValidationError":
                return {}
            raise
        return body if isinstance(body, dict) else (load_template(body)[0] or {})

    def _resources(self, stack_id: str) -> list[dict]:
        resources, token = [], None
        while True:
            page = self.cfn.list_stack_resources(StackName=stack_id, **({"NextToken": token} if token else {}))
            resources += page.get("StackResourceSummaries", [])
            token = page.get("NextToken")
            if not token:
                return resources

    def announce(self, targets: list[Target]) -> None:
        """Say what will be deleted and what will stay, before the user confirms."""
        deployed = [t.key for t in targets if t.deployed]
        self.report.notice(f"{self.cfg.env}: deleting {plural(len(deployed), 'stack')} "
                           f"({', '.join(reversed(deployed)) or 'none deployed'})")
        for target in targets:
            for kept in target.kept():
                self.report.notice(f"will stay: {kept.describe()}" if kept.policy != "Snapshot"
                                   else f"a final snapshot, then deleted: {kept.name}")
        if not self.cfg.stateful:
            emptied = [f"{t.key}: {pid}" for t in targets for pid in t.physical_ids(EMPTIED_TYPES)]
            if emptied:
                self.report.notice(f"{self.cfg.env} keeps no data: emptying first {', '.join(emptied)}")

    # The run ------------------------------------------------------------------------------------

    def run(self, targets: list[Target]) -> DestroyResult:
        start = time.monotonic()
        deployed = {t.key for t in targets if t.deployed}
        edges = {t.key: set(self.rendered.stack(t.key).manifest["depends_on"]) & deployed
                 for t in targets if t.deployed}
        _keep_role_holder_until_last(targets, edges)
        consumers = dependents(edges)  # reversed: a stack waits for every deployed stack that takes its outputs
        results = {t.key: self._placeholder(t.key, Action.SKIPPED, NOT_DEPLOYED) for t in targets if not t.deployed}
        self.report.begin([t.key for t in reversed(targets) if t.deployed])
        try:
            results.update(run_pool(consumers, self.destroy_stack, self._placeholder, self.options.concurrency,
                                    stop=self.stop))
        except PoolInterrupted as exc:
            results.update(exc.results)
        finally:
            self.report.end()
        ordered = [results[t.key] for t in targets]
        retained = [r for result in ordered if result.action is Action.DELETED
                    for r in self.retained.get(result.key, [])]
        return DestroyResult(self.cfg.env, self.cfg.region, ordered, time.monotonic() - start, retained=retained)

    def _placeholder(self, key: str, action: Action, reason: str) -> StackResult:
        return StackResult(key, self.rendered.stack(key).stack_name, action, reason=reason)

    # One stack ----------------------------------------------------------------------------------

    def destroy_stack(self, key: str) -> StackResult:
        target = self.targets[key]
        result = StackResult(key, target.stack_name, Action.FAILED)
        start = time.monotonic()
        self.report.started(key)
        try:
            self._destroy(target, result)
        except Interrupted:
            result.action = Action.INTERRUPTED
            result.reason = "the run was interrupted; a delete already started continues ('perfdeploy status')"
        except (GaveUp, *AWS_ERRORS) as exc:  # this stack's failure: its producers stay, the rest carry on
            result.action, result.reason = Action.FAILED, str(exc)
        result.seconds = time.monotonic() - start
        self.report.finished(result)
        return result

    def _destroy(self, target: Target, result: StackResult) -> None:
        stack_id = target.stack["StackId"]
        stack = self._settled(stack_id)
        if stack["StackStatus"] == "DELETE_COMPLETE":
            result.action, result.status = Action.DELETED, "DELETE_COMPLETE"
            return
        if stack.get("EnableTerminationProtection"):
            self.report.notice(f"{target.key}: lifting termination protection")
            self.cfn.update_termination_protection(StackName=stack_id, EnableTerminationProtection=False)
        kept = {k.logical_id: k for k in target.kept()}
        if not self.cfg.stateful:
            self._empty(target)
        final, protected = self._delete(target, stack_id, retain=[]), []
        if final["StackStatus"] == "DELETE_FAILED":
            final, protected = self._retry(target, stack_id, kept, final)
        result.status = final["StackStatus"]
        if final["StackStatus"] != "DELETE_COMPLETE":
            result.reason = failure_reason(final)
            return
        result.action = Action.DELETED
        self.retained[target.key] = [self._with_snapshots(k) for k in kept.values()
                                     if k.policy != DELETION_PROTECTION or k.logical_id in protected]

    def _settled(self, stack_id: str) -> dict:
        """The stack once no operation other than a delete is in progress on it."""
        def check():
            stack = self.cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
            status = stack["StackStatus"]
            busy = status.endswith("_IN_PROGRESS") and status not in ("DELETE_IN_PROGRESS", "REVIEW_IN_PROGRESS")
            return None if busy else stack
        return poll(check, self.backoff, self.stop, lambda text: self.report.notice(f"{stack_id}: {text}"))

    def _delete(self, target: Target, stack_id: str, retain: list[str]) -> dict:
        events = EventReader(self.cfn, stack_id)
        events.mark()
        operations.delete_stack(self.cfn, stack_id, retain)
        final = wait_for_stack(self.cfn, stack_id, events, lambda e: self.report.event(target.key, e),
                               self.backoff, self.stop, lambda text: self.report.notice(f"{target.key}: {text}"))
        final["_first_failure"] = events.first_failure
        return final

    def _retry(self, target: Target, stack_id: str, kept: dict[str, Retained],
               final: dict) -> tuple[dict, list[str]]:
        """One more delete after DELETE_FAILED, when every resource that failed is one perfdeploy understands:
        a deletion-protected resource stays (RetainResources); in dev a bucket that took new objects meanwhile
        (ALB access logs) is emptied again. Anything else is a failure to report, not to work around."""
        stuck = [r for r in self._resources(stack_id) if r.get("ResourceStatus") == "DELETE_FAILED"]
        protected = [r["LogicalResourceId"] for r in stuck if r["LogicalResourceId"] in kept
                     and kept[r["LogicalResourceId"]].policy == DELETION_PROTECTION]
        emptied = [r for r in stuck if not self.cfg.stateful and r["ResourceType"] in EMPTIED_TYPES]
        if not stuck or len(protected) + len(emptied) < len(stuck):
            return final, []
        if protected:
            self.report.notice(f"{target.key}: deletion-protected, so they stay: {', '.join(protected)}")
        if emptied:
            self._empty(target)
        return self._delete(target, stack_id, retain=protected), protected

    # Dev only: emptying what holds data, so its delete can succeed ----------------------------

    def _empty(self, target: Target) -> None:
        for summary in target.resources:
            physical = summary.get("PhysicalResourceId")
            if not physical:
                continue
            try:
                if summary["ResourceType"] == "AWS::S3::Bucket":
                    count = empty_bucket(self.aws.client("s3"), physical)
                elif summary["ResourceType"] == "AWS::Backup::BackupVault":
                    count = empty_backup_vault(self.aws.client("backup"), physical)
                else:
                    continue
            except (ClientError, DeployError) as exc:
                # Not fatal by itself: if anything was left in it, the stack's delete fails and says so.
                why = str(exc).splitlines()[0]
                self.report.notice(f"{target.key}: could not empty {physical} ({why}); its delete may fail")
                continue
            if count:
                self.report.notice(f"{target.key}: deleted {count} items from {physical} (dev keeps no data)")

    def _with_snapshots(self, kept: Retained) -> Retained:
        if kept.policy == "Snapshot" and kept.type == "AWS::ElastiCache::ReplicationGroup":
            try:
                found = self.aws.client("elasticache").describe_snapshots(ReplicationGroupId=kept.physical_id)
                kept.snapshots = sorted(s["SnapshotName"] for s in found.get("Snapshots", []))
            except ClientError as exc:
                self.report.notice(f"cannot list the snapshots of {kept.physical_id}: {exc}")
        return kept


def empty_bucket(s3, bucket: str) -> int:
    """Delete every object version and delete marker in a bucket; a bucket already gone is empty."""
    deleted = 0
    while True:
        try:
            page = s3.list_object_versions(Bucket=bucket, MaxKeys=1000)
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                return deleted
            raise
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if not objects:
            return deleted
        # DeleteObjects answers 200 even when keys fail (object lock, a bucket policy that denies): in quiet
        # mode the answer lists only those, under Errors. Listing again would find them again, forever.
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        errors = answer.get("Errors", [])
        if errors:
            named = "; ".join(f"{e.get('Key')} (version {e.get('VersionId')}): {e.get('Code')}: {e.get('Message')}"
                              for e in errors[:5])
            more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
            raise DeployError(f"{len(errors)} objects could not be deleted from {bucket}: {named}{more}")
        deleted += len(objects)


def empty_backup_vault(backup, vault: str) -> int:
    """Delete every recovery point in a backup vault (AWS deletes them asynchronously)."""
    deleted, token = 0, None
    while True:
        try:
            page = backup.list_recovery_points_by_backup_vault(BackupVaultName=vault,
                                                               **({"NextToken": token} if token else {}))
        except ClientError as exc:
            if error_code(exc) in ("ResourceNotFoundException", "AccessDeniedException"):
                return deleted
            raise
        for point in page.get("RecoveryPoints", []):
            if point.get("Status") not in ("DELETING", "EXPIRED"):
                backup.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=point["RecoveryPointArn"])
                deleted += 1
        token = page.get("NextToken")
        if not token:
            return deleted


def confirm_by_name(env: str, yes: bool, reporter: Reporter) -> Callable[[], None]:
    """--yes confirms; on a terminal the user types the environment's name; with neither it is a usage error
    (raised before anything is read or deleted)."""
    if yes:
        return lambda: None
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to confirm on: pass --yes to destroy {env}", field="--yes")

    def ask() -> None:
        with reporter.paused():
            typed = click.prompt(f"Type the environment's name ({env}) to delete its stacks", default="",
                                 show_default=False, err=True)
        if typed.strip() != env:
            raise SafetyRefusal(f"'{typed}' is not '{env}': nothing was deleted")
    return ask


def destroy(cfg: EnvConfig, aws: Aws, options: DestroyOptions, reporter: Reporter,
            rendered: Rendered | None = None, backoff: Backoff | None = None,
            stop: threading.Event | None = None) -> DestroyResult:
    """The destroy command's one function: refuse prod without --force-prod, take the environment's lock (a
    deploy or rollback of it cannot run meanwhile), read, confirm, delete."""
    rendered = rendered or render_env(cfg)
    destroyer = Destroyer(cfg, aws, rendered, options, reporter, backoff, stop)
    destroyer.check_allowed()
    confirm = confirm_by_name(cfg.env, options.yes, reporter)
    with ReleaseStore(Artifacts(aws)).lock(cfg.env, "destroy"):
        targets = destroyer.inventory()
        destroyer.announce(targets)
        if any(t.deployed for t in targets):
            confirm()
        return destroyer.run(targets)


def _keep_role_holder_until_last(targets: list[Target], edges: dict[str, set[str]]) -> None:
    """A stack deployed with an execution role (`deploy --execution-roles`) keeps it as its RoleARN, and
    CloudFormation assumes that role to delete it: once the role is gone the delete fails with "Role ... is
    invalid or cannot be assumed" (DeleteStack, RoleARN: "If you don't specify a value, CloudFormation uses
    the role that was previously associated with the stack",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html). So the stack
    holding those roles is deleted after every other one. Outputs chain through parameters, not exports, so
    deleting its producers first is allowed. `edges` (key -> the deployed keys it takes outputs from) is
    changed in place."""
    live = [t for t in targets if t.deployed]
    holders = {}
    for target in live:
        for role in target.physical_ids(frozenset({"AWS::IAM::Role"})):
            holders[role] = target.key
    users = {holders.get(str(t.stack.get("RoleARN", "")).rsplit("/", 1)[-1]) for t in live} - {None}
    for target in live:
        edges[target.key] = set() if target.key in users else edges[target.key] | users

