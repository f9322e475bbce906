"""The `Stripe-Signature` check, by the official `stripe` package (integrations.md)."""

from __future__ import annotations

# Stripe's own default, and the limit webhooks.md §1 sets: `t` at most 300 s old.
TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The signature is missing, malformed, wrong or too old: answered 401, nothing stored."""


def verify(payload: bytes, sig_header: str | None, secret: str, now: int) -> None:
    """Check the HMAC-SHA256 of `<t>.<body>` against every `v1`, then the age of `t`.

    `now` (Unix seconds) comes from Kotally's clock, so the age check is the package's rule
    measured on that clock: the package is asked for the signature only (tolerance off). A `t`
    more than the tolerance in the future is refused too: such a header would stay valid for
    longer than 300 s.
    """
    # Imported here: the package takes about a second to import on a loaded machine, which every
    # server worker would otherwise pay at startup whether Stripe is used or not.
    from stripe import SignatureVerificationError, WebhookSignature

    try:
        WebhookSignature.verify_header(payload, sig_header, secret, tolerance=None)
    except SignatureVerificationError as exc:
        raise SignatureError(_first_line(str(exc))) from None
    except (UnicodeDecodeError, ValueError):
        raise SignatureError("the body is not UTF-8 text") from None
    assert sig_header is not None  # verify_header refuses a missing header
    timestamp = _timestamp(sig_header)
    if now - timestamp > TOLERANCE_SECONDS:
        raise SignatureError(f"timestamp is more than {TOLERANCE_SECONDS} s old")
    if timestamp - now > TOLERANCE_SECONDS:
        raise SignatureError(f"timestamp is more than {TOLERANCE_SECONDS} s in the future")


def _timestamp(header: str) -> int:
    # The package read it the same way (the first `t=`) before it accepted the signature.
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name == "t":
            return int(value)
    raise SignatureError("no timestamp")  # pragma: no cover - verify_header refuses this first


def _first_line(message: str) -> str:
    return message.split(".", maxsplit=1)[0] if message else "signature invalid"
