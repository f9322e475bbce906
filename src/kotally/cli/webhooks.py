"""`kotally webhooks …`: the inbox of provider events (webhooks.md §5)."""

from __future__ import annotations

import uuid
from typing import Any

import click

from kotally.audit import service as audit
from kotally.audit import tracked
from kotally.cli import main
from kotally.cli.common import (
    clock,
    database,
    echo_json,
    load_settings,
    open_session,
    operator_errors,
    require_migrated,
)
from kotally.db.models import WebhookEvent
from kotally.db.models.webhook_event import EVENT_STATUSES
from kotally.errors import OperatorError
from kotally.kit.clock import isoformat
from kotally.webhooks import repository


@main.group()
def webhooks() -> None:
    """Webhook events received from GoHighLevel and Stripe."""


def _row(event: WebhookEvent, *, full: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": str(event.id),
        "provider": event.provider,
        "provider_event_id": event.provider_event_id,
        "type": event.event_type,
        "location_id": event.location_id,
        "received_at": isoformat(event.received_at),
        "processed_at": isoformat(event.processed_at),
        "status": event.status,
        "outcome": event.outcome,
        "attempts": event.attempts,
    }
    if full:
        row |= {
            "effects": event.effects,
            "details": event.details,
            "error": event.error,
            "correlation_id": event.correlation_id,
            "payload": event.payload,
        }
    return row


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise OperatorError(f"{value!r} is not an event id (a UUID)") from None


@webhooks.command("list")
@click.option("--location", "location_id")
@click.option("--provider", type=click.Choice(["ghl", "stripe"]))
@click.option("--status", type=click.Choice(EVENT_STATUSES))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def webhooks_list(
    location_id: str | None, provider: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List events, newest first."""
    with open_session(write=False) as session:
        events = repository.list_events(
            session, location_id=location_id, provider=provider, status=status, limit=limit
        )
        rows = [_row(e) for e in events]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {r['received_at']}  {r['provider']:<6}  {r['type']:<24}  "
            f"{r['location_id'] or '-':<20}  {r['status']:<9}  {r['outcome'] or ''}"
        )


@webhooks.command("show")
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def webhooks_show(event_id: str, as_json: bool) -> None:
    """One event: its payload, outcome and effects."""
    with open_session(write=False) as session:
        event = repository.get(session, _event_id(event_id))
        if event is None:
            raise OperatorError(f"no webhook event {event_id}")
        row = _row(event, full=True)
    if as_json:
        echo_json(row)
        return
    for name, value in row.items():
        if name != "payload":
            click.echo(f"{name}: {value}")
    click.echo("payload:")
    echo_json(row["payload"])


@webhooks.command("replay")
@click.argument("event_id")
@operator_errors
def webhooks_replay(event_id: str) -> None:
    """Process a failed or unmatched event again (e.g. after adding its product config)."""
    db = database()
    try:
        require_migrated(db)
        event = tracked.replay_webhook(
            db, clock(), load_settings(), audit.cli_actor(), _event_id(event_id)
        )
    finally:
        db.dispose()
    click.echo(f"event {event.id} replayed: {event.status} {event.outcome or ''}".rstrip())
