"""1. Double spend: 2,000 concurrent deducts over 50 contacts whose balances allow exactly 1,000."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict

from reliability.harness import Environment, Server
from reliability.load import DEDUCT, GRANT, Driver, Figures, grant_body, selection_body

CONTACTS = 50
CREDITS_PER_CONTACT = 20  # pc_20: 50 x 20 = 1,000 credits
DEDUCTS = 2_000
CONCURRENCY = 64


async def attack(server: Server, environment: Environment, figures: Figures) -> None:
    token = environment.clients["load"].token
    contacts = [f"ds-{i}" for i in range(CONTACTS)]
    async with Driver(server.base_url, token, figures, CONCURRENCY, resend_cut_offs=True) as driver:
        grants = await asyncio.gather(*(driver.post(GRANT, grant_body(c)) for c in contacts))
        if any(g.reason != "grant_applied" for g in grants):
            figures.fail("seeding grants did not all apply")
            return
        plan = [contacts[i % CONTACTS] for i in range(DEDUCTS)]
        random.shuffle(plan)
        answers = await asyncio.gather(
            *(driver.post(DEDUCT, selection_body(c, f"ds-{n}")) for n, c in enumerate(plan))
        )
    reasons = Counter(a.reason for a in answers)
    per_contact: dict[str, list[int]] = defaultdict(list)
    for contact, answer in zip(plan, answers, strict=True):
        if answer.reason == "deducted":
            assert answer.body is not None
            per_contact[contact].append(answer.body["balance_after"])
        elif answer.reason != "INSUFFICIENT_CREDITS":
            figures.fail(f"deduct answered HTTP {answer.status} {answer.reason} {answer.error}")
    if reasons["deducted"] != CONTACTS * CREDITS_PER_CONTACT:
        figures.violate(f"{reasons['deducted']} deducts succeeded, not 1000: {dict(reasons)}")
    for contact in contacts:
        # Each success saw a distinct balance 19, 18, …, 0: no credit was spent twice.
        if sorted(per_contact[contact]) != list(range(CREDITS_PER_CONTACT)):
            figures.violate(f"{contact}: balances after {sorted(per_contact[contact])}")
    remaining = environment.db.query(
        "SELECT COALESCE(SUM(credits_remaining), 0) FROM entitlements"
    )[0][0]
    if remaining != 0:
        figures.violate(f"{remaining} credits left in the database, expected 0")
