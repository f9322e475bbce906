"""Every test runs on a real, migrated database: SQLite and PostgreSQL.

KOTALLY_TEST_DATABASES picks the halves (default "sqlite,postgresql"). PostgreSQL is reached at
KOTALLY_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres); if it cannot be
reached the PostgreSQL tests fail, they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.migrate import upgrade_to_head
from kotally.db.models import Base
from kotally.kit.clock import FrozenClock

DATABASES = [
    name.strip()
    for name in os.environ.get("KOTALLY_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]
POSTGRES_ADMIN_URL = os.environ.get(
    "KOTALLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START = datetime(2026, 4, 16, 0, 0, tzinfo=UTC)
TEST_SECRET = "test-secret-key-for-kotally-tests-only-0123456789"


class _Postgres:
    """One throwaway database per test session, migrated once, truncated between tests."""

    def __init__(self) -> None:
        self.name = f"kotally_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg")
        self.admin = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        except Exception as exc:
            raise RuntimeError(
                f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: the PostgreSQL half of the "
                "suite needs it (start it, or set KOTALLY_TEST_DATABASES=sqlite to run only SQLite)"
            ) from exc
        self.url = admin.set(database=self.name).render_as_string(hide_password=False)
        db = Database(Settings(database_url=self.url))
        upgrade_to_head(db.engine)
        db.dispose()

    def reset(self, db: Database) -> None:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[_Postgres]:
    pg = _Postgres()
    yield pg
    pg.drop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(Settings(database_url=f"sqlite:///{path}"))
    upgrade_to_head(db.engine)
    db.dispose()
    return path


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "kotally.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
    elif request.param == "postgresql":
        pg: _Postgres = request.getfixturevalue("postgres")
        db = Database(Settings(database_url=pg.url))
        pg.reset(db)
        db.dispose()
        yield pg.url
    else:
        raise ValueError(f"unknown test database {request.param!r}")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key=TEST_SECRET, rate_limit_per_second=0)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)
