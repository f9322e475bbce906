"""The GHL event dispatcher and what the inbox needs to know of the provider."""

from __future__ import annotations

from typing import Any

from kotally.webhooks.ghl import bookings, lifecycle, payments
from kotally.webhooks.ghl.events import event_type
from kotally.webhooks.ghl.fields import PayloadError
from kotally.webhooks.handling import EventContext, Result
from kotally.webhooks.inbox import Provider


def handle(ctx: EventContext, payload: dict[str, Any]) -> Result:
    kind = event_type(payload)
    try:
        with ctx.session.begin_nested():  # a bad field found late undoes what came before
            if kind in bookings.TYPES:
                return bookings.handle(ctx, kind, payload)
            if kind in payments.ORDER_TYPES or kind == payments.INVOICE_TYPE:
                return payments.handle(ctx, kind, payload)
    except PayloadError as exc:
        return Result(
            "refused", "INVALID_PAYLOAD", details={"field": exc.field, "message": exc.message}
        )
    return Result("ignored", "event_type_not_handled")


PROVIDER = Provider(name="ghl", handler=handle, usable=lifecycle.usable, lifecycle=lifecycle.apply)
