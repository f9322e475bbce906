"""Seed a migrated Kotally database for the benchmark, fast, straight in SQL.

Every contact gets the same history, so a small and a large ledger differ only in size:

- an old 4-credit lot (`pc_trial`), granted and then deducted four times: exhausted;
- a 1,000-credit lot (`pc_bench`, linked to calendar `cal_bench`), granted and deducted four
  times: 996 credits left, enough that no benchmark deduct meets INSUFFICIENT_CREDITS.

That is 2 grants, 2 lots, 10 ledger entries and 10 idempotency records per contact (10,000
contacts: 100,000 entries; 100,000 contacts: 1,000,000 entries). The rows keep the ledger's
invariants (credits_remaining = sum of the lot's entries, balance_after = running sum, every
idempotency record completed) so that `kotally verify` passes on the seeded database.

Ids are deterministic (`<kind>-0000-4000-8000-<index>`), so the pgbench script of limit (a) can
name a contact's id without a lookup. PostgreSQL is loaded with COPY, SQLite with executemany in
one transaction; foreign-key checks are off while loading (the rows are consistent by construction).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import ApiClient, ProductConfig, ProductConfigLink
from kotally.kit.clock import FrozenClock
from kotally.kit.crypto import hash_token
from kotally.locations import service as locations

LOCATION_ID = "loc_bench"
BENCH_CONFIG = "pc_bench"
TRIAL_CONFIG = "pc_trial"
CALENDAR_ID = "cal_bench"
BENCH_CREDITS = 1000
TRIAL_CREDITS = 4
DEDUCTS_PER_LOT = 4
ENTRIES_PER_CONTACT = 2 * (1 + DEDUCTS_PER_LOT)

# The first group of each deterministic UUID says what it identifies.
KIND_CONTACT = 0x1
KIND_LOT_TRIAL = 0x2
KIND_LOT_BENCH = 0x3
KIND_GRANT_TRIAL = 0x4
KIND_GRANT_BENCH = 0x5
KIND_IDEMPOTENCY = 0x6
KIND_CONFIG = 0x7
KIND_CLIENT = 0x8
BENCH_CONFIG_UUID = uuid.UUID(f"{KIND_CONFIG:08x}-0000-4000-8000-{1:012x}")
TRIAL_CONFIG_UUID = uuid.UUID(f"{KIND_CONFIG:08x}-0000-4000-8000-{2:012x}")
CLIENT_UUID = uuid.UUID(f"{KIND_CLIENT:08x}-0000-4000-8000-{1:012x}")
CLIENT_SECRET = uuid.UUID("00000000-0000-4000-8000-00000000beef")
TOKEN = f"ktly_{CLIENT_UUID}_{CLIENT_SECRET}"


def ghl_id(index: int) -> str:
    return f"bc{index}"


@dataclass(frozen=True)
class Dialect:
    """How one database spells the values of a row."""

    name: str
    uuid: Callable[[int, int], str]
    ts: Callable[[datetime], str]


def _pg_uuid(kind: int, index: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{index:012x}"


def _sqlite_uuid(kind: int, index: int) -> str:
    return f"{kind:08x}000040008000{index:012x}"  # SQLAlchemy's Uuid on SQLite: 32 hex digits


PG = Dialect("postgresql", _pg_uuid, lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f+00"))
SQLITE = Dialect("sqlite", _sqlite_uuid, lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f"))

Row = tuple[Any, ...]

TABLES: dict[str, Sequence[str]] = {
    "contacts": ("id", "location_id", "ghl_contact_id", "external_contact_id", "email", "name",
                 "created_at"),
    "grants": ("id", "location_id", "contact_id", "product_config_id", "external_payment_id",
               "provider", "event_type", "amount_cents", "currency", "paid_at", "external_ref",
               "metadata", "request_id", "created_at"),
    "entitlements": ("id", "location_id", "contact_id", "product_config_id", "grant_id",
                     "credits_granted", "credits_remaining", "effective_at", "expires_at",
                     "status", "created_at"),
    "ledger_entries": ("location_id", "contact_id", "entitlement_id", "product_config_id", "kind",
                       "amount", "balance_after", "request_id", "external_ref",
                       "appointment_time", "correlation_id", "actor", "created_at"),
    "idempotency_records": ("id", "location_id", "request_id", "endpoint", "fingerprint",
                            "payload", "state", "status_code", "response", "created_at",
                            "completed_at"),
}  # fmt: skip


class _History:
    """The rows of contacts [1, n], table by table, in insertion order."""

    def __init__(self, d: Dialect, base: datetime) -> None:
        self.d = d
        self.base = base
        self.configs = {
            KIND_LOT_TRIAL: (d.uuid(KIND_CONFIG, 2), TRIAL_CREDITS, KIND_GRANT_TRIAL, "a"),
            KIND_LOT_BENCH: (d.uuid(KIND_CONFIG, 1), BENCH_CREDITS, KIND_GRANT_BENCH, "b"),
        }

    def at(self, index: int, step: int) -> str:
        # Contact i's history happens in the seconds after base + i ms, in order.
        return self.d.ts(self.base + timedelta(milliseconds=index, seconds=step))

    def contacts(self, n: int) -> Iterator[Row]:
        u = self.d.uuid
        for i in range(1, n + 1):
            yield (u(KIND_CONTACT, i), LOCATION_ID, ghl_id(i), None, None, None, self.at(i, 0))

    def grants(self, n: int) -> Iterator[Row]:
        u = self.d.uuid
        for i in range(1, n + 1):
            for lot_kind, (config, _credits, grant_kind, tag) in self.configs.items():
                step = 1 if lot_kind == KIND_LOT_TRIAL else 10
                yield (
                    u(grant_kind, i), LOCATION_ID, u(KIND_CONTACT, i), config, f"pay-{tag}-{i}",
                    "automation", "payment_confirmed", 2000, "USD", self.at(i, step), None,
                    None, f"seed-g{tag}-{i}", self.at(i, step),
                )  # fmt: skip

    def entitlements(self, n: int) -> Iterator[Row]:
        u = self.d.uuid
        for i in range(1, n + 1):
            for lot_kind, (config, credits, grant_kind, _tag) in self.configs.items():
                left = credits - DEDUCTS_PER_LOT
                step = 1 if lot_kind == KIND_LOT_TRIAL else 10
                yield (
                    u(lot_kind, i), LOCATION_ID, u(KIND_CONTACT, i), config, u(grant_kind, i),
                    credits, left, self.at(i, step), None, "active" if left else "exhausted",
                    self.at(i, step),
                )  # fmt: skip

    def ledger_entries(self, n: int) -> Iterator[Row]:
        u = self.d.uuid
        for i in range(1, n + 1):
            contact = u(KIND_CONTACT, i)
            for lot_kind, (config, credits, _grant_kind, tag) in self.configs.items():
                lot = u(lot_kind, i)
                step = 1 if lot_kind == KIND_LOT_TRIAL else 10
                cid = f"seed-{i}"
                yield (
                    LOCATION_ID, contact, lot, config, "grant", credits, credits,
                    f"seed-g{tag}-{i}", None, None, cid, "seed", self.at(i, step),
                )  # fmt: skip
                for k in range(1, DEDUCTS_PER_LOT + 1):
                    yield (
                        LOCATION_ID, contact, lot, config, "deduct", -1, credits - k,
                        f"seed-d{tag}-{i}-{k}", None, None, cid, "seed", self.at(i, step + k),
                    )  # fmt: skip

    def idempotency_records(self, n: int) -> Iterator[Row]:
        u = self.d.uuid
        serial = 0
        for i in range(1, n + 1):
            for lot_kind, (_config, credits, _grant_kind, tag) in self.configs.items():
                step = 1 if lot_kind == KIND_LOT_TRIAL else 10
                config_id = TRIAL_CONFIG if lot_kind == KIND_LOT_TRIAL else BENCH_CONFIG
                keys = [(f"seed-g{tag}-{i}", "grants", "grant_applied", credits, 0)]
                keys += [
                    (f"seed-d{tag}-{i}-{k}", "deduct", "deducted", credits - k, k)
                    for k in range(1, DEDUCTS_PER_LOT + 1)
                ]
                for request_id, endpoint, code, balance, offset in keys:
                    serial += 1
                    payload = (
                        f'{{"location_id":"{LOCATION_ID}","request_id":"{request_id}",'
                        f'"ghl_contact_id":"bc{i}","product_config_id":"{config_id}","amount":1}}'
                    )
                    response = (
                        f'{{"ok":true,"reason_code":"{code}","correlation_id":"seed-{i}",'
                        f'"balance_after":{balance}}}'
                    )
                    when = self.at(i, step + offset)
                    yield (
                        u(KIND_IDEMPOTENCY, serial), LOCATION_ID, request_id, endpoint,
                        "0" * 64, payload, "completed", 200, response, when, when,
                    )  # fmt: skip


def _fixed_rows(settings: Settings, now: datetime) -> None:
    """The location through its service; the two product configs and the API client through the
    ORM, because the history rows and the wrk script name their fixed ids."""
    db = Database(settings)
    try:
        with db.unit_of_work() as session:
            locations.create(
                session, FrozenClock(now), location_id=LOCATION_ID, name="Benchmark Studio"
            )
            for config_uuid, config_id, credits in (
                (BENCH_CONFIG_UUID, BENCH_CONFIG, BENCH_CREDITS),
                (TRIAL_CONFIG_UUID, TRIAL_CONFIG, TRIAL_CREDITS),
            ):
                session.add(
                    ProductConfig(
                        id=config_uuid,
                        location_id=LOCATION_ID,
                        config_id=config_id,
                        name=config_id,
                        type="package",
                        credits=credits,
                        expiry_days=None,
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
            session.flush()
            session.add(
                ProductConfigLink(
                    id=uuid.uuid4(),
                    product_config_id=BENCH_CONFIG_UUID,
                    location_id=LOCATION_ID,
                    kind="calendar",
                    value=CALENDAR_ID,
                )
            )
            session.add(
                ApiClient(
                    id=CLIENT_UUID,
                    location_id=LOCATION_ID,
                    name="benchmark",
                    scopes="check,deduct,grant,restore,summary",
                    token_hash=hash_token(settings.secret_key, TOKEN),
                    active=True,
                    rate_limit_per_second=None,
                    created_at=now,
                )
            )
    finally:
        db.dispose()


def _pg_copy(url: str, history: _History, contacts: int) -> None:
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        for table, columns in TABLES.items():
            rows: Iterator[Row] = getattr(history, table)(contacts)
            with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                buffer: list[str] = []
                for row in rows:
                    buffer.append("\t".join("\\N" if v is None else str(v) for v in row))
                    if len(buffer) >= 20_000:
                        copy.write("\n".join(buffer) + "\n")
                        buffer.clear()
                if buffer:
                    copy.write("\n".join(buffer) + "\n")
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        # The load's dirty pages written out now, not by a checkpoint in the middle of the
        # measured runs (the large ledger's deduct p99 moved from 32 to 630 ms with it).
        conn.execute("CHECKPOINT")


def _sqlite_insert(path: str, history: _History, contacts: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for table, columns in TABLES.items():
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                getattr(history, table)(contacts),
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    # As the CHECKPOINT on PostgreSQL: the load (written with synchronous=OFF) goes to the disk
    # now, not by the kernel's writeback in the middle of the measured runs.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seed(settings: Settings, *, contacts: int, sqlite_path: str | None, pg_url: str | None) -> None:
    """Seed a freshly migrated database with `contacts` contacts of identical history."""
    now = datetime.now(UTC)
    _fixed_rows(settings, now)
    base = now - timedelta(days=60)
    if pg_url is not None:
        _pg_copy(pg_url, _History(PG, base), contacts)
    else:
        assert sqlite_path is not None
        _sqlite_insert(sqlite_path, _History(SQLITE, base), contacts)
