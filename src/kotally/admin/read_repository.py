"""The admin's own read queries: per-location counts and the daily credit movements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kotally.db.models import Contact, Entitlement, LedgerEntry, ProductConfig
from kotally.db.scoping import scoped
from kotally.ledger.repository import live_condition


@dataclass(frozen=True)
class LocationCounts:
    contacts: int
    live_lots: int
    credits_outstanding: int


def counts(session: Session, location_id: str, now: datetime) -> LocationCounts:
    contacts = session.execute(
        scoped(select(func.count()).select_from(Contact), Contact, location_id)
    ).scalar_one()
    lots, credits = session.execute(
        scoped(
            select(func.count(), func.coalesce(func.sum(Entitlement.credits_remaining), 0))
            .select_from(Entitlement)
            .join(ProductConfig, ProductConfig.id == Entitlement.product_config_id),
            Entitlement,
            location_id,
        ).where(live_condition(now), ProductConfig.active.is_(True))
    ).one()
    return LocationCounts(int(contacts), int(lots), int(credits))


def movements_by_hour(
    session: Session, location_id: str, since: datetime
) -> Sequence[tuple[str, str, int]]:
    """(kind, 'YYYY-MM-DD HH' in UTC, Σ amount) of the location's entries since `since`.

    Summed per UTC hour in the database, so the page reads at most 24 x 31 x 5 rows however
    busy the location; the caller folds hours into the location's local days.
    """
    if session.get_bind().dialect.name == "sqlite":
        hour = func.strftime("%Y-%m-%d %H", LedgerEntry.created_at)
    else:
        hour = func.to_char(func.timezone("UTC", LedgerEntry.created_at), "YYYY-MM-DD HH24")
    stmt = (
        scoped(
            select(LedgerEntry.kind, hour, func.sum(LedgerEntry.amount)), LedgerEntry, location_id
        )
        .where(LedgerEntry.created_at >= since)
        .group_by(LedgerEntry.kind, hour)
    )
    return [(str(k), str(h), int(a)) for k, h, a in session.execute(stmt).all()]
