"""Images in the emulator's registry: ``perfdeploy local push-image ENV TAG`` without docker.

The emulator's ECR stores manifests, not layers, and nothing runs the image: registering a placeholder
manifest under the tag is all a deploy needs (the image check finds it, the task definition names it).
Against AWS this would push a manifest with no image behind it, so it is refused unless the endpoint is
the local emulator (it answers ``GET /_perfdeploy/emulator``).
"""

from __future__ import annotations

import json
import urllib.request

from perfdeploy.local.routes import EMULATOR_PATH

PLACEHOLDER_MANIFEST = {
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
               "digest": "sha256:" + "0" * 64},
    "layers": [],
}


def is_emulator(endpoint_url: str | None) -> bool:
    """Whether the endpoint is perfdeploy's local emulator (a quick loopback request; False on AWS)."""
    if not endpoint_url:
        return False
    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + EMULATOR_PATH, timeout=2) as answer:  # noqa: S310
            return json.load(answer).get("Emulator") == "perfdeploy"
    except (OSError, ValueError):
        return False


def push_placeholder_image(ecr, repository: str, tag: str) -> str:
    """Register a placeholder image as repository:tag; returns its digest. An existing tag is kept (the
    repository's tags are immutable): pushing it again is not an error."""
    try:
        answer = ecr.put_image(repositoryName=repository, imageManifest=json.dumps(PLACEHOLDER_MANIFEST),
                               imageTag=tag)
    except ecr.exceptions.ImageAlreadyExistsException:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        return found["imageDetails"][0]["imageDigest"]
    return answer["image"]["imageId"]["imageDigest"]
