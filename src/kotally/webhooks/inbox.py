"""The inbox (webhooks.md §2): store each verified event once and process it in the same
transaction; an unexpected error rolls back the effects only and stores the event `failed`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.errors import is_unavailable
from kotally.db.models import Location, WebhookEvent
from kotally.errors import KotallyError, OperatorError, RequestInProgress, ServiceUnavailable
from kotally.kit.clock import Clock
from kotally.kit.ids import new_id
from kotally.observability import WEBHOOK_EVENTS, get_logger
from kotally.webhooks import repository
from kotally.webhooks.handling import EventContext, Handler, Result

log = get_logger("kotally.webhooks")
ERROR_CHARS_MAX = 2000
_TYPE_LABEL = re.compile(r"^[A-Za-z0-9._]{1,64}$")

# An event that acts without a known location (GHL INSTALL creates it): the result, or None
# when the event is not one of these.
Lifecycle = Callable[[Session, Clock, str | None, dict[str, Any]], Result | None]


@dataclass(frozen=True)
class Provider:
    name: str  # "ghl" | "stripe"
    handler: Handler
    usable: Callable[[Location], bool] = lambda _location: True
    lifecycle: Lifecycle | None = None

    @property
    def actor(self) -> str:
        return f"webhook:{self.name}"


@dataclass(frozen=True)
class Incoming:
    """A verified event, as the endpoint read it."""

    event_key: str
    event_type: str
    location_id: str | None
    payload: dict[str, Any]
    correlation_id: str


def answer_body(event: WebhookEvent, correlation_id: str, duplicate: bool) -> dict[str, Any]:
    if duplicate:
        reason = "event_duplicate"
    else:
        reason = "event_ignored" if event.status == "ignored" else "event_processed"
    return {
        "ok": True,
        "reason_code": reason,
        "correlation_id": correlation_id,
        "event_id": str(event.id),
        "status": event.status,
        "outcome": event.outcome,
    }


def receive(
    db: Database, clock: Clock, settings: Settings, provider: Provider, incoming: Incoming
) -> dict[str, Any]:
    """Store the event once and process it; the answer's body. Commits before it returns."""
    duplicate = False
    with db.unit_of_work() as session:
        now = clock.now()
        event_id = repository.insert_if_absent(
            session,
            {
                "id": new_id(),
                "provider": provider.name,
                "provider_event_id": incoming.event_key,
                "event_type": incoming.event_type,
                "location_id": incoming.location_id,
                "received_at": now,
                "processed_at": None,
                "payload": incoming.payload,
                "status": "ignored",
                "outcome": None,
                "effects": [],
                "details": {},
                "error": None,
                "correlation_id": incoming.correlation_id,
                "attempts": 0,
            },
        )
        if event_id is None:
            duplicate = True
            found = repository.by_key(session, provider.name, incoming.event_key)
            assert found is not None  # the conflicting row is committed: it blocked our insert
            event = found
        else:
            found = repository.get(session, event_id)
            assert found is not None
            event = found
            _process(session, clock, settings, provider, event, incoming.correlation_id)
        body = answer_body(event, incoming.correlation_id, duplicate)
        status, event_type = event.status, event.event_type
    if not duplicate:
        WEBHOOK_EVENTS.labels(provider.name, _type_label(event_type), status).inc()
    return body


def _type_label(event_type: str) -> str:
    return event_type if _TYPE_LABEL.match(event_type) else "other"


def _process(
    session: Session,
    clock: Clock,
    settings: Settings,
    provider: Provider,
    event: WebhookEvent,
    correlation_id: str,
) -> None:
    """Run the handler in a savepoint and record its result on the event row."""
    try:
        with session.begin_nested():
            result = _dispatch(session, clock, settings, provider, event, correlation_id)
    except Exception as exc:
        if is_unavailable(exc):
            raise  # a 503: the whole transaction goes, the event is not stored
        if isinstance(exc, RequestInProgress):  # a lock wait ran out: transient, as a 503
            raise ServiceUnavailable() from exc
        log.error("webhook handler failed", exc_info=exc, event_id=str(event.id))
        result = Result("failed", "PROCESSING_FAILED")
        event.error = _error_text(exc)
    else:
        event.error = None
    event.status = result.status
    event.outcome = result.outcome
    event.effects = list(result.effects)
    event.details = dict(result.details)
    event.processed_at = clock.now()
    event.attempts += 1
    event.correlation_id = correlation_id


def _dispatch(
    session: Session,
    clock: Clock,
    settings: Settings,
    provider: Provider,
    event: WebhookEvent,
    correlation_id: str,
) -> Result:
    payload = event.payload
    if provider.lifecycle is not None:
        result = provider.lifecycle(session, clock, event.location_id, payload)
        if result is not None:
            return result
    if event.location_id is None:
        return Result("ignored", "location_missing")
    location = session.get(Location, event.location_id)
    if location is None:
        return Result("ignored", "location_unknown")
    if not provider.usable(location):
        return Result("ignored", "location_uninstalled")
    ctx = EventContext(
        session=session,
        clock=clock,
        location=location,
        correlation_id=correlation_id,
        settings=settings,
        event_id=event.id,
        provider=provider.name,
        actor=provider.actor,
    )
    return provider.handler(ctx, payload)


def _error_text(exc: BaseException) -> str:
    """What went wrong, for the operator: the kind and message, never a stack trace."""
    message = exc.message if isinstance(exc, KotallyError) else str(exc)
    return f"{type(exc).__name__}: {message}"[:ERROR_CHARS_MAX]


REPLAYABLE = ("failed", "unmatched")


def replay(
    db: Database,
    clock: Clock,
    settings: Settings,
    provider_of: Callable[[str], Provider],
    event_id: uuid.UUID,
    on_replayed: Callable[[Session, str, WebhookEvent], None] | None = None,
) -> WebhookEvent:
    """Process a failed or unmatched event again (kotally webhooks replay). Idempotent: every
    effect derives its request_id from the provider object. `on_replayed(session, status
    before, event)` runs in the same transaction (the audit row of who replayed it)."""
    correlation_id = str(uuid.uuid4())
    with db.unit_of_work() as session:
        event = repository.get(session, event_id, lock=True)
        if event is None:
            raise OperatorError(f"no webhook event {event_id}")
        if event.status not in REPLAYABLE:
            raise OperatorError(
                f"event {event_id} is {event.status}; only failed or unmatched events are replayed"
            )
        status_before = event.status
        _process(session, clock, settings, provider_of(event.provider), event, correlation_id)
        session.flush()
        if on_replayed is not None:
            on_replayed(session, status_before, event)
        session.expunge(event)
    WEBHOOK_EVENTS.labels(event.provider, _type_label(event.event_type), event.status).inc()
    return event
