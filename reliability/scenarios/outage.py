"""4. Database outage: PostgreSQL stopped and started again under load (PostgreSQL only).

Every answer is 200 (before the stop, after the start) or 503 SERVICE_UNAVAILABLE; never a 500, never
a traceback. Every 200 ok:true is in the ledger. The service recovers without a restart. Requests
answered 503 are sent again afterwards and take effect at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from reliability.harness import Server, make_environment, pg_ctl, wait_for_postgres
from reliability.load import GRANT, Driver, Figures, grant_body
from reliability.runner import check_server_log, check_verify
from reliability.scenarios.crashes import CONTACTS, Load, _check_after_restart

LOAD_BEFORE_SECONDS = 2.0
DOWN_SECONDS = 6.0
RECOVERY_SECONDS_MAX = 60.0
LOAD_AFTER_SECONDS = 3.0
OUTAGES = 2


class OutageLoad(Load):
    """The crash load, but it keeps going through connection errors and 503s."""

    async def worker(self) -> None:
        while not self.stop.is_set() and len(self.sent) < 20_000:
            sent = self._next()
            self.sent.append(sent)
            sent.answer = await self.driver.post(sent.path, sent.body)
            if sent.answer.status == 503:
                await asyncio.sleep(0.05)  # a polite client backs off a little
            if sent.path.endswith("deduct") and sent.answer.ok:
                self.booked.append((sent.body["external_contact_id"], sent.body["external_ref"]))


async def _recovered(driver: Driver, figures: Figures) -> float:
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS_MAX:
        answer = await driver.send("GET", "/readyz")
        if answer.status == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    figures.fail(f"no recovery within {RECOVERY_SECONDS_MAX}s of PostgreSQL coming back")
    return RECOVERY_SECONDS_MAX


def _check_answers(load: Load, figures: Figures) -> None:
    for sent in load.sent:
        answer = sent.answer
        if answer is None:
            continue
        if answer.status == 503 and answer.reason == "SERVICE_UNAVAILABLE":
            figures.expected_errors += 1
        elif answer.status != 200:
            figures.fail(f"{sent.request_id}: HTTP {answer.status} {answer.reason} {answer.error}")


async def run(kind: str) -> Figures:
    figures = Figures("outage", kind)
    if kind != "postgresql":
        figures.notes.append("PostgreSQL only")
        return figures
    started = time.monotonic()
    environment = make_environment(kind)
    server = Server(environment, workers=2)
    token = environment.clients["load"].token
    contacts = [f"cr-c{i}" for i in range(CONTACTS)]
    try:
        server.start()
        async with Driver(server.base_url, token, figures, 16) as driver:
            await asyncio.gather(*(driver.post(GRANT, grant_body(c)) for c in contacts))
        for cycle in range(OUTAGES):
            async with Driver(server.base_url, token, figures, 16) as driver:
                load = OutageLoad(driver, contacts, cycle)
                task = asyncio.create_task(load.run())
                try:
                    await asyncio.sleep(LOAD_BEFORE_SECONDS)
                    await asyncio.to_thread(pg_ctl, "stop")
                    await asyncio.sleep(DOWN_SECONDS)
                    ready = await driver.send("GET", "/readyz")
                    if ready.status != 503:
                        figures.fail(f"/readyz answered {ready.status} with the database down")
                finally:
                    await asyncio.to_thread(pg_ctl, "start")  # always, even on failure
                await asyncio.to_thread(wait_for_postgres)
                seconds = await _recovered(driver, figures)
                await asyncio.sleep(LOAD_AFTER_SECONDS)
                load.stop.set()
                await asyncio.wait_for(task, timeout=120)
                after = [s for s in load.sent[-200:] if s.answer is not None]
                if not any(s.answer.status == 200 for s in after if s.answer):
                    figures.fail("no 200 among the last requests: the service did not recover")
                figures.notes.append(
                    f"outage {cycle + 1}: ready again {seconds:.1f}s after PostgreSQL was back"
                )
            _check_answers(load, figures)
            check_verify(environment, figures, f"after outage {cycle + 1}")
            # Requests answered 503 count as cut off: _check_after_restart retries them.
            for sent in load.sent:
                if sent.answer is not None and sent.answer.status == 503:
                    sent.answer = None
            async with Driver(server.base_url, token, figures, 16) as driver:
                await _check_after_restart(load, driver, environment, figures)
        check_verify(environment, figures, "at the end")
    finally:
        with contextlib.suppress(Exception):  # it fails when PostgreSQL is already running
            pg_ctl("start")
        wait_for_postgres()
        server.stop()
        check_server_log(server, environment, figures)
        environment.close()
        figures.seconds = time.monotonic() - started
    return figures
