from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.db.models import IdempotencyRecord
from kotally.db.scoping import scoped
from kotally.kit.ids import new_id

_TABLE = cast(Table, IdempotencyRecord.__table__)


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
    stmt = _claim_statement(session.get_bind().dialect.name)
    record_id: uuid.UUID | None = session.execute(
        stmt, {f"v_{name}": value for name, value in values.items()}
    ).scalar_one_or_none()
    return record_id


@cache
def _claim_statement(dialect: str) -> Executable:
    """Built once per dialect: every grant, deduct and restore runs it."""
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    columns = _TABLE.c
    names = ("id", "location_id", "request_id", "endpoint", "fingerprint", "payload", "state")
    # On the table, not the mapped class: the ORM's bulk-insert machinery cost more than the
    # statement (the benchmark's profile).
    return (
        builder(_TABLE)
        .values({name: bindparam(f"v_{name}", type_=columns[name].type) for name in names})
        .values(created_at=bindparam("v_created_at", type_=columns["created_at"].type))
        .on_conflict_do_nothing(index_elements=["location_id", "request_id"])
        .returning(columns.id)
    )


def get(session: Session, location_id: str, request_id: str) -> IdempotencyRecord | None:
    stmt = scoped(select(IdempotencyRecord), IdempotencyRecord, location_id).where(
        IdempotencyRecord.request_id == request_id
    )
    return session.execute(stmt).scalar_one_or_none()


# Built once, on the table. The record is never loaded in the session that completes it (claim
# returns only its id), so there is nothing in the session to synchronise.
_COMPLETE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("v_record_id"))
    .values(
        state="completed",
        status_code=bindparam("v_status_code"),
        response=bindparam("v_response"),
        completed_at=bindparam("v_completed_at"),
    )
)


def complete(
    session: Session, record_id: uuid.UUID, status_code: int, body: dict[str, Any], now: datetime
) -> None:
    params = {
        "v_record_id": record_id,
        "v_status_code": status_code,
        "v_response": body,
        "v_completed_at": now,
    }
    session.execute(_COMPLETE, params)


def release(session: Session, record_id: uuid.UUID) -> None:
    """Drop a claim whose outcome is not to be kept."""
    session.execute(delete(_TABLE).where(_TABLE.c.id == record_id))
