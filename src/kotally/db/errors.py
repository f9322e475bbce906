"""Recognising database failures that are not bugs: lock waits, lost connections, busy files."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

_PG_LOCK_NOT_AVAILABLE = "55P03"
_PG_UNAVAILABLE_CLASSES = ("08", "57", "53")  # connection, operator intervention, resources


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def is_lock_timeout(exc: OperationalError) -> bool:
    return _sqlstate(exc) == _PG_LOCK_NOT_AVAILABLE


def is_unavailable(exc: BaseException) -> bool:
    """True when the database could not do the work right now; nothing was committed."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    if state is not None:
        return is_unavailable_state(state)
    # sqlite3 raises OperationalError for a busy or locked file, and psycopg for a refused
    # connection before any SQLSTATE exists.
    return isinstance(exc, OperationalError)


def is_unavailable_state(state: str) -> bool:
    """A PostgreSQL SQLSTATE of a lock wait, a lost connection, an operator's intervention or
    exhausted resources: nothing was committed, the work may be tried again."""
    return state == _PG_LOCK_NOT_AVAILABLE or state.startswith(_PG_UNAVAILABLE_CLASSES)
