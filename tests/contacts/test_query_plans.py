"""Every query of the contact reads seeks an index and takes its order from it.

The ledger may hold millions of rows: a page must never scan or sort a contact's history. The
statements a read really sends are captured and explained. PostgreSQL is told to avoid sequential
scans, or on tables this small it would rightly prefer them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from kotally.contacts import reads
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.contacts.conftest import Reader
from tests.factories import Ledger

READ_TABLES = ("entitlements", "ledger_entries", "appointments", "grants")


@contextmanager
def _captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def grab(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)


def _plan(db: Database, statement: str, parameters: Any) -> list[str]:
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            return [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return [row[-1] for row in rows]


def test_every_read_query_seeks_an_index(
    ledger: Ledger, read: Reader, db: Database, clock: FrozenClock
) -> None:
    ledger.grant(amount_cents=100, paid_at="2026-04-15T00:00:00Z")
    for n in range(3):
        ledger.deduct(external_ref=f"booking_{n}", appointment_time="2026-05-01T10:00:00Z")
        ledger.deduct(external_ref=f"untimed_{n}")
        clock.advance(timedelta(minutes=1))
    ledger.grant()

    with _captured(db) as statements:
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
        plan = "\n".join(_plan(db, statement, parameters))
        assert " ix_" in plan, plan
        if db.dialect == "postgresql":
            assert "Seq Scan" not in plan, plan
            assert "Sort" not in plan, plan  # the index gives the order
        else:
            assert not any(line.startswith("SCAN") for line in plan.splitlines()), plan
            assert "TEMP B-TREE" not in plan, plan
        checked += 1
    assert checked >= 20
