"""Apply the emulator's fixes to moto, once per process.

Every fix is a small function in one of: checks.py (what CloudFormation validates up front),
changesets.py, stacks.py (stack and change-set behaviour), native.py (moto's own resource types),
placeholders.py (types moto lacks), tls.py (policy conditions; requests count as TLS),
unimplemented.py (an action moto lacks is a clear error) and speed.py (work nobody asked for, deferred).
tests/test_local_emulator.py has one test per fix that fails on plain
moto, so a moto upgrade that changes what a fix relies on is caught.
"""

from __future__ import annotations

import threading

import moto

MOTO_VERSION = "5.2.5"  # the version these fixes were written against (pinned in pyproject.toml)

_lock = threading.Lock()
_applied = False


def apply() -> None:
    """Patch moto in this process; idempotent and thread-safe."""
    global _applied
    with _lock:
        if _applied:
            return
        if moto.__version__ != MOTO_VERSION:
            import warnings

            warnings.warn(f"perfdeploy's local emulator was written against moto {MOTO_VERSION}; this is "
                          f"moto {moto.__version__}: run tests/test_local_emulator.py", stacklevel=2)
        from moto.cloudformation import parsing

        from perfdeploy.local import changesets, native, placeholders, responses, speed, stacks, tls, unimplemented

        assert placeholders.MODELS  # defining the placeholder classes registers them with moto
        _ = native.SecurityGroupEgressModel
        for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
            cached.cache_clear()  # moto cached its type map before our classes existed
        native.apply()
        stacks.apply()
        changesets.apply()
        responses.apply()
        tls.apply()
        unimplemented.apply()
        speed.apply()
        parsing.resource_class_from_type = _loud(parsing.resource_class_from_type)
        _applied = True


def _loud(resource_class_from_type):
    """moto logs a warning and skips a resource whose type it does not know; fail instead."""

    def loud_resource_class_from_type(resource_type: str):
        resource_class = resource_class_from_type(resource_type)
        if resource_class is None and resource_type not in _null_models():
            from moto.cloudformation.exceptions import ValidationError

            raise ValidationError(message=f"The local emulator cannot create resource type {resource_type}")
        return resource_class

    return loud_resource_class_from_type


def _null_models() -> list[str]:
    from moto.cloudformation import parsing

    return parsing.NULL_MODELS
