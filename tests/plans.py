"""Capture the statements a piece of code sends, and explain them, on either database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session

from kotally.db.engine import Database


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT sent through the engine while inside, with its parameters."""
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


def plan(
    db: Database, statement: str, parameters: Any, *, without: Sequence[str] = ()
) -> list[str]:
    """The query plan's lines. PostgreSQL is told to avoid sequential scans, or on tables this
    small it would rightly prefer them; the indexes named in `without` are dropped there for the
    plan, in a transaction rolled back (on a few rows without statistics PostgreSQL may rightly
    prefer another index than the one a real ledger's plan takes)."""
    if db.dialect != "postgresql":
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return [row[-1] for row in rows]
    with db.engine.connect() as conn, conn.begin() as transaction:
        if without:
            conn.exec_driver_sql("DROP INDEX " + ", ".join(without))
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        lines = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
        transaction.rollback()
    return lines


def vacuum_analyze(db: Database, table: str) -> None:
    """PostgreSQL: VACUUM ANALYZE `table`, so its statistics say what it holds now (an empty
    table known to be empty, as after a fresh seeding)."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'VACUUM ANALYZE "{table}"'))


def sequential_scans(conn: Connection | Session, table: str) -> tuple[int, int]:
    """PostgreSQL: (seq_scan, seq_tup_read) of `table` in this backend's counts not yet sent to
    the statistics: its own reads, nobody else's. Compare two readings on one connection."""
    row = conn.execute(
        text("SELECT seq_scan, seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = :table"),
        {"table": table},
    ).one()
    return int(row[0]), int(row[1])
