"""The load Driver resends a cut-off request, with the same body, only when told to and only when
the body carries a request_id; what it resent is marked so a scenario can judge its replays."""

from __future__ import annotations

import json

import httpx
import pytest
from reliability.load import RESENDS, Driver, Figures

pytestmark = pytest.mark.anyio

ENVELOPE = {"ok": True, "reason_code": "deducted", "correlation_id": "c"}
HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def flaky(cut_offs: int, seen: list[bytes]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        if len(seen) <= cut_offs:
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(200, json=ENVELOPE, headers=HEADERS)

    return httpx.MockTransport(handle)


async def test_a_cut_off_request_is_resent_with_the_same_body() -> None:
    figures, seen = Figures("t", "sqlite"), []
    transport = flaky(1, seen)
    async with Driver("http://k", "t", figures, resend_cut_offs=True, transport=transport) as d:
        answer = await d.post("/deduct", {"request_id": "r-1", "n": 1})
    assert (answer.status, answer.reason, answer.resent) == (200, "deducted", True)
    assert [json.loads(body) for body in seen] == [{"request_id": "r-1", "n": 1}] * 2
    assert (figures.requests, figures.expected_errors, figures.failures) == (2, 1, 0)


async def test_resends_are_bounded() -> None:
    figures, seen = Figures("t", "sqlite"), []
    transport = flaky(RESENDS + 1, seen)
    async with Driver("http://k", "t", figures, resend_cut_offs=True, transport=transport) as d:
        answer = await d.post("/deduct", {"request_id": "r-1"})
    assert (answer.status, answer.error) == (0, "ReadError")
    assert len(seen) == RESENDS + 1


@pytest.mark.parametrize(
    ("resend", "body"), [(False, {"request_id": "r-1"}), (True, {"location_id": "l"})]
)
async def test_no_resend_unless_told_and_idempotent(resend: bool, body: dict[str, str]) -> None:
    figures, seen = Figures("t", "sqlite"), []
    transport = flaky(1, seen)
    async with Driver("http://k", "t", figures, resend_cut_offs=resend, transport=transport) as d:
        answer = await d.post("/deduct", body)
    assert (answer.status, answer.resent, len(seen)) == (0, False, 1)
    assert figures.expected_errors == 0
