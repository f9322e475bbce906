"""The Stripe half of the webhooks (webhooks.md §4).

The endpoint (`POST /webhooks/stripe/{location_id}`) calls, in this order: `verify` with the
location's endpoint secret (`SignatureError` → 401, nothing stored), `event_key` and
`event_type` for the inbox row, then `handle` inside the inbox's transaction.
"""

from kotally.webhooks.stripe.fields import PayloadError
from kotally.webhooks.stripe.handler import event_key, event_type, handle
from kotally.webhooks.stripe.signature import TOLERANCE_SECONDS, SignatureError, verify

__all__ = [
    "TOLERANCE_SECONDS",
    "PayloadError",
    "SignatureError",
    "event_key",
    "event_type",
    "handle",
    "verify",
]
