"""The app's own CPU per request, without HTTP: the ASGI app awaited directly.

    .venv/bin/python -m bench.inprocess --db postgresql --only check,deduct
    .venv/bin/python -m bench.inprocess --db sqlite --profile /tmp/prof   # cProfile, per workload

A fresh database (as bench/run.py makes one), migrated and seeded with the small ledger, then the
app of `kotally serve` (`create_app_from_env`, frozen heap included) in this process: 16 tasks
send check or deduct requests of the benchmark's shape straight to the app, and the process's
CPU time (user + system) per request is printed. No uvicorn, no sockets, no wrk: what is left is
the middleware, the endpoint and the database driver, so a change to them shows up here even on
a busy machine. PostgreSQL's own CPU is not counted (its backends are other processes).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import uvloop

from bench import seed
from bench.run import SECRET_KEY, fresh_database, kotally, kotally_env
from kotally.config import Settings

PATHS = {
    "check": "/api/v2/entitlements/check-eligibility",
    "deduct": "/api/v2/entitlements/deduct",
}
TASKS = 16
WARMUP = 50  # requests per task


class Driver:
    def __init__(self, app: Any, workload: str, contacts: int) -> None:
        self.app = app
        self.workload = workload
        self.contacts = contacts
        self.counter = itertools.count()
        self.statuses: dict[int, int] = {}

    def _body(self) -> bytes:
        fields: dict[str, object] = {
            "location_id": seed.LOCATION_ID,
            "ghl_contact_id": seed.ghl_id(random.randint(1, self.contacts)),
            "product_config_id": seed.BENCH_CONFIG,
            "amount": 1,
        }
        if self.workload == "deduct":
            fields["request_id"] = f"inprocess-{os.getpid()}-{next(self.counter)}"
        return json.dumps(fields).encode()

    async def one(self) -> None:
        body = self._body()
        path = PATHS[self.workload]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"authorization", f"Bearer {seed.TOKEN}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                self.statuses[status] = self.statuses.get(status, 0) + 1

        await self.app(scope, receive, send)

    async def run(self, requests: int) -> None:
        async def task(count: int) -> None:
            for _ in range(count):
                await self.one()

        await asyncio.gather(*(task(requests // TASKS) for _ in range(TASKS)))


async def measure(driver: Driver, requests: int, profile: Path | None) -> str:
    await driver.run(WARMUP * TASKS)
    driver.statuses.clear()
    profiler = cProfile.Profile() if profile else None
    before, started = os.times(), time.perf_counter()
    if profiler:
        profiler.enable()
    await driver.run(requests)
    if profiler:
        profiler.disable()
    after, wall = os.times(), time.perf_counter() - started
    done = requests // TASKS * TASKS
    cpu = (after.user - before.user) + (after.system - before.system)
    if profiler and profile:
        profile.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(profile / f"{driver.workload}.prof")
    return (
        f"{driver.workload}: app CPU {cpu / done * 1e6:.0f} us/request "
        f"(user {(after.user - before.user) / done * 1e6:.0f}), {done / wall:,.0f} requests/s "
        f"on one core, statuses {driver.statuses}" + (" (profiled)" if profiler else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--only", default="check,deduct", help="check, deduct or both")
    parser.add_argument("--requests", type=int, default=16_000, help="per workload")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--log-level", default="WARNING", help="KOTALLY_LOG_LEVEL of the app")
    parser.add_argument("--profile", type=Path, help="write a cProfile file per workload here")
    args = parser.parse_args()
    with fresh_database(args.db) as (url, sqlite_path, pg_url):
        env = kotally_env(url, args.log_level)
        kotally(env, "migrate")
        settings = Settings(database_url=url, secret_key=SECRET_KEY)
        seed.seed(settings, contacts=args.contacts, sqlite_path=sqlite_path, pg_url=pg_url)
        os.environ.update(env)
        from kotally.app import create_app_from_env  # after the environment is set

        app = create_app_from_env()
        for workload in [w for w in args.only.split(",") if w]:
            driver = Driver(app, workload, args.contacts)
            print(uvloop.run(measure(driver, args.requests, args.profile)), flush=True)
        app.state.kotally.db.dispose()


if __name__ == "__main__":
    main()
