"""Whose purchase: the contact a Stripe object names (webhooks.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from kotally.kit.fields import Email, Text
from kotally.webhooks.stripe.fields import PayloadError, child, object_id, text

_EMAIL: TypeAdapter[str] = TypeAdapter(Email)
_NAME: TypeAdapter[str] = TypeAdapter(Text)


@dataclass(frozen=True)
class ContactHint:
    ghl_contact_id: str | None
    external_contact_id: str | None
    email: str | None
    name: str | None


def resolve(
    obj: dict[str, Any], path: str, metadata: Sequence[tuple[dict[str, Any] | None, str]]
) -> ContactHint:
    """`metadata.ghl_contact_id` / `metadata.external_contact_id` from the metadata given (the
    object's first, then e.g. its subscription's); else `client_reference_id`; else the
    customer id, both as the external id. Email and name are hints: a malformed one is dropped
    rather than failing the purchase."""
    ghl = external = None
    for meta, meta_path in metadata:
        if meta is None:
            continue
        ghl = ghl or text(meta, "ghl_contact_id", meta_path)
        external = external or text(meta, "external_contact_id", meta_path)
    if ghl is None and external is None:
        external = text(obj, "client_reference_id", path) or object_id(obj, "customer", path)
    if ghl is None and external is None:
        raise PayloadError(
            f"{path}.customer",
            "names no contact: set metadata.ghl_contact_id or metadata.external_contact_id, "
            "client_reference_id, or a customer",
        )
    details = _loose_child(obj, "customer_details")
    email = _hint(_EMAIL, details.get("email")) or _hint(_EMAIL, obj.get("customer_email"))
    name = _hint(_NAME, details.get("name")) or _hint(_NAME, obj.get("customer_name"))
    return ContactHint(ghl, external, email, name)


def _loose_child(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _hint(adapter: TypeAdapter[str], value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def metadata_of(obj: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    return child(obj, "metadata", path), f"{path}.metadata"
