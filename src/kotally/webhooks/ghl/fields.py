"""Reading a GHL payload defensively: each field checked for its type, named by its path.

A field of the wrong type is a `PayloadError` (the event is stored `refused` with
`INVALID_PAYLOAD` before any effect), never a crash.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kotally.kit.clock import ensure_utc
from kotally.kit.fields import AMOUNT_CENTS_MAX, ID_CHARS_MAX

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class PayloadError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def key(*parts: object) -> str:
    """`ghl:<part>:…` (request ids, payment ids); past 255 characters, a digest of it."""
    joined = ":".join(["ghl", *(str(p) for p in parts)])
    if len(joined) <= ID_CHARS_MAX:
        return joined
    return "ghl:sha256:" + hashlib.sha256(joined.encode()).hexdigest()


def is_identifier(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= ID_CHARS_MAX and not _CONTROL.search(value)


def obj(parent: dict[str, Any], name: str, path: str = "") -> dict[str, Any] | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadError(path + name, "must be an object")
    return value


def identifier(parent: dict[str, Any], name: str, path: str = "") -> str | None:
    value = parent.get(name)
    if value is None or value == "":
        return None
    if not is_identifier(value):
        raise PayloadError(path + name, "must be a string of 1-255 characters without controls")
    assert isinstance(value, str)
    return value


def required_identifier(parent: dict[str, Any], name: str, path: str = "") -> str:
    value = identifier(parent, name, path)
    if value is None:
        raise PayloadError(path + name, "is required")
    return value


def time(parent: dict[str, Any], name: str, path: str = "") -> datetime | None:
    """An ISO 8601 time (GHL sends offsets or Z; a naive one is taken as UTC)."""
    value = parent.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise PayloadError(path + name, "must be an ISO 8601 date-time string")
    try:
        return ensure_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise PayloadError(path + name, "must be an ISO 8601 date-time string") from None


def cents(value: object) -> int | None:
    """GHL's major units (9.99) as integer cents, exactly (Decimal); None when not a sum."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    result = int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return result if result <= AMOUNT_CENTS_MAX else None


def currency(value: object) -> str | None:
    return value.upper() if isinstance(value, str) and _CURRENCY.match(value) else None


def hint_email(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= 320 and _EMAIL.match(value):
        return None if _CONTROL.search(value) else value
    return None


def hint_name(value: object) -> str | None:
    if isinstance(value, str) and value.strip() and len(value) <= ID_CHARS_MAX:
        return None if _CONTROL.search(value) else value
    return None
