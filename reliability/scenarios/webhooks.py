"""8. Webhooks under kill -9: signed GHL bookings and orders while every server process dies.

The server runs with the scenario's own Ed25519 key. Each delivery has its own `webhookId`;
every one answered 200 must be in the inbox afterwards with the status it was answered with, and
its effect must be in the ledger exactly once. Deliveries the kill cut off are sent again (as GHL
retries): each is then stored once and takes effect at most once. `kotally verify` stays clean.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from reliability.harness import LOCATION, Environment, Server
from reliability.load import Answer, Driver, Figures
from reliability.runner import kill_cycles, standard

KILLS = 3
CONTACTS = 20
CONCURRENCY = 16
DELIVERIES_PER_CYCLE_MAX = 1_500
KILL_AFTER_SECONDS = (0.5, 2.5)
PATH = "/webhooks/ghl"
START = "2030-01-01T10:00:00+00:00"  # far ahead: every cancellation is inside the window


@dataclass
class Delivery:
    payload: dict[str, Any]
    effect: str | None  # the request_id of its ledger effect, if it has one
    answer: Answer | None = None

    @property
    def webhook_id(self) -> str:
        return str(self.payload["webhookId"])


class Signer:
    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.public_pem = (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    async def send(self, driver: Driver, payload: dict[str, Any]) -> Answer:
        raw = json.dumps(payload).encode()
        signature = base64.b64encode(self.key.sign(raw)).decode()
        headers = {"Content-Type": "application/json", "X-GHL-Signature": signature}
        return await driver.send("POST", PATH, content=raw, headers=headers)


def _order(contact: str) -> Delivery:
    order_id = f"ord-{uuid.uuid4()}"
    return Delivery(
        {
            "type": "OrderStatusUpdate",
            "webhookId": str(uuid.uuid4()),
            "locationId": LOCATION,
            "_id": order_id,
            "contactId": contact,
            "status": "completed",
            "currency": "EUR",
            "amount": 20,
            "items": [{"qty": 1, "product": {"_id": "prod_20"}, "price": {"amount": 20}}],
        },
        f"ghl:order:{order_id}:item:0:unit:1:OrderStatusUpdate",
    )


def _appointment(appt_id: str, contact: str, status: str, minute: int) -> dict[str, Any]:
    return {
        "type": "AppointmentCreate" if status == "confirmed" else "AppointmentUpdate",
        "webhookId": str(uuid.uuid4()),
        "locationId": LOCATION,
        "appointment": {
            "id": appt_id,
            "calendarId": "cal_1",
            "contactId": contact,
            "appointmentStatus": status,
            "startTime": START,
            "dateUpdated": f"2026-01-01T00:{minute // 60:02d}:{minute % 60:02d}.000Z",
        },
    }


class Load:
    def __init__(self, driver: Driver, signer: Signer, contacts: list[str], cycle: int) -> None:
        self.driver, self.signer, self.contacts, self.cycle = driver, signer, contacts, cycle
        self.sent: list[Delivery] = []
        self.booked: list[tuple[str, str]] = []
        self.stop = asyncio.Event()

    def _next(self) -> Delivery:
        contact = random.choice(self.contacts)
        roll = random.random()
        if roll < 0.15:
            return _order(contact)
        if roll < 0.7 or not self.booked:
            appt_id = f"appt-{self.cycle}-{len(self.sent)}"
            return Delivery(
                _appointment(appt_id, contact, "confirmed", 1), f"ghl:appt:{appt_id}:deduct:1"
            )
        contact, appt_id = self.booked.pop(random.randrange(len(self.booked)))
        return Delivery(
            _appointment(appt_id, contact, "cancelled", 2), f"ghl:appt:{appt_id}:restore:1"
        )

    async def worker(self) -> None:
        while not self.stop.is_set() and len(self.sent) < DELIVERIES_PER_CYCLE_MAX:
            delivery = self._next()
            self.sent.append(delivery)
            delivery.answer = await self.signer.send(self.driver, delivery.payload)
            if delivery.answer.status == 0:
                return  # the server is gone
            body = delivery.answer.body or {}
            if body.get("outcome") == "deducted":
                appt = delivery.payload["appointment"]
                self.booked.append((appt["contactId"], appt["id"]))

    async def run(self) -> None:
        await asyncio.gather(*(self.worker() for _ in range(CONCURRENCY)))


def _inbox(environment: Environment) -> dict[str, str]:
    return dict(environment.db.query("SELECT provider_event_id, status FROM webhook_events"))


def _effects(environment: Environment) -> dict[str, int]:
    return dict(
        environment.db.query(
            "SELECT request_id, COUNT(*) FROM ledger_entries WHERE request_id LIKE 'ghl:%' "
            "GROUP BY request_id"
        )
    )


APPLIED = ("deducted", "restored", "grant_applied")


async def _check(load: Load, driver: Driver, environment: Environment, figures: Figures) -> None:
    acked = [d for d in load.sent if d.answer is not None and d.answer.status == 200]
    cut_off = [d for d in load.sent if d.answer is None or d.answer.status == 0]
    other = [d for d in load.sent if d not in acked and d not in cut_off]
    for delivery in other:
        assert delivery.answer is not None
        figures.fail(f"{delivery.webhook_id}: HTTP {delivery.answer.status}")
    figures.expected_errors += len(cut_off)
    inbox, effects = _inbox(environment), _effects(environment)
    for delivery in acked:
        assert delivery.answer is not None
        assert delivery.answer.body is not None
        body = delivery.answer.body
        if inbox.get(delivery.webhook_id) != body.get("status"):
            figures.violate(f"answered {delivery.webhook_id} is not in the inbox as answered")
        if body.get("outcome") in APPLIED and effects.get(delivery.effect or "", 0) != 1:
            figures.violate(f"answered {delivery.webhook_id} has no single effect")
    resent = await asyncio.gather(*(load.signer.send(driver, d.payload) for d in acked))
    for delivery, answer in zip(acked, resent, strict=True):
        if answer.reason != "event_duplicate":
            figures.violate(f"{delivery.webhook_id} re-sent is {answer.reason}, not a duplicate")
    retried = await asyncio.gather(*(load.signer.send(driver, d.payload) for d in cut_off))
    for delivery, answer in zip(cut_off, retried, strict=True):
        if answer.status != 200:
            figures.fail(f"retry of {delivery.webhook_id}: HTTP {answer.status} {answer.reason}")
    effects = _effects(environment)
    for delivery in load.sent:
        if delivery.effect is not None and effects.get(delivery.effect, 0) > 1:
            figures.violate(f"{delivery.effect} applied {effects[delivery.effect]} times")


async def run(kind: str) -> Figures:
    signer = Signer()

    async def attack(server: Server, environment: Environment, figures: Figures) -> None:
        environment.cli(
            "config", "update", "pc_20", "--location", LOCATION, "--ghl-product", "prod_20"
        )
        token = environment.clients["load"].token
        contacts = [f"ghl-c{i}" for i in range(CONTACTS)]

        def driver() -> Driver:
            return Driver(server.base_url, token, figures, CONCURRENCY)

        async with driver() as seeding:
            for answer in await asyncio.gather(
                *(signer.send(seeding, _order(c).payload) for c in contacts)
            ):
                if answer.reason != "event_processed":
                    figures.fail(f"seed order: HTTP {answer.status} {answer.reason}")

        async def check(load: Load, checking: Driver) -> None:
            await _check(load, checking, environment, figures)

        await kill_cycles(
            server,
            environment,
            figures,
            kills=KILLS,
            kill_after=KILL_AFTER_SECONDS,
            driver=driver,
            load=lambda sending, cycle: Load(sending, signer, contacts, cycle),
            check=check,
        )

    return await standard(
        "webhooks", kind, attack, ghl_webhook_ed25519_public_key=signer.public_pem
    )
