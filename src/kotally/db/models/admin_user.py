from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base

ADMIN_ROLES = ("owner", "admin", "viewer")


class AdminUser(Base):
    """A person who signs in to the admin UI. Belongs to the installation, sees every location.

    The email is kept lower-cased (a CHECK holds it so), which makes the UNIQUE constraint
    case-insensitive on both databases without an expression index.
    """

    __tablename__ = "admin_users"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'viewer')", name="role"),
        CheckConstraint("email = lower(email)", name="email_lower"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_sign_in_at: Mapped[datetime | None]
