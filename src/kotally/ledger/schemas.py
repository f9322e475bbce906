"""Requests of the ledger operations (api-v2.md §3-4), validated once, used by API and CLI."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator

from kotally.kit.fields import (
    Amount,
    AmountCents,
    Currency,
    Email,
    Identifier,
    Metadata,
    Text,
    UtcDateTime,
    rule_error,
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    location_id: Identifier

    def payload(self) -> dict[str, Any]:
        """The JSON payload with defaults applied: what request_id fingerprints cover."""
        return self.model_dump(mode="json")


class ContactRef(BaseModel):
    """Which contact: a value and the field name that carried it."""

    model_config = ConfigDict(frozen=True)

    value: str
    field: str  # "ghl_contact_id" or "external_contact_id"


def _is_string(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"type": "string"}}}


class SelectionRequest(_Request):
    # The cross-field rules, stated in the OpenAPI description as well (api-v2.md §3).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [_is_string("external_contact_id"), _is_string("ghl_contact_id")],
            "anyOf": [_is_string("product_config_id"), _is_string("calendar_id")],
        }
    )

    external_contact_id: Identifier | None = None
    ghl_contact_id: Identifier | None = None
    product_config_id: Identifier | None = None
    calendar_id: Identifier | None = None
    amount: Amount = 1

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if (self.external_contact_id is None) == (self.ghl_contact_id is None):
            field = "external_contact_id" if self.ghl_contact_id is None else "ghl_contact_id"
            raise rule_error(field, "send exactly one of external_contact_id or ghl_contact_id")
        if self.product_config_id is None and self.calendar_id is None:
            raise rule_error("product_config_id", "send product_config_id or calendar_id")
        return self

    @property
    def contact(self) -> ContactRef:
        if self.ghl_contact_id is not None:
            return ContactRef(value=self.ghl_contact_id, field="ghl_contact_id")
        assert self.external_contact_id is not None
        return ContactRef(value=self.external_contact_id, field="external_contact_id")


class CheckRequest(SelectionRequest):
    pass


class DeductRequest(SelectionRequest):
    request_id: Identifier
    external_ref: Identifier | None = None
    appointment_time: UtcDateTime | None = None


class RestoreRequest(DeductRequest):
    pass


class GrantRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [_is_string("external_contact_id"), _is_string("ghl_contact_id")]
        }
    )

    request_id: Identifier
    external_payment_id: Identifier
    external_contact_id: Identifier | None = None
    ghl_contact_id: Identifier | None = None
    product_config_id: Identifier
    provider: Identifier = "automation"
    event_type: Identifier = "payment_confirmed"
    amount_cents: AmountCents | None = None
    currency: Currency | None = None
    paid_at: UtcDateTime | None = None
    email: Email | None = None
    name: Text | None = None
    external_ref: Identifier | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.external_contact_id is None and self.ghl_contact_id is None:
            raise rule_error(
                "external_contact_id", "send external_contact_id or ghl_contact_id (or both)"
            )
        return self

    @property
    def contact(self) -> ContactRef:
        # With both sent, external_contact_id is the key and ghl_contact_id is stored beside it.
        if self.external_contact_id is not None:
            return ContactRef(value=self.external_contact_id, field="external_contact_id")
        assert self.ghl_contact_id is not None
        return ContactRef(value=self.ghl_contact_id, field="ghl_contact_id")
