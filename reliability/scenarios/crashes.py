"""3. Crashes: kill -9 every server process at random moments under grant/deduct/restore load.

A journal keeps every request answered 200 ok:true. After each restart `kotally verify` must be
clean, each journalled request must be in the ledger with its stored answer, and sending it again
must replay that answer. Requests the kill cut off are sent again: each takes effect at most once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from reliability.harness import Environment, Server
from reliability.load import (
    DEDUCT,
    GRANT,
    RESTORE,
    Answer,
    Driver,
    Figures,
    grant_body,
    selection_body,
)
from reliability.runner import kill_cycles, standard

KILLS = 10
CONTACTS = 40
CONCURRENCY = 24
REQUESTS_PER_CYCLE_MAX = 3_000
KILL_AFTER_SECONDS = (0.3, 2.5)


@dataclass
class Sent:
    request_id: str
    path: str
    body: dict[str, Any]
    answer: Answer | None = None


class Load:
    """Grant/deduct/restore traffic until stopped; every request is kept for the checks."""

    def __init__(self, driver: Driver, contacts: list[str], cycle: int) -> None:
        self.driver, self.contacts, self.cycle = driver, contacts, cycle
        self.sent: list[Sent] = []
        self.booked: list[tuple[str, str]] = []  # (contact, external_ref) of acked deducts
        self.stop = asyncio.Event()

    def _next(self) -> Sent:
        n = len(self.sent)
        rid = f"cr-{self.cycle}-{n}"
        contact = random.choice(self.contacts)
        roll = random.random()
        if roll < 0.2:
            return Sent(rid, GRANT, grant_body(contact, rid))
        if roll < 0.75 or not self.booked:
            return Sent(rid, DEDUCT, selection_body(contact, rid, external_ref=f"bk-{rid}"))
        contact, ref = random.choice(self.booked)
        return Sent(rid, RESTORE, selection_body(contact, rid, external_ref=ref))

    async def worker(self) -> None:
        while not self.stop.is_set() and len(self.sent) < REQUESTS_PER_CYCLE_MAX:
            sent = self._next()
            self.sent.append(sent)
            sent.answer = await self.driver.post(sent.path, sent.body)
            if sent.answer.status == 0:
                return  # the server is gone
            if sent.path == DEDUCT and sent.answer.ok:
                self.booked.append((sent.body["external_contact_id"], sent.body["external_ref"]))

    async def run(self) -> None:
        await asyncio.gather(*(self.worker() for _ in range(CONCURRENCY)))


def _check_answers(load: Load, figures: Figures) -> None:
    for sent in load.sent:
        answer = sent.answer
        if answer is None or answer.status == 0:
            figures.expected_errors += 1  # cut off by the kill
        elif answer.status != 200:
            figures.fail(f"{sent.request_id}: HTTP {answer.status} {answer.reason}")


async def _check_after_restart(
    load: Load, driver: Driver, environment: Environment, figures: Figures
) -> None:
    acked = [s for s in load.sent if s.answer is not None and s.answer.ok]
    cut_off = [s for s in load.sent if s.answer is None or s.answer.status == 0]
    stored = {
        rid: (state, response)
        for rid, state, response in environment.db.query(
            "SELECT request_id, state, response FROM idempotency_records WHERE request_id LIKE :p",
            p=f"cr-{load.cycle}-%",
        )
    }
    effects = dict(
        environment.db.query(
            "SELECT request_id, COUNT(*) FROM ledger_entries WHERE request_id LIKE :p "
            "GROUP BY request_id",
            p=f"cr-{load.cycle}-%",
        )
    )
    for sent in acked:
        assert sent.answer is not None
        state, response = stored.get(sent.request_id, (None, None))
        if isinstance(response, str):
            import json

            response = json.loads(response)
        if state != "completed" or response != sent.answer.body:
            figures.violate(f"acknowledged {sent.request_id} is not stored as answered")
        if effects.get(sent.request_id, 0) != 1:
            figures.violate(
                f"acknowledged {sent.request_id} has {effects.get(sent.request_id, 0)} entries"
            )
    replays = await asyncio.gather(*(driver.post(s.path, s.body) for s in acked))
    for sent, replay in zip(acked, replays, strict=True):
        assert sent.answer is not None
        if (
            replay.body != sent.answer.body
            or replay.headers is None
            or (replay.headers.get("idempotent-replayed") != "true")
        ):
            figures.violate(f"{sent.request_id}: the replay after restart differs")
    retried = await asyncio.gather(*(driver.post(s.path, s.body) for s in cut_off))
    for sent, answer in zip(cut_off, retried, strict=True):
        if answer.status != 200:
            figures.fail(
                f"retry of cut-off {sent.request_id}: HTTP {answer.status} {answer.reason}"
            )
    effects = dict(
        environment.db.query(
            "SELECT request_id, COUNT(*) FROM ledger_entries WHERE request_id LIKE :p "
            "GROUP BY request_id",
            p=f"cr-{load.cycle}-%",
        )
    )
    for sent, answer in zip(cut_off, retried, strict=True):
        expected = 1 if answer.ok else 0
        if effects.get(sent.request_id, 0) != expected:
            figures.violate(
                f"cut-off {sent.request_id} ({answer.reason}) has "
                f"{effects.get(sent.request_id, 0)} entries, expected {expected}"
            )


async def attack(server: Server, environment: Environment, figures: Figures) -> None:
    token = environment.clients["load"].token
    contacts = [f"cr-c{i}" for i in range(CONTACTS)]

    def driver() -> Driver:
        return Driver(server.base_url, token, figures, CONCURRENCY)

    async with driver() as seeding:
        await asyncio.gather(*(seeding.post(GRANT, grant_body(c)) for c in contacts))

    async def check(load: Load, checking: Driver) -> None:
        await _check_after_restart(load, checking, environment, figures)

    await kill_cycles(
        server,
        environment,
        figures,
        kills=KILLS,
        kill_after=KILL_AFTER_SECONDS,
        driver=driver,
        load=lambda sending, cycle: Load(sending, contacts, cycle),
        check=check,
        before_restart=lambda load: _check_answers(load, figures),
    )


async def run(kind: str) -> Figures:
    return await standard("crashes", kind, attack)
