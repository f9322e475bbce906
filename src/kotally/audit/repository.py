"""Queries of the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kotally.db.models import AuditEntry
from kotally.db.scoping import scoped


def insert(session: Session, entry: AuditEntry) -> None:
    session.add(entry)


def page(
    session: Session, location_id: str | None, before_id: int | None, limit: int
) -> Sequence[AuditEntry]:
    """Newest first; `location_id` None means every location and the installation-wide rows."""
    stmt = select(AuditEntry)
    if location_id is not None:
        stmt = scoped(stmt, AuditEntry, location_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
    return session.execute(stmt).scalars().all()
