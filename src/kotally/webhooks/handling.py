"""What every webhook handler runs in and answers (the interface of the inbox)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from kotally.config import Settings
from kotally.db.models import Location
from kotally.kit.clock import Clock
from kotally.ledger.context import LedgerContext


@dataclass(frozen=True)
class EventContext:
    session: Session
    clock: Clock
    location: Location
    correlation_id: str
    settings: Settings
    event_id: uuid.UUID
    provider: str
    actor: str

    def ledger(self) -> LedgerContext:
        return LedgerContext(
            self.session, self.clock, self.location, self.correlation_id, self.actor
        )


@dataclass
class Result:
    status: str
    outcome: str | None = None
    effects: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[EventContext, dict[str, Any]], Result]
