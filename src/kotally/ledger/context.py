from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from kotally.kit.clock import Clock


class LocationView(Protocol):
    """What the ledger needs to know of a location (a row, or a snapshot taken at auth)."""

    @property
    def id(self) -> str: ...
    @property
    def billing_status(self) -> str: ...
    @property
    def cancellation_window_hours(self) -> int | None: ...


@dataclass(frozen=True)
class LedgerContext:
    """What every ledger operation runs in: one transaction, one location, one clock."""

    session: Session
    clock: Clock
    location: LocationView
    correlation_id: str
    actor: str
