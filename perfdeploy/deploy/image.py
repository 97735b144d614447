"""The image check: a new environment's first deploy cannot start tasks from an empty repository."""

from __future__ import annotations

from botocore.exceptions import ClientError

from perfdeploy.aws import error_code


def missing_image_reason(ecr, repository: str, tag: str, repository_uri: str = "") -> str | None:
    """None when repository:tag exists; otherwise a message that says how to push it or skip the check."""
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        return None
    except ClientError as exc:
        if error_code(exc) not in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise
    uri = repository_uri or repository
    return (f"image tag '{tag}' is not in the repository {repository}: push it first "
            f"(docker build -t {uri}:{tag} . && docker push {uri}:{tag}), deploy another tag with "
            "--image-tag, or bypass the check with --skip-image-check")
