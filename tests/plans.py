"""Capture the statements a piece of code sends, and explain them, on either database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

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


def plan(db: Database, statement: str, parameters: Any) -> list[str]:
    """The query plan's lines. PostgreSQL is told to avoid sequential scans, or on tables this
    small it would rightly prefer them."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            return [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return [row[-1] for row in rows]
