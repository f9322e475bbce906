"""What /openapi.json says about the endpoints that read their own bodies (for §2 precedence)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Outcome(BaseModel):
    """Every 200 answer: a business outcome, ok or not."""

    model_config = ConfigDict(extra="allow")

    ok: bool
    reason_code: str
    correlation_id: str
    message: str | None = None


class ConsumedLot(BaseModel):
    entitlement_id: str
    amount: int


class GrantOutcome(Outcome):
    location_id: str | None = None
    contact_id: str | None = None
    entitlement_id: str | None = None
    credits_granted: int | None = None
    balance_after: int | None = None


class CheckOutcome(Outcome):
    balance_after: int | None = None
    balance_available: int | None = None


class DeductOutcome(CheckOutcome):
    entitlement_id: str | None = None
    consumed: list[ConsumedLot] | None = None


class RestoreOutcome(Outcome):
    balance_after: int | None = None
    entitlement_id: str | None = None
    credits_restorable: int | None = None


class ErrorBody(BaseModel):
    ok: bool
    reason_code: str
    correlation_id: str
    message: str


class FieldError(BaseModel):
    field: str
    message: str


class ValidationErrorBody(ErrorBody):
    errors: list[FieldError]


class ConflictBody(ErrorBody):
    conflicting_fields: list[str] | None = None


OUTCOMES: dict[str, type[Outcome]] = {
    "grant": GrantOutcome,
    "check": CheckOutcome,
    "deduct": DeductOutcome,
    "restore": RestoreOutcome,
}

_ERRORS: dict[int, tuple[type[BaseModel], str]] = {
    400: (ErrorBody, "INVALID_JSON: the body is not a JSON object"),
    401: (ErrorBody, "UNAUTHORIZED: token missing, malformed, unknown, deactivated or rotated"),
    403: (ErrorBody, "MISSING_SCOPE or LOCATION_MISMATCH"),
    409: (ConflictBody, "REQUEST_IN_PROGRESS or IDEMPOTENCY_KEY_REUSED"),
    413: (ErrorBody, "PAYLOAD_TOO_LARGE"),
    415: (ErrorBody, "UNSUPPORTED_MEDIA_TYPE"),
    422: (ValidationErrorBody, "VALIDATION_ERROR: each bad field with a message"),
    429: (ErrorBody, "RATE_LIMITED: see Retry-After"),
    500: (ErrorBody, "INTERNAL_ERROR: nothing was applied"),
    503: (ErrorBody, "SERVICE_UNAVAILABLE: nothing was applied"),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": _ERRORS[status][0], "description": _ERRORS[status][1]}
        for status in statuses
    }


def post_docs(model: type[BaseModel], scope: str, summary: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    schema.pop("$defs", None)
    idempotent = scope != "check"
    return {
        "summary": summary,
        "description": f"Requires the `{scope}` scope."
        + (" Idempotent by `request_id` (api-v2 §5)." if idempotent else ""),
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            },
            "security": [{"bearerAuth": []}],
        },
        "responses": {
            200: {"model": OUTCOMES[scope], "description": "A business outcome (ok true or false)"},
            **error_responses(
                400, 401, 403, *((409,) if idempotent else ()), 413, 415, 422, 429, 500, 503
            ),
        },
    }
