from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base

ENTRY_KINDS = ("grant", "deduct", "restore", "expire", "adjust", "void")
# The ref index holds only entries with an external_ref: they are only ever looked up by one
# (migration 0013).
HAS_REF = text("external_ref IS NOT NULL")


class LedgerEntry(Base):
    """One movement of credits on one lot. Append-only: triggers refuse UPDATE and DELETE.

    The integer id gives the order of entries, which `kotally verify` replays.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('grant', 'deduct', 'restore', 'expire', 'adjust', 'void')", name="kind"
        ),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint("balance_after >= 0", name="balance_after_nonnegative"),
        Index("ix_ledger_entries_contact", "location_id", "contact_id", "id"),
        # The contact timeline orders entries by time (keyset on created_at, id).
        Index("ix_ledger_entries_contact_time", "location_id", "contact_id", "created_at", "id"),
        Index("ix_ledger_entries_lot", "entitlement_id", "id"),
        Index(
            "ix_ledger_entries_ref",
            "location_id",
            "contact_id",
            "external_ref",
            postgresql_where=HAS_REF,
            sqlite_where=HAS_REF,
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"))
    entitlement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entitlements.id"))
    product_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("product_configs.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    balance_after: Mapped[int]
    request_id: Mapped[str | None] = mapped_column(String(255))
    external_ref: Mapped[str | None] = mapped_column(String(255))
    appointment_time: Mapped[datetime | None]
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
