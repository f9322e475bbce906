"""Reading a POST body: 415, 413, 400, then 422, in the order of api-v2.md §2."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from kotally.errors import InvalidJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise InvalidJson(f"The JSON object has the key {duplicate!r} more than once.")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not JSON.")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: no JSON number a database or client can hold
        raise InvalidJson("A number in the body is out of range.")
    return value


async def read_json_object(request: Request, bytes_max: int) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType()
    return parse_json_object(await read_raw(request, bytes_max))


async def read_raw(request: Request, bytes_max: int) -> bytes:
    """The body as sent, refused (413) as soon as it passes `bytes_max`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > bytes_max:
        raise PayloadTooLarge(f"The request body is over {bytes_max} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > bytes_max:
            raise PayloadTooLarge(f"The request body is over {bytes_max} bytes.")
    return bytes(body)


# json.loads with these arguments would build the same decoder for every body.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicate_keys,
    parse_constant=_reject_constant,  # NaN, Infinity: Python extensions, not JSON
    parse_float=_finite_float,
)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = _DECODER.decode(body.decode("utf-8"))
    except InvalidJson:
        raise
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, too deep, huge numbers
        raise InvalidJson() from exc
    if not isinstance(data, dict):
        raise InvalidJson()
    return data


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """422 items: the request's own field name (dotted when nested) and a precise message."""
    errors = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        field = ctx.get("field") or ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "missing":
            message = "is required"
        errors.append({"field": str(field), "message": message})
    return errors


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(errors=field_errors(exc)) from exc
