"""What the inbox needs of a GHL delivery: its key, type and location (webhooks.md §2-3)."""

from __future__ import annotations

import hashlib
from typing import Any

from kotally.webhooks.ghl.fields import is_identifier
from kotally.webhooks.inbox import Incoming

TYPE_CHARS_MAX = 128


def event_key(payload: dict[str, Any], raw: bytes) -> str:
    """GHL's `webhookId`; when absent (GHL's invoice examples have none), the body's SHA-256."""
    webhook_id = payload.get("webhookId")
    if is_identifier(webhook_id):
        assert isinstance(webhook_id, str)
        return webhook_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def event_type(payload: dict[str, Any]) -> str:
    value = payload.get("type")
    if is_identifier(value):
        assert isinstance(value, str)
        return value[:TYPE_CHARS_MAX]
    return "unknown"


def location_id(payload: dict[str, Any]) -> str | None:
    """`locationId`, else `altId` when `altType` is `location`."""
    value = payload.get("locationId")
    if is_identifier(value):
        assert isinstance(value, str)
        return value
    alt = payload.get("altId")
    if payload.get("altType") == "location" and is_identifier(alt):
        assert isinstance(alt, str)
        return alt
    return None


def incoming(payload: dict[str, Any], raw: bytes, correlation_id: str) -> Incoming:
    return Incoming(
        event_key=event_key(payload, raw),
        event_type=event_type(payload),
        location_id=location_id(payload),
        payload=payload,
        correlation_id=correlation_id,
    )
