"""Fixtures for the contact reads: a studio with one package, and a reader bound to a location."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.factories import Ledger, make_config, make_location

ReadFn = Callable[..., dict[str, Any] | None]


class Reader:
    """Calls a read in its own read-only transaction, as the router does."""

    def __init__(self, db: Database, clock: FrozenClock, location_id: str = "loc_1") -> None:
        self.db, self.clock, self.location_id = db, clock, location_id

    def __call__(self, read: ReadFn, key: str = "ghl_contact_123", **kw: Any) -> Any:
        with self.db.unit_of_work(write=False) as session:
            return read(session, self.clock, self.location_id, key, **kw)

    def pages(self, read: ReadFn, name: str, limit: int, key: str = "ghl_contact_123") -> list[Any]:
        """Every page of a list, following next_cursor to the end."""
        pages: list[Any] = []
        cursor = None
        while True:
            body = self(read, key, limit=limit, cursor=cursor)
            pages.append(body[name])
            cursor = body.get("next_cursor")
            if cursor is None:
                return pages
            assert len(pages) < 100, "pagination does not end"


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    """loc_1 with pc_package_1 (10 credits) and pc_big (1000 credits)."""
    make_location(db, clock)
    make_config(db, clock)
    make_config(db, clock, "pc_big", credits=1000)
    return Ledger(db, clock)


@pytest.fixture
def read(db: Database, clock: FrozenClock) -> Reader:
    return Reader(db, clock)
