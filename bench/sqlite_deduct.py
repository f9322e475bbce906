"""Limit (c): the deduct transaction of bench/pg_deduct.sql, on SQLite, with no HTTP.

A loop of Python's `sqlite3` on the seeded database, one transaction per deduct (BEGIN
IMMEDIATE; insert the idempotency row; read the contact's live lots in consumption order; take
one credit from the first; append its ledger entry; COMMIT), in WAL mode with the server's
`synchronous` setting. SQLite commits one writer at a time, so one loop is what the file allows;
bench/run.py runs it for as long as each HTTP measurement.

    python -m bench.sqlite_deduct PATH CONTACTS SECONDS [FULL|NORMAL]   # prints one JSON line
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime

from bench import seed

_CLAIM = (
    "INSERT INTO idempotency_records (id, location_id, request_id, endpoint, fingerprint, "
    "payload, state, status_code, response, created_at, completed_at) "
    "VALUES (?, ?, ?, 'deduct', 'limit-c', '{}', 'completed', 200, '{}', ?, ?) "
    "ON CONFLICT (location_id, request_id) DO NOTHING RETURNING id"
)
_LOTS = (
    "SELECT id, credits_remaining FROM entitlements WHERE location_id = ? AND contact_id = ? "
    "AND product_config_id = ? AND status IN ('active', 'exhausted') AND effective_at <= ? "
    "AND (expires_at IS NULL OR expires_at > ?) "
    "ORDER BY expires_at IS NULL, expires_at, created_at, id"
)
_UPDATE = (
    "UPDATE entitlements SET credits_remaining = credits_remaining - 1, "
    "status = CASE WHEN credits_remaining - 1 > 0 THEN 'active' ELSE 'exhausted' END WHERE id = ?"
)
_ENTRY = (
    "INSERT INTO ledger_entries (location_id, contact_id, entitlement_id, product_config_id, "
    "kind, amount, balance_after, request_id, correlation_id, actor, created_at) "
    "VALUES (?, ?, ?, ?, 'deduct', -1, ?, 'limit-c', 'limit-c', 'limit-c', ?)"
)


def run(path: str, contacts: int, seconds: float, synchronous: str) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    config = seed.SQLITE.uuid(seed.KIND_CONFIG, 1)
    tag = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        contact = seed.SQLITE.uuid(seed.KIND_CONTACT, random.randint(1, contacts))
        now = seed.SQLITE.ts(datetime.now(UTC))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_CLAIM, (uuid.uuid4().hex, seed.LOCATION_ID, f"c-{tag}-{n}", now, now))
        lots = conn.execute(_LOTS, (seed.LOCATION_ID, contact, config, now, now)).fetchall()
        lot_id, left = lots[0]
        conn.execute(_UPDATE, (lot_id,))
        conn.execute(_ENTRY, (seed.LOCATION_ID, contact, lot_id, config, left - 1, now))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - started)
        n += 1
    conn.close()
    latencies.sort()
    return {
        "requests": n,
        "seconds": seconds,
        "p50_ms": 1000 * latencies[n // 2] if n else 0.0,
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else 0.0,
    }


if __name__ == "__main__":
    sync = sys.argv[4] if len(sys.argv) > 4 else "FULL"
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sync)))
