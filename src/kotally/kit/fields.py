"""Field types shared by the request schemas, with the limits of api-v2.md §3."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from kotally.kit.clock import ensure_utc

ID_CHARS_MAX = 255
AMOUNT_MAX = 10_000
AMOUNT_CENTS_MAX = 10**15
METADATA_BYTES_MAX = 8 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


def has_control_chars(value: str) -> bool:
    return _CONTROL.search(value) is not None


def no_control_chars(value: str) -> str:
    if has_control_chars(value):
        raise PydanticCustomError("control_chars", "must not contain control characters")
    return value


def _iso_string(value: Any) -> Any:
    # Pydantic would also take "1777629600" as Unix seconds: ISO 8601 starts with the date.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError("datetime_type", "must be an ISO 8601 date-time string")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return ensure_utc(value)
    except OverflowError:  # 0001-01-01T00:00+14:00 or 9999-12-31T23:00-14:00 leave the calendar
        raise PydanticCustomError("datetime_range", "is outside the supported range") from None


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise PydanticCustomError("currency", "must be a 3-letter ISO 4217 code, e.g. USD")
    return value.upper()


def _metadata_size(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, separators=(",", ":")).encode()) > METADATA_BYTES_MAX:
        raise PydanticCustomError("metadata_size", "must be at most 8 KiB as JSON")
    return value


# The OpenAPI description states the control-character rule too, so generated clients and
# fuzzers know it (the validator's own message stays the one clients see).
_NO_CONTROL_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=ID_CHARS_MAX,
        strict=True,
        json_schema_extra={"pattern": _NO_CONTROL_PATTERN},
    ),
    AfterValidator(no_control_chars),
]
Text = Annotated[
    str,
    Field(max_length=ID_CHARS_MAX, strict=True, json_schema_extra={"pattern": _NO_CONTROL_PATTERN}),
    AfterValidator(no_control_chars),
]
Amount = Annotated[int, Field(ge=1, le=AMOUNT_MAX, strict=True)]
AmountCents = Annotated[int, Field(ge=0, le=AMOUNT_CENTS_MAX, strict=True)]
Currency = Annotated[
    str,
    Field(strict=True, json_schema_extra={"pattern": _CURRENCY.pattern}),
    AfterValidator(_currency),
]
Email = Annotated[
    str,
    Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$", strict=True),
    AfterValidator(no_control_chars),  # \s leaves NUL, ESC and DEL through
]
UtcDateTime = Annotated[datetime, BeforeValidator(_iso_string), AfterValidator(_utc)]
Metadata = Annotated[dict[str, Any], AfterValidator(_metadata_size)]


def rule_error(field: str, message: str) -> PydanticCustomError:
    """An error of a rule across fields, naming the field the client should fix."""
    return PydanticCustomError("field_rule", "{message}", {"field": field, "message": message})
