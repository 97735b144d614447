"""How a failing resource is named and worded, for every stack operation (stacks.py, updates.py, in_place.py)."""

from __future__ import annotations

from moto.cloudformation.exceptions import CloudFormationError
from moto.core.exceptions import ServiceException


class ResourceFailed(CloudFormationError):
    """A resource could not be created, updated or deleted; carries which one and why."""

    code = "ValidationError"

    def __init__(self, logical_id: str, resource_type: str, reason: str):
        self.logical_id, self.resource_type, self.reason = logical_id, resource_type, reason
        super().__init__(f"{logical_id} ({resource_type}): {reason}")


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ResourceFailed):
        return exc.reason
    if isinstance(exc, KeyError):
        return f"Template error: unresolved reference {exc.args[0] if exc.args else ''}"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    code = getattr(exc, "code", None) if isinstance(exc, ServiceException) else type(exc).__name__
    return f"{code}: {message}" if code else message
