"""registry: the ECR repository the service's image is pushed to.

Its own stack, early in the graph, so the repository exists (and can receive the first image) before the ecs
stack asks for a task to run from it. Tags are immutable: a tag names one build forever, so the image tag a
release records is the image that ran.
"""

from __future__ import annotations

import json

from troposphere import GetAtt, Ref, Template
from troposphere.ecr import EncryptionConfiguration, ImageScanningConfiguration, LifecyclePolicy, Repository

from perfdeploy.blueprints.base import Blueprint, Input, output, param, stateful, tags
from perfdeploy.config import EnvConfig

UNTAGGED_EXPIRY_DAYS = 1  # layers of a failed or superseded push


def lifecycle_policy(cfg: EnvConfig) -> LifecyclePolicy:
    """Untagged images go after a day; of the tagged ones, the newest ``keep_images`` stay."""
    rules = [
        {
            "rulePriority": 1,
            "description": "Expire untagged images",
            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                          "countNumber": UNTAGGED_EXPIRY_DAYS},
            "action": {"type": "expire"},
        },
        {
            # tagStatus "any" must be the rule with the highest priority number (ECR evaluates it last).
            "rulePriority": 2,
            "description": f"Keep the last {cfg.ecs.keep_images} images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                          "countNumber": cfg.ecs.keep_images},
            "action": {"type": "expire"},
        },
    ]
    return LifecyclePolicy(LifecyclePolicyText=json.dumps({"rules": rules}, sort_keys=True))


def repository(cfg: EnvConfig) -> Repository:
    return stateful(Repository(
        "Repository",
        RepositoryName=cfg.resource_name("app"),
        ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
        ImageTagMutability="IMMUTABLE",
        EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS", KmsKey=param("DataKeyArn")),
        LifecyclePolicy=lifecycle_policy(cfg),
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
