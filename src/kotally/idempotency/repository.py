from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.db.models import IdempotencyRecord
from kotally.db.scoping import scoped
from kotally.kit.ids import new_id


def claim(
    session: Session,
    *,
    location_id: str,
    request_id: str,
    endpoint: str,
    fingerprint: str,
    payload: dict[str, Any],
    now: datetime,
) -> uuid.UUID | None:
    """Insert an in-progress record; None if the key exists.

    On PostgreSQL a concurrent claim of the same key waits here on the unique index until the
    first transaction ends (bounded by lock_timeout), then returns None if that one committed.
    """
    values = {
        "id": new_id(),
        "location_id": location_id,
        "request_id": request_id,
        "endpoint": endpoint,
        "fingerprint": fingerprint,
        "payload": payload,
        "state": "in_progress",
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        builder(IdempotencyRecord)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["location_id", "request_id"])
        .returning(IdempotencyRecord.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def get(session: Session, location_id: str, request_id: str) -> IdempotencyRecord | None:
    stmt = scoped(select(IdempotencyRecord), IdempotencyRecord, location_id).where(
        IdempotencyRecord.request_id == request_id
    )
    return session.execute(stmt).scalar_one_or_none()


def complete(
    session: Session, record_id: uuid.UUID, status_code: int, body: dict[str, Any], now: datetime
) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(state="completed", status_code=status_code, response=body, completed_at=now)
    )


def release(session: Session, record_id: uuid.UUID) -> None:
    """Drop a claim whose outcome is not to be kept."""
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
