from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from kotally.db.models import Location
from kotally.kit.clock import Clock


@dataclass(frozen=True)
class LedgerContext:
    """What every ledger operation runs in: one transaction, one location, one clock."""

    session: Session
    clock: Clock
    location: Location
    correlation_id: str
    actor: str
