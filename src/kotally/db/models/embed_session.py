from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class EmbedSession(Base):
    """A staff member's read-only session of the GHL embed, for one location (docs/embed.md).

    Only the keyed hash of its random bearer token is kept. Who opened it (GHL's userId, name,
    email, role) is recorded as GHL sent it.
    """

    __tablename__ = "embed_sessions"
    __table_args__ = (Index("ix_embed_sessions_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"), index=True)
    ghl_user_id: Mapped[str | None] = mapped_column(String(255))
    ghl_company_id: Mapped[str | None] = mapped_column(String(255))
    user_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(64))
    user_type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
