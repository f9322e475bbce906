"""Keyset pagination: list limits and opaque cursors.

A cursor is the sort key of the last item of a page, as URL-safe base64 (no padding) of a JSON
array whose first element tags the list it belongs to. Times keep their microseconds: the API
shows milliseconds, but the key must be exact or rows in the same millisecond would be skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from kotally.kit.clock import ensure_utc

LIMIT_DEFAULT = 20
LIMIT_MAX = 100
# The longest cursor any list emits is about 120 characters; anything much longer is not ours.
CURSOR_CHARS_MAX = 512


class InvalidCursor(ValueError):
    """A `cursor` query parameter that no list of this API produced. The router answers 422."""

    field = "cursor"

    def __init__(self, message: str = "cursor is not a cursor this list returned") -> None:
        super().__init__(message)
        self.message = message


def check_limit(limit: int) -> int:
    """The router validates `limit`; this guards the services against a caller that did not."""
    if isinstance(limit, bool) or not 1 <= limit <= LIMIT_MAX:
        raise ValueError(f"limit must be an integer from 1 to {LIMIT_MAX}, not {limit!r}")
    return limit


def encode_cursor(tag: str, *parts: str | int) -> str:
    raw = json.dumps([tag, *parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, tag: str, arity: int) -> list[Any]:
    """The parts after the tag, checked for count and tag only; the caller checks their types."""
    if not cursor or len(cursor) > CURSOR_CHARS_MAX:
        raise InvalidCursor
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):  # ValueError covers JSON and UTF-8 decoding errors
        raise InvalidCursor from None
    if not isinstance(data, list) or len(data) != arity + 1 or data[0] != tag:
        raise InvalidCursor
    return data[1:]


def time_part(value: datetime) -> str:
    return ensure_utc(value).isoformat(timespec="microseconds")


def parse_time_part(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidCursor
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidCursor from None
    if parsed.tzinfo is None:
        raise InvalidCursor
    return ensure_utc(parsed)


def parse_uuid_part(value: object) -> uuid.UUID:
    if not isinstance(value, str):
        raise InvalidCursor
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidCursor from None


def parse_int_part(value: object) -> int:
    # Bounded to a BIGINT so that a forged cursor cannot overflow the bound parameter.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidCursor
    return value
