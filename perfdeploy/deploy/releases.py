"""Releases: what each successful deploy (or rollback) left deployed, kept in the artifacts bucket.

`releases/{env}/{id}.json` holds the id, time, git commit, image tag and, per stack, its template,
parameters, tags and input wiring: everything a rollback needs. `locks/{env}.json` is the environment's
deploy lock, taken with a conditional write so two runs cannot both hold it.
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import json
import os
import socket
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from perfdeploy.aws import error_code
from perfdeploy.console import plural
from perfdeploy.deploy.artifacts import Artifacts
from perfdeploy.errors import ConfigError, SafetyRefusal


@dataclass
class Release:
    id: str
    env: str
    time: str
    commit: str | None
    image_tag: str | None
    kind: str                                   # deploy | rollback
    stacks: dict[str, dict] = field(default_factory=dict)  # key -> stack_name, template, parameters, tags, inputs

    def summary(self) -> dict:
        return {"id": self.id, "time": self.time, "commit": self.commit, "image_tag": self.image_tag,
                "kind": self.kind, "stacks": sorted(self.stacks)}


def new_release_id(now: datetime | None = None) -> str:
    """Sortable by time: 20261122T101500123456Z-1a2b3c (microseconds: two runs a second apart still sort)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


class ReleaseStore:
    def __init__(self, artifacts: Artifacts):
        self.artifacts = artifacts

    @property
    def s3(self):
        return self.artifacts.s3

    def record(self, release: Release) -> None:
        bucket = self.artifacts.ensure()
        self.s3.put_object(Bucket=bucket, Key=f"releases/{release.env}/{release.id}.json",
                           Body=json.dumps(asdict(release), indent=1).encode(), ContentType="application/json")
        # The next no-op reads this small object, not the release: per stack, the id and last update the
        # release saw it with, and the hash of its template (a stack updated since is read in full).
        seen = {key: {"stack_id": s["stack_id"], "last_updated": s["last_updated"],
                      "sha256": hashlib.sha256(s["template"].encode()).hexdigest()}
                for key, s in release.stacks.items() if s.get("stack_id") and s.get("last_updated")}
        self.s3.put_object(Bucket=bucket, Key=f"deployed/{release.env}.json",
                           Body=json.dumps({"release": release.id, "stacks": seen}).encode(),
                           ContentType="application/json")

    def last_deployed(self, env: str) -> dict[str, dict[str, str]]:
        """Stack key -> {stack_id, last_updated, sha256} as the last release recorded them ({} when none has)."""
        try:
            body = self.s3.get_object(Bucket=self.artifacts.bucket, Key=f"deployed/{env}.json")["Body"].read()
            return json.loads(body).get("stacks", {})
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NoSuchBucket", "403", "AccessDenied"):
                return {}
            raise
        except ValueError:
            return {}

    def ids(self, env: str) -> list[str]:
        """Release ids, oldest first."""
        if not self.artifacts.exists():
            return []
        ids, token = [], None
        while True:
            kwargs = {"Bucket": self.artifacts.bucket, "Prefix": f"releases/{env}/"}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.s3.list_objects_v2(**kwargs)
            ids += [o["Key"].rsplit("/", 1)[1].removesuffix(".json") for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(ids)

    def load(self, env: str, release_id: str) -> Release:
        try:
            body = self.s3.get_object(Bucket=self.artifacts.bucket, Key=f"releases/{env}/{release_id}.json")
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ConfigError(_unknown_release(release_id, env, self.ids(env)), field="--to") from None
            raise
        return Release(**json.loads(body["Body"].read()))

    def all(self, env: str) -> list[Release]:
        return [self.load(env, i) for i in self.ids(env)]

    @contextmanager
    def lock(self, env: str, command: str):
        """Hold the environment's deploy lock; a second run is refused with the holder's name."""
        bucket, key = self.artifacts.bucket, f"locks/{env}.json"
        holder = {"holder": f"{getpass.getuser()}@{socket.gethostname()}", "pid": os.getpid(),
                  "command": command, "since": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            self.artifacts.put_new(key, json.dumps(holder).encode())
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            raise SafetyRefusal(_held_message(self.s3, bucket, key, env)) from None
        try:
            yield
        finally:
            self.s3.delete_object(Bucket=bucket, Key=key)


def _unknown_release(release_id: str, env: str, ids: list[str]) -> str:
    near = difflib.get_close_matches(release_id, ids, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    if not ids:
        return f"no release '{release_id}' of {env}: none is recorded yet"
    return (f"no release '{release_id}' of {env}{hint}; {plural(len(ids), 'release')} recorded, the latest "
            f"{ids[-1]} ('perfdeploy releases {env}' lists them)")


def _held_message(s3, bucket: str, key: str, env: str) -> str:
    try:
        held = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        who = f"{held['holder']} (pid {held['pid']}, '{held['command']}', since {held['since']})"
    except (ClientError, ValueError, KeyError):
        who = "another run"
    return (f"{env} is locked by {who}: two deploys of one environment at once are refused. If that run is "
            f"gone, remove the lock: aws s3 rm s3://{bucket}/{key}")
