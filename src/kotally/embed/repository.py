"""Every query of the staff embed's sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kotally.db.models import EmbedSession, Location


def location_exists(session: Session, location_id: str) -> bool:
    stmt = select(Location.id).where(Location.id == location_id)
    return session.execute(stmt).first() is not None


def find_location(session: Session, location_id: str) -> Location | None:
    return session.get(Location, location_id)


def add_session(session: Session, row: EmbedSession) -> None:
    session.add(row)
    session.flush()


def find_by_token_hash(session: Session, token_hash: str) -> EmbedSession | None:
    stmt = select(EmbedSession).where(EmbedSession.token_hash == token_hash)
    return session.execute(stmt).scalar_one_or_none()


def purge_expired_before(session: Session, before: datetime) -> int:
    """Delete sessions that expired before `before` (an index range on expires_at)."""
    result = session.execute(delete(EmbedSession).where(EmbedSession.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
