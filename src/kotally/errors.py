"""One error hierarchy. Each class knows its HTTP status and reason_code; one handler renders it."""

from __future__ import annotations

from typing import Any, ClassVar


class KotallyError(Exception):
    status: ClassVar[int] = 500
    reason_code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Unexpected error; nothing was applied."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra}


class InvalidJson(KotallyError):
    status = 400
    reason_code = "INVALID_JSON"
    default_message = "The request body must be a JSON object."


class Unauthorized(KotallyError):
    status = 401
    reason_code = "UNAUTHORIZED"
    default_message = "A valid bearer token is required."


class SignatureInvalid(KotallyError):
    status = 401
    reason_code = "SIGNATURE_INVALID"
    default_message = "The webhook signature is missing, malformed or wrong; nothing was stored."


class MissingScope(KotallyError):
    status = 403
    reason_code = "MISSING_SCOPE"
    default_message = "The token lacks the scope this endpoint requires."


class LocationMismatch(KotallyError):
    status = 403
    reason_code = "LOCATION_MISMATCH"
    default_message = "location_id does not match the token's location."


class RouteNotFound(KotallyError):
    status = 404
    reason_code = "ROUTE_NOT_FOUND"
    default_message = "No such endpoint."


class MethodNotAllowed(KotallyError):
    status = 405
    reason_code = "METHOD_NOT_ALLOWED"
    default_message = "Method not allowed on this path."


class RequestInProgress(KotallyError):
    status = 409
    reason_code = "REQUEST_IN_PROGRESS"
    default_message = "A request with this request_id is still being processed; retry shortly."


class IdempotencyKeyReused(KotallyError):
    status = 409
    reason_code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "request_id was already used with a different payload or endpoint."


class PayloadTooLarge(KotallyError):
    status = 413
    reason_code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is over the size limit."


class UnsupportedMediaType(KotallyError):
    status = 415
    reason_code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Send the body as JSON with Content-Type: application/json."


class ValidationFailed(KotallyError):
    status = 422
    reason_code = "VALIDATION_ERROR"
    default_message = "Some fields are invalid."


class RateLimited(KotallyError):
    status = 429
    reason_code = "RATE_LIMITED"
    default_message = "Too many requests; retry after the time in Retry-After."


class InternalError(KotallyError):
    pass


class ServiceUnavailable(KotallyError):
    status = 503
    reason_code = "SERVICE_UNAVAILABLE"
    default_message = "The service is temporarily unavailable; nothing was applied. Retry later."


class OperatorError(Exception):
    """A refused operator action (CLI / admin): bad argument, unknown id, duplicate."""
