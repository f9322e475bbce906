"""`kotally serve --workers 2` as a real process: the published examples over TCP, concurrent
deducts spread over both workers, and a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.ledger.verify import verify
from kotally.server import GRACEFUL_SHUTDOWN_SECONDS
from tests.conftest import TEST_SECRET
from tests.factories import make_client, make_config, make_location

pytestmark = pytest.mark.slow

WORKERS = 2
START_TIMEOUT_SECONDS = 60.0
JSON = {"Content-Type": "application/json"}
EXAMPLES = [
    (
        "/api/v2/grants",
        '{"location_id":"loc_1","request_id":"grant_req_123","external_payment_id":"payment_123",'
        '"ghl_contact_id":"ghl_contact_123","product_config_id":"pc_package_1",'
        '"amount_cents":9900,"currency":"USD","paid_at":"2026-04-16T00:00:00.000Z"}',
        {"reason_code": "grant_applied", "credits_granted": 10, "balance_after": 10},
    ),
    (
        "/api/v2/entitlements/check-eligibility",
        '{"location_id":"loc_1","ghl_contact_id":"ghl_contact_123",'
        '"product_config_id":"pc_package_1","amount":1}',
        {"reason_code": "eligible", "balance_after": 9},
    ),
    (
        "/api/v2/entitlements/deduct",
        '{"location_id":"loc_1","request_id":"booking-123-deduct",'
        '"ghl_contact_id":"ghl_contact_123","product_config_id":"pc_package_1","amount":1,'
        '"external_ref":"booking_123"}',
        {"reason_code": "deducted", "balance_after": 9},
    ),
    (
        "/api/v2/entitlements/restore",
        '{"location_id":"loc_1","request_id":"booking-123-restore",'
        '"ghl_contact_id":"ghl_contact_123","product_config_id":"pc_package_1","amount":1,'
        '"external_ref":"booking_123","appointment_time":"2026-05-01T10:00:00.000Z"}',
        {"reason_code": "restored", "balance_after": 10},
    ),
]


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    log: Path

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def async_client(self, **kwargs: object) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kotally_command() -> list[str]:
    script = Path(sys.executable).parent / "kotally"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from kotally.cli import main; main()"]


def wait_until_serving(server: LiveServer, workers: int = WORKERS) -> None:
    """/healthz answers and every worker has logged its startup (polling, not timing)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"kotally serve exited early:\n{server.log.read_text()[-4000:]}")
        started = server.log.read_text().count("Application startup complete")
        try:
            healthy = httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            healthy = False
        if healthy and started >= workers:
            return
        time.sleep(0.1)
    pytest.fail(f"kotally serve did not start:\n{server.log.read_text()[-4000:]}")


@pytest.fixture
def live_token(db: Database, clock: FrozenClock) -> str:
    # The server runs on the real clock, past 2026-05-01: no cancellation window on loc_1.
    make_location(db, clock)
    make_config(db, clock, calendars=["cal_1"])
    return make_client(db, clock, name="live").token


@contextmanager
def running_server(
    database_url: str, token: str, tmp_path: Path, workers: int = WORKERS
) -> Iterator[LiveServer]:
    """`kotally serve` on a free port of this database, up until the block ends (SIGTERM)."""
    port = free_port()
    env = {
        **os.environ,
        "KOTALLY_DATABASE_URL": database_url,
        "KOTALLY_SECRET_KEY": TEST_SECRET,
        "KOTALLY_RATE_LIMIT_PER_SECOND": "0",
        "KOTALLY_EXPIRE_SWEEP_INTERVAL_SECONDS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*kotally_command(), "serve", "--workers", str(workers), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can end all of it
        )
    live = LiveServer(process, f"http://127.0.0.1:{port}", token, log)
    try:
        wait_until_serving(live, workers)
        yield live
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def server(database_url: str, live_token: str, tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(database_url, live_token, tmp_path) as live:
        yield live


def test_published_examples_on_a_live_server(server: LiveServer) -> None:
    with server.client() as http:
        for path, content, expected in EXAMPLES:
            response = http.post(path, content=content, headers=JSON)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["ok"] is True
            assert {key: body[key] for key in expected} == expected
            assert response.headers["x-correlation-id"] == body["correlation_id"]
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "server" not in response.headers
        summary = http.get("/api/v2/contacts/ghl_contact_123/summary?location_id=loc_1")
        assert summary.status_code == 200
        assert summary.json()["reason_code"] == "summary_loaded"
        assert summary.json()["summary"]["credits_available"] == 10
        replay = http.post(EXAMPLES[2][0], content=EXAMPLES[2][1], headers=JSON)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["balance_after"] == 9
        unauthorized = http.post(
            EXAMPLES[1][0], content=EXAMPLES[1][1], headers={**JSON, "Authorization": "Bearer nope"}
        )
        assert unauthorized.status_code == 401


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_concurrent_deducts_across_workers(server: LiveServer, db: Database) -> None:
    # One connection per request, so that both worker processes take their share.
    limits = httpx.Limits(max_connections=60, max_keepalive_connections=0)
    async with server.async_client(limits=limits) as http:
        grant = await http.post(
            "/api/v2/grants",
            json={
                "location_id": "loc_1",
                "request_id": "live-grant",
                "external_payment_id": "live-payment",
                "external_contact_id": "live_contact",
                "product_config_id": "pc_package_1",
            },
        )
        assert grant.json()["balance_after"] == 10

        async def deduct(i: int) -> httpx.Response:
            return await http.post(
                "/api/v2/entitlements/deduct",
                json={
                    "location_id": "loc_1",
                    "request_id": f"live-deduct-{i}",
                    "external_contact_id": "live_contact",
                    "product_config_id": "pc_package_1",
                },
            )

        responses = await asyncio.gather(*(deduct(i) for i in range(50)))
        assert [r.status_code for r in responses] == [200] * 50
        codes = [r.json()["reason_code"] for r in responses]
        assert codes.count("deducted") == 10
        assert codes.count("INSUFFICIENT_CREDITS") == 40
        balances = sorted(r.json()["balance_after"] for r in responses if r.json()["ok"])
        assert balances == list(range(10))  # each credit spent exactly once
        check = await http.post(
            "/api/v2/entitlements/check-eligibility",
            json={
                "location_id": "loc_1",
                "external_contact_id": "live_contact",
                "product_config_id": "pc_package_1",
            },
        )
        assert check.json()["reason_code"] == "INSUFFICIENT_CREDITS"
        assert check.json()["balance_available"] == 0
    with db.unit_of_work(write=False) as session:
        assert verify(session) == []


def test_sigterm_exits_cleanly(server: LiveServer) -> None:
    with server.client() as http:
        assert http.get("/readyz").status_code == 200
    server.process.send_signal(signal.SIGTERM)
    returncode = server.process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 5)
    assert returncode == 0, server.log.read_text()[-4000:]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base_url}/healthz", timeout=1)
