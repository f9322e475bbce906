"""2. Retries: 500 request_ids, each sent 3-5 times concurrently and out of order."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
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

CONTACTS = 50
IDS = 500
CONCURRENCY = 64


def _plan(contacts: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(request_id, path, body): 100 grants, 300 deducts, 100 restores."""
    plan = []
    for n in range(IDS):
        rid = f"rt-{n}"
        contact = random.choice(contacts)
        if n < 100:
            plan.append((rid, GRANT, grant_body(contact, rid)))
        elif n < 400:
            plan.append((rid, DEDUCT, selection_body(contact, rid, external_ref=f"bk-{n}")))
        else:
            plan.append((rid, RESTORE, selection_body(contact, rid)))
    return plan


async def attack(server: Server, environment: Environment, figures: Figures) -> None:
    token = environment.clients["load"].token
    contacts = [f"rt-c{i}" for i in range(CONTACTS)]
    plan = _plan(contacts)
    sends = [(rid, path, body) for rid, path, body in plan for _ in range(random.randint(3, 5))]
    random.shuffle(sends)
    async with Driver(server.base_url, token, figures, CONCURRENCY, resend_cut_offs=True) as driver:
        await asyncio.gather(*(driver.post(GRANT, grant_body(c)) for c in contacts))
        answers = await asyncio.gather(*(driver.post(path, body) for _, path, body in sends))
    by_id: dict[str, list[Answer]] = defaultdict(list)
    for (rid, _, _), answer in zip(sends, answers, strict=True):
        by_id[rid].append(answer)
    effects = dict(
        environment.db.query(
            "SELECT request_id, COUNT(*) FROM ledger_entries WHERE request_id LIKE 'rt-%' "
            "GROUP BY request_id"
        )
    )
    for rid, replies in by_id.items():
        first = replies[0]
        if first.status != 200:
            figures.fail(f"{rid}: HTTP {first.status} {first.reason} {first.error}")
        if any((a.status, a.body) != (first.status, first.body) for a in replies):
            seen = sorted({(a.status, str(a.reason)) for a in replies})
            figures.violate(f"{rid}: different answers for one request_id: {seen}")
        fresh = [
            a for a in replies if a.headers is not None and "idempotent-replayed" not in a.headers
        ]
        # A resent request whose first send applied unseen gets only replays.
        if len(fresh) != 1 and not (not fresh and any(a.resent for a in replies)):
            figures.violate(f"{rid}: {len(fresh)} answers were not replays, expected 1")
        expected = 1 if first.ok else 0
        if effects.get(rid, 0) != expected:
            figures.violate(f"{rid}: {effects.get(rid, 0)} ledger entries, expected {expected}")
