from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class Contact(Base):
    """A customer of a location. Mutations for a contact serialise on this row."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("location_id", "ghl_contact_id"),
        UniqueConstraint("location_id", "external_contact_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    ghl_contact_id: Mapped[str | None] = mapped_column(String(255))
    external_contact_id: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
