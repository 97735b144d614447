"""registry: the ECR repository the service's image is pushed to.

Its own stack, early in the graph, so the repository exists (and can receive the first image) before the ecs
stack asks for a task to run from it. Tags are immutable: a tag names one build forever, so the image tag a
release records is the image that ran, and the lifecycle never expires a tagged image: a rollback to any
recorded release finds its image. Delete release images deliberately, knowing which releases name them
(``perfdeploy releases ENV``).
"""

from __future__ import annotations

import json

from troposphere import GetAtt, Ref, Template
from troposphere.ecr import EncryptionConfiguration, ImageScanningConfiguration, LifecyclePolicy, Repository

from perfdeploy.blueprints.base import Blueprint, Input, output, param, stateful, tags
from perfdeploy.config import EnvConfig

UNTAGGED_EXPIRY_DAYS = 1  # layers of a failed or superseded push


def lifecycle_policy() -> LifecyclePolicy:
    """Untagged images (layers of a failed or superseded push) go after a day; tagged images stay, because
    a release may name any of them (a count-based rule would expire the image a rollback needs)."""
    rules = [{
        "rulePriority": 1,
        "description": "Expire untagged images",
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                      "countNumber": UNTAGGED_EXPIRY_DAYS},
        "action": {"type": "expire"},
    }]
    return LifecyclePolicy(LifecyclePolicyText=json.dumps({"rules": rules}, sort_keys=True))


def repository(cfg: EnvConfig) -> Repository:
    return stateful(Repository(
        "Repository",
        RepositoryName=cfg.resource_name("app"),
        ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
        ImageTagMutability="IMMUTABLE",
        EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS", KmsKey=param("DataKeyArn")),
        LifecyclePolicy=lifecycle_policy(),
        # dev's repository goes with its stack; staging/prod keep theirs (and its images) on delete.
        EmptyOnDelete=not cfg.stateful,
        Tags=tags(cfg, cfg.resource_name("app")),
    ), cfg)


class RegistryBlueprint(Blueprint):
    key = "registry"
    description = "ECR repository for the service image (scan on push, immutable tags, KMS)"

    def inputs(self, cfg: EnvConfig) -> dict[str, Input]:
        return {"DataKeyArn": Input("security", "DataKeyArn")}

    def build(self, cfg: EnvConfig) -> Template:
        t = self.template(cfg)
        t.add_resource(repository(cfg))
        output(t, "RepositoryName", Ref("Repository"), "ECR repository name")
        output(t, "RepositoryArn", GetAtt("Repository", "Arn"), "ECR repository ARN")
        output(t, "RepositoryUri", GetAtt("Repository", "RepositoryUri"), "ECR repository URI (no tag)")
        return t


BLUEPRINT = RegistryBlueprint()
