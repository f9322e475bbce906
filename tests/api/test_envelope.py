"""api/envelope.py: the JSON answer's raw headers are Starlette's own."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from kotally.api.envelope import JsonResponse, json_response


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"X-Correlation-Id": "c-1", "Idempotent-Replayed": "true"},
        {"WWW-Authenticate": "Bearer"},
        {"Content-Type": "application/problem+json"},
    ],
)
def test_the_same_headers_as_starlettes_response(headers: dict[str, str] | None) -> None:
    content = b'{"ok":true}'
    ours = JsonResponse(content, 201, headers)
    theirs = Response(content, 201, headers, media_type="application/json")
    assert (ours.status_code, ours.body, ours.raw_headers) == (
        theirs.status_code,
        theirs.body,
        theirs.raw_headers,
    )


def test_json_response_encodes_big_integers() -> None:
    response = json_response(200, {"n": 2**70, "é": "ü"})
    assert response.body == f'{{"n":{2**70},"é":"ü"}}'.encode()
    assert response.headers["content-length"] == str(len(response.body))
