"""Every query of the contact reads seeks an index and takes its order from it.

The ledger may hold millions of rows: a page must never scan or sort a contact's history. The
statements a read really sends are captured and explained. PostgreSQL is told to avoid sequential
scans, or on tables this small it would rightly prefer them.
"""

from __future__ import annotations

import re
from datetime import timedelta

from kotally.contacts import reads
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.contacts.conftest import Reader
from tests.factories import Ledger
from tests.plans import captured, plan

READ_TABLES = ("entitlements", "ledger_entries", "appointments", "grants")


def test_every_read_query_seeks_an_index(
    ledger: Ledger, read: Reader, db: Database, clock: FrozenClock
) -> None:
    ledger.grant(amount_cents=100, paid_at="2026-04-15T00:00:00Z")
    for n in range(3):
        ledger.deduct(external_ref=f"booking_{n}", appointment_time="2026-05-01T10:00:00Z")
        ledger.deduct(external_ref=f"untimed_{n}")
        clock.advance(timedelta(minutes=1))
    ledger.grant()

    with captured(db) as statements:
        read(reads.summary)
        read(reads.credits)
        for read_fn in (
            reads.entitlements,
            reads.appointments_upcoming,
            reads.appointments_past,
            reads.ledger,
            reads.payments,
            reads.timeline,
        ):
            first = read(read_fn, limit=1)
            read(read_fn, limit=1, cursor=first["next_cursor"])

    checked = 0
    for statement, parameters in statements:
        table = re.search(r"\sFROM\s+(\w+)", statement).group(1)  # type: ignore[union-attr]
        if table not in READ_TABLES:
            continue  # the contact lookup (contacts.repository) is not ours
        explained = "\n".join(plan(db, statement, parameters))
        assert " ix_" in explained, explained
        if db.dialect == "postgresql":
            assert "Seq Scan" not in explained, explained
            assert "Sort" not in explained, explained  # the index gives the order
        else:
            assert not any(line.startswith("SCAN") for line in explained.splitlines()), explained
            assert "TEMP B-TREE" not in explained, explained
        checked += 1
    assert checked >= 20
