"""Policy conditions as AWS evaluates them, for an emulator that stands in for HTTPS endpoints.

moto 5.2.5 ignores condition operators it does not know (Bool among them), so a statement whose only
condition is `Bool aws:SecureTransport false` always applies; and it answers DENIED for a statement whose
condition does not match, whatever its Effect, where AWS says the statement does not apply. Together they
made the artifacts bucket's TLS-only policy deny every request. Here requests count as TLS (the emulator
is a local stand-in for AWS's HTTPS endpoints), Bool is evaluated, and a statement whose condition does not
match is neutral.
"""

from __future__ import annotations

TLS = {"aws:SecureTransport": "true"}


def _bool_equals(expected, actual) -> bool:
    expected = expected if isinstance(expected, list) else [expected]
    return str(actual).lower() in [str(e).lower() for e in expected]


def apply() -> None:
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    policy_conditions.CONDITION_OPERATIONS.setdefault("Bool", _bool_equals)

    original = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        values = {**TLS, **(incoming_condition_values or {})}
        if self._statement.get("Condition") and not self._check_conditions(values):
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, values)

    IAMPolicyStatement.is_action_permitted = is_action_permitted
