from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class ApiClient(Base):
    """A machine caller. Only the keyed hash of its token is kept."""

    __tablename__ = "api_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(255))  # comma-separated, sorted
    token_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    rate_limit_per_second: Mapped[int | None]
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    @property
    def scope_set(self) -> frozenset[str]:
        return scope_set(self.scopes)


def scope_set(scopes: str) -> frozenset[str]:
    """The stored comma-separated scopes as a set."""
    return frozenset(s for s in scopes.split(",") if s)
