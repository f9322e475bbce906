"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, foreign keys on, and write transactions opened with BEGIN IMMEDIATE so that writers
serialise at BEGIN instead of failing at their first write (SQLAlchemy drops FOR UPDATE there).
PostgreSQL: psycopg 3, a bounded lock wait per statement, one pool per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from kotally.config import Settings
from kotally.db.async_pg import AsyncPostgres
from kotally.db.write_gate import SqliteWriteGate

WRITE_OPTION = "kotally_write"


def normalize_url(raw: str) -> URL:
    """Accept the plain forms a user types and map them to the drivers Kotally uses."""
    raw = raw.strip()
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        url = make_url(raw)
    except Exception as exc:
        raise ValueError(f"KOTALLY_DATABASE_URL is not a database URL: {raw!r}") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(
        "KOTALLY_DATABASE_URL must be sqlite:///path or postgresql://user@host:port/db, "
        f"not {backend}"
    )


def make_engine(settings: Settings) -> Engine:
    url = normalize_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    return _postgres_engine(url, settings)


def _sqlite_engine(url: URL, settings: Settings) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": settings.db_busy_timeout_seconds, "check_same_thread": False},
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
    )
    busy_ms = int(settings.db_busy_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins (see _on_begin).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front; readers use WAL snapshots and never wait.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    _savepoints_as_sql(engine)
    return engine


def _savepoints_as_sql(engine: Engine) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO sent as SQL, not compiled from a clause each time.

    The group-commit writer opens and releases a savepoint for every request, and each has a new
    name, so SQLAlchemy compiled both anew every time (about half their cost, 25-45 µs a pair).
    """
    quote = engine.dialect.identifier_preparer.quote

    def sql(verb: str) -> Callable[[Any, str], None]:
        def run(connection: Any, name: str) -> None:
            connection.exec_driver_sql(f"{verb} {quote(name)}")

        return run

    setattr(engine.dialect, "do_savepoint", sql("SAVEPOINT"))  # noqa: B010 (a method)
    setattr(engine.dialect, "do_release_savepoint", sql("RELEASE SAVEPOINT"))  # noqa: B010
    setattr(engine.dialect, "do_rollback_to_savepoint", sql("ROLLBACK TO SAVEPOINT"))  # noqa: B010


def _postgres_engine(url: URL, settings: Settings) -> Engine:
    lock_ms = int(settings.db_lock_timeout_seconds * 1000)
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_pre_ping=False,
        connect_args={
            "options": f"-c lock_timeout={lock_ms} -c idle_in_transaction_session_timeout=60000",
            "connect_timeout": 5,
        },
    )


class WriteBatch:
    """The shared transaction of a write batch: call it for a session joined to it in a
    savepoint; `driver` is its DBAPI connection (sqlite3), for raw statements."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.driver: Any = connection.connection.driver_connection

    def __call__(self) -> Session:
        return Session(
            bind=self._connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )


class Database:
    """One engine per process and the two kinds of session Kotally uses."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.dialect = self.engine.dialect.name
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        # PostgreSQL reads whose statements need not share one snapshot: no BEGIN, no COMMIT.
        self._read_each = (
            sessionmaker(
                bind=self.engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
            if self.dialect == "postgresql"
            else self._read
        )
        self._async_pg: AsyncPostgres | None = None
        self._readers: dict[int, PoolProxiedConnection] = {}
        self._write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._write = sessionmaker(bind=self._write_engine, expire_on_commit=False)
        self._write_gate = (
            SqliteWriteGate(self.engine.url.database, settings.db_busy_timeout_seconds)
            if self.dialect == "sqlite"
            else None
        )

    @contextmanager
    def unit_of_work(self, *, write: bool = True, snapshot: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error.

        The caller learns of a failed commit by its exception: never answer before this exits.
        A read (write=False) with snapshot=False runs on PostgreSQL without a transaction, each
        statement reading the latest committed state on its own: two round trips fewer, for a
        read whose statements need not agree with each other (the check; the benchmark: 1.5-1.7
        -> 1.2-1.4 ms CPU in one thread). On SQLite a read is a WAL snapshot either way.
        """
        assert snapshot or not write, "a write is always one transaction"
        gate = self._write_gate if write else None
        if gate is not None:
            gate.acquire()
        try:
            factory = self._write if write else self._read if snapshot else self._read_each
            session = factory()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
        finally:
            if gate is not None:
                gate.release()

    def try_write_lock(self) -> bool:
        """SQLite: takes the write gate if it is free now, for a `write_batch(locked=True)`;
        False if another thread or process holds it. True on PostgreSQL, which has no gate."""
        return self._write_gate is None or self._write_gate.try_acquire()

    @contextmanager
    def write_batch(self, *, locked: bool = False) -> Iterator[WriteBatch]:
        """One write transaction shared by many requests, each in a SAVEPOINT of its own.

        Yields a factory of sessions joined to the transaction (a session's commit releases its
        savepoint, its rollback undoes only its own work) that also lends the transaction's
        driver connection to work written in raw statements. Committed when the block ends,
        rolled back whole on any error (db/group_commit.py). `locked`: the caller holds the
        write gate already (`try_write_lock`); it is let go when the block ends, as ever.
        """
        gate = self._write_gate
        if gate is not None and not locked:
            gate.acquire()
        try:
            with self._write_engine.connect() as connection, connection.begin():
                yield WriteBatch(connection)
        finally:
            if gate is not None:
                gate.release()

    def sqlite_reader(self) -> Any:
        """SQLite: this thread's own connection for raw reads, in autocommit (each statement
        reads the latest commit; WAL readers never wait), kept until `dispose`."""
        thread = threading.get_ident()
        held = self._readers.get(thread)
        if held is None:
            # Through connect(), which raises a failure to open the file as SQLAlchemy's
            # OperationalError (a 503 at the API); raw_connection() would raise sqlite3's own.
            held = self._readers[thread] = self.engine.connect().connection
        return held.driver_connection

    def async_postgres(self) -> AsyncPostgres | None:
        """PostgreSQL: the async connections of the API's hot path, made once and closed with
        the engine; None on SQLite."""
        if self.dialect != "postgresql":
            return None
        if self._async_pg is None:
            self._async_pg = AsyncPostgres(self.engine.url, self.settings)
        return self._async_pg

    def dispose(self) -> None:
        for held in self._readers.values():
            held.close()
        self._readers.clear()
        self.engine.dispose()
        if self._async_pg is not None:
            self._async_pg.dispose()
        if self._write_gate is not None:
            self._write_gate.close()
