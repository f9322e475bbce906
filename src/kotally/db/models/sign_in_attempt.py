from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class SignInAttempt(Base):
    """One failed sign-in. Counted per account and per address to rate limit guessing.

    Kept in the database, not in memory, so that every server process sees the same counts.
    """

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_email_at", "email", "attempted_at"),
        Index("ix_sign_in_attempts_address_at", "address", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    email: Mapped[str] = mapped_column(String(320))
    address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime]
