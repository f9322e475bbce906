"""Reading a Stripe payload defensively: every field checked for its type, with its path.

Stripe sends JSON it documents, but a webhook endpoint is reachable by anyone holding a signed
body, and API versions move fields. A field of the wrong type is a `PayloadError` naming the
field, never a crash; a missing optional field is None.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kotally.kit.fields import ID_CHARS_MAX, no_control_chars

# Unix seconds Kotally accepts as times: 1970 to the end of 9999.
_UNIX_MAX = 253402300799


class PayloadError(Exception):
    """A field Kotally needs is missing or of the wrong type."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def child(parent: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadError(f"{path}.{key}", "must be an object")
    return value


def items(parent: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{path}.{key}", "must be an array")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise PayloadError(f"{path}.{key}[{i}]", "must be an object")
    return value


def text(parent: dict[str, Any], key: str, path: str) -> str | None:
    """An identifier-like string (ids, metadata values): 1-255 characters, no control chars."""
    value = parent.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{path}.{key}", "must be a string")
    if len(value) > ID_CHARS_MAX:
        raise PayloadError(f"{path}.{key}", f"must be at most {ID_CHARS_MAX} characters")
    try:
        no_control_chars(value)
    except ValueError:
        raise PayloadError(f"{path}.{key}", "must not contain control characters") from None
    return value


def required_text(parent: dict[str, Any], key: str, path: str) -> str:
    value = text(parent, key, path)
    if value is None:
        raise PayloadError(f"{path}.{key}", "is required")
    return value


def object_id(parent: dict[str, Any], key: str, path: str) -> str | None:
    """An expandable field: Stripe sends the id, or the object when it was expanded."""
    value = parent.get(key)
    if isinstance(value, dict):
        return text(value, "id", f"{path}.{key}")
    return text(parent, key, path)


def integer(parent: dict[str, Any], key: str, path: str) -> int | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{path}.{key}", "must be an integer")
    return value


def required_integer(parent: dict[str, Any], key: str, path: str) -> int:
    value = integer(parent, key, path)
    if value is None:
        raise PayloadError(f"{path}.{key}", "is required")
    return value


def flag(parent: dict[str, Any], key: str, path: str) -> bool:
    value = parent.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PayloadError(f"{path}.{key}", "must be true or false")
    return value


def timestamp(parent: dict[str, Any], key: str, path: str) -> datetime | None:
    value = integer(parent, key, path)
    if value is None:
        return None
    if not 0 <= value <= _UNIX_MAX:
        raise PayloadError(f"{path}.{key}", "must be Unix seconds between 1970 and 9999")
    return datetime.fromtimestamp(value, UTC)


def currency(parent: dict[str, Any], key: str, path: str) -> str | None:
    value = text(parent, key, path)
    if value is None:
        return None
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise PayloadError(f"{path}.{key}", "must be a 3-letter ISO 4217 code")
    return value.upper()
