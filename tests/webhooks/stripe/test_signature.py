"""`verify`: Stripe's HMAC scheme through the `stripe` package, the age measured on our clock."""

from __future__ import annotations

import pytest

from kotally.webhooks.stripe import SignatureError, verify
from tests.webhooks.stripe import events as ev

PAYLOAD = ev.body(ev.event("invoice.paid", {"id": "in_1"}))
NOW = ev.CREATED


def test_a_signature_of_the_body_with_the_secret_passes() -> None:
    verify(PAYLOAD, ev.signature(PAYLOAD), ev.SECRET, NOW)


def test_300_seconds_old_passes_and_301_fails() -> None:
    verify(PAYLOAD, ev.signature(PAYLOAD, timestamp=NOW - 300), ev.SECRET, NOW)
    with pytest.raises(SignatureError, match="300 s old"):
        verify(PAYLOAD, ev.signature(PAYLOAD, timestamp=NOW - 301), ev.SECRET, NOW)


def test_far_future_timestamp_fails() -> None:
    with pytest.raises(SignatureError, match="future"):
        verify(PAYLOAD, ev.signature(PAYLOAD, timestamp=NOW + 301), ev.SECRET, NOW)


def test_any_of_several_v1_signatures_may_match() -> None:
    good = ev.signature(PAYLOAD).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good},v0=ignored"
    verify(PAYLOAD, header, ev.SECRET, NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={NOW}",
        f"t=soon,v1={'0' * 64}",
        f"t={NOW},v0={'0' * 64}",
        f"t={NOW},v1={'0' * 64}",
    ],
)
def test_missing_malformed_or_wrong_headers_fail(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify(PAYLOAD, header, ev.SECRET, NOW)


def test_wrong_secret_fails() -> None:
    header = ev.signature(PAYLOAD, secret="whsec_someone_else")
    with pytest.raises(SignatureError):
        verify(PAYLOAD, header, ev.SECRET, NOW)


def test_a_changed_body_fails() -> None:
    header = ev.signature(PAYLOAD)
    with pytest.raises(SignatureError):
        verify(PAYLOAD.replace(b"in_1", b"in_2"), header, ev.SECRET, NOW)


def test_a_body_that_is_not_utf8_fails() -> None:
    with pytest.raises(SignatureError):
        verify(b"\xff\xfe{}", f"t={NOW},v1={'0' * 64}", ev.SECRET, NOW)


def test_an_empty_secret_fails() -> None:
    with pytest.raises(SignatureError):
        verify(PAYLOAD, ev.signature(PAYLOAD, secret=""), "", NOW)
