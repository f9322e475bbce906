"""What /openapi.json says about the two webhook endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from kotally.api.openapi import error_responses


class WebhookAnswer(BaseModel):
    """Every 200 answer of a webhook endpoint."""

    model_config = ConfigDict(extra="allow")

    ok: bool
    reason_code: str  # event_processed | event_duplicate | event_ignored
    correlation_id: str
    event_id: str
    status: str  # processed | refused | unmatched | ignored | failed
    outcome: str | None = None


def _docs(summary: str, description: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
        "responses": {
            200: {"model": WebhookAnswer, "description": "Stored (or a duplicate) and answered"},
            **error_responses(400, 413, 500, 503),
            401: {"description": "SIGNATURE_INVALID: nothing was stored"},
        },
    }


WEBHOOK_DOCS = {
    "ghl": _docs(
        "GoHighLevel webhook",
        "Signed by GHL: `X-GHL-Signature` (Ed25519, preferred) or `X-WH-Signature` (RSA "
        "SHA-256, legacy), over the raw body. No API token. See docs/webhooks.md.",
    ),
    "stripe": _docs(
        "Stripe webhook of one location",
        "Signed with the location's Stripe endpoint secret (`Stripe-Signature`, `t` at most "
        "300 s old). No API token. See docs/webhooks.md.",
    ),
}
