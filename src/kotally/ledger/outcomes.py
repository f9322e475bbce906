"""Business outcomes (HTTP 200): success codes lower_snake, failures UPPER_SNAKE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MESSAGES = {
    "BILLING_SUSPENDED": "The location's billing is suspended.",
    "CONFIG_NOT_FOUND": "No active product config matches the selection.",
    "SERVICE_FAMILY_MISMATCH": "The product config and the calendar do not belong together.",
    "NO_ENTITLEMENT": "The contact has no entitlement for this selection.",
    "INSUFFICIENT_CREDITS": "The contact does not have enough credits.",
    "CANCELLATION_WINDOW_EXPIRED": "The cancellation window for this appointment has passed.",
    "NOTHING_TO_RESTORE": "There is not that much to restore.",
    "ENTITLEMENT_EXPIRED": "The entitlements the credits came from have expired.",
    "CONTACT_NOT_FOUND": "The location has no such contact.",
    "ENTITLEMENT_NOT_ADJUSTABLE": "The lot is voided or paused and cannot be adjusted.",
}

# Outcomes that are answered but not kept for their request_id (api-v2.md §5).
UNSTORED = frozenset({"BILLING_SUSPENDED"})


@dataclass(frozen=True)
class Outcome:
    reason_code: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason_code.islower()

    @property
    def stored(self) -> bool:
        return self.reason_code not in UNSTORED

    def body(self, correlation_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": self.ok,
            "reason_code": self.reason_code,
            "correlation_id": correlation_id,
        }
        if not self.ok:
            body["message"] = MESSAGES.get(self.reason_code, self.reason_code)
        body.update(self.fields)
        return body


def success(reason_code: str, **fields: Any) -> Outcome:
    return Outcome(reason_code, fields)


def failure(reason_code: str, **fields: Any) -> Outcome:
    return Outcome(reason_code, fields)


class Refusal(Exception):
    """Raised inside an operation to answer with a failure outcome; nothing is written."""

    def __init__(self, reason_code: str, **fields: Any) -> None:
        super().__init__(reason_code)
        self.outcome = failure(reason_code, **fields)
