from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kotally.db.models.base import Base

LINK_KINDS = ("calendar", "ghl_product", "stripe_price")


class ProductConfig(Base):
    """A sellable offer mapped to credit rules. `config_id` is the public id (e.g. pc_package_1)."""

    __tablename__ = "product_configs"
    __table_args__ = (
        UniqueConstraint("location_id", "config_id"),
        CheckConstraint("type IN ('package', 'membership')", name="type"),
        CheckConstraint("credits > 0", name="credits_positive"),
        CheckConstraint("expiry_days IS NULL OR expiry_days > 0", name="expiry_days_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    config_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    # credits_total for a package, monthly_credits for a membership.
    credits: Mapped[int]
    expiry_days: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    links: Mapped[list[ProductConfigLink]] = relationship(
        back_populates="config", cascade="all, delete-orphan"
    )

    def linked(self, kind: str) -> list[str]:
        return sorted(link.value for link in self.links if link.kind == kind)


class ProductConfigLink(Base):
    """A calendar, GHL product id or Stripe price id linked to a product config."""

    __tablename__ = "product_config_links"
    __table_args__ = (
        UniqueConstraint("product_config_id", "kind", "value"),
        CheckConstraint("kind IN ('calendar', 'ghl_product', 'stripe_price')", name="kind"),
        Index("ix_product_config_links_lookup", "location_id", "kind", "value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    product_config_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("product_configs.id", ondelete="CASCADE")
    )
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))

    config: Mapped[ProductConfig] = relationship(back_populates="links")
