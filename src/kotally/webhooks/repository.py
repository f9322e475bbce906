"""Inbox queries: store an event once, find it, list them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.db.models import WebhookEvent


def insert_if_absent(session: Session, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert the event unless (provider, provider_event_id) is stored; its id, or None.

    On PostgreSQL a concurrent insert of the same key waits for the first to commit and then
    does nothing, so a duplicate delivery is answered as one, never as an error.
    """
    dialect = session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        builder(WebhookEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(WebhookEvent.id)
    )
    inserted: uuid.UUID | None = session.execute(stmt).scalar_one_or_none()
    return inserted


def by_key(session: Session, provider: str, provider_event_id: str) -> WebhookEvent | None:
    stmt = select(WebhookEvent).where(
        WebhookEvent.provider == provider, WebhookEvent.provider_event_id == provider_event_id
    )
    return session.execute(stmt).scalar_one_or_none()


def get(session: Session, event_id: uuid.UUID, *, lock: bool = False) -> WebhookEvent | None:
    stmt = select(WebhookEvent).where(WebhookEvent.id == event_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def list_events(
    session: Session,
    *,
    location_id: str | None = None,
    provider: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> Sequence[WebhookEvent]:
    """Newest first; `before` (received_at, id) of the last row of a page gives the next."""
    stmt = select(WebhookEvent)
    if before is not None:
        at, event_id = before
        stmt = stmt.where(
            or_(
                WebhookEvent.received_at < at,
                and_(WebhookEvent.received_at == at, WebhookEvent.id < event_id),
            )
        )
    if location_id is not None:
        stmt = stmt.where(WebhookEvent.location_id == location_id)
    if provider is not None:
        stmt = stmt.where(WebhookEvent.provider == provider)
    if status is not None:
        stmt = stmt.where(WebhookEvent.status == status)
    stmt = stmt.order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc()).limit(limit)
    return session.execute(stmt).scalars().all()


def needing_attention(session: Session) -> dict[str, dict[str, int]]:
    """Failed and unmatched events per location: what an operator should look at."""
    stmt = (
        select(WebhookEvent.location_id, WebhookEvent.status, func.count())
        .where(WebhookEvent.status.in_(("failed", "unmatched")))
        .group_by(WebhookEvent.location_id, WebhookEvent.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for location_id, status, count in session.execute(stmt).all():
        counts.setdefault(location_id or "", {})[status] = count
    return counts
