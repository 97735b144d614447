"""The image check: a new environment's first deploy cannot start tasks from an empty repository.

The image contract (docs/app-stacks.md, "What the image must do"): the process runs as uid 1000, writes
only under /tmp, listens on the container port, answers the health check path with 200, and carries curl.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from perfdeploy.aws import error_code
from perfdeploy.config import MUTABLE_TAGS, mutable_tag_message
from perfdeploy.errors import UsageError

CONTRACT = "docs/app-stacks.md (the image runs as uid 1000, writes only /tmp, carries curl for the health check)"


def check_image_tag(tag: str | None) -> None:
    """Refuse a mutable tag name given as --image-tag (exit 2): the repository's tags are immutable."""
    if tag is not None and tag.lower() in MUTABLE_TAGS:
        raise UsageError(mutable_tag_message(tag), field="--image-tag")


def missing_image_reason(ecr, repository: str, tag: str | None, repository_uri: str = "",
                         env: str = "ENV") -> str | None:
    """None when repository:tag exists; otherwise a message that says how to push it or skip the check
    (against the local emulator, which no docker push reaches: `perfdeploy local push-image`)."""
    from perfdeploy.local.images import is_emulator

    if tag and not _missing(ecr, repository, tag):
        return None
    uri = repository_uri or repository
    if is_emulator(getattr(getattr(ecr, "meta", None), "endpoint_url", None)):
        push = f"perfdeploy local push-image {env} {tag or '<tag>'}"
        if not tag:
            return (f"no image tag for the new ecs stack: the repository {repository} has immutable tags and "
                    f"there is no default. On the local emulator, register one ({push}), then deploy it "
                    f"with --image-tag <that tag>")
        return (f"image tag '{tag}' is not in the repository {repository}: on the local emulator, register "
                f"it first ({push}), deploy another tag with --image-tag, or bypass the check with "
                "--skip-image-check")
    push = (f"docker build -t {uri}:$(git rev-parse --short=12 HEAD) . && "
            f"docker push {uri}:$(git rev-parse --short=12 HEAD)")
    if not tag:
        return (f"no image tag for the new ecs stack: the repository {repository} has immutable tags, so every "
                f"build gets its own tag (its git commit SHA) and there is no default. Push the build ({push}), "
                f"then deploy it with --image-tag <that sha>. The image must follow {CONTRACT}")
    return (f"image tag '{tag}' is not in the repository {repository}: push it first "
            f"(docker build -t {uri}:{tag} . && docker push {uri}:{tag}), deploy another tag with "
            f"--image-tag, or bypass the check with --skip-image-check. The image must follow {CONTRACT}")


def _missing(ecr, repository: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        return False
    except ClientError as exc:
        if error_code(exc) not in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise
    return True
