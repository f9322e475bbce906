from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class IdempotencyRecord(Base):
    """The stored outcome of one request_id in one location.

    Written in the same transaction as the work it records: claimed `in_progress` first (a
    concurrent claim of the same key waits on the unique index), `completed` before commit.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("location_id", "request_id"),
        CheckConstraint("state IN ('in_progress', 'completed')", name="state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    request_id: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
