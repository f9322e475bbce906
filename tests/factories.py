"""Small factories: a location, a product config, and a way to run one ledger operation."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, select

from kotally.admin import service as admin_users
from kotally.auth import service as clients
from kotally.auth.scopes import SCOPES
from kotally.auth.service import IssuedClient
from kotally.configs import service as configs
from kotally.db.engine import Database
from kotally.db.models import Contact, Entitlement, Location
from kotally.idempotency.service import Reply
from kotally.kit.clock import Clock
from kotally.ledger import grants, restore, service
from kotally.ledger.adjust import AdjustRequest, adjust
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import CheckRequest, DeductRequest, GrantRequest, RestoreRequest
from kotally.locations import service as locations
from tests.conftest import TEST_SECRET

R = TypeVar("R", bound=BaseModel)
M = TypeVar("M")


def make_location(db: Database, clock: Clock, location_id: str = "loc_1", **kw: Any) -> None:
    with db.unit_of_work() as session:
        locations.create(
            session, clock, location_id=location_id, name=f"Studio {location_id}", **kw
        )


def make_client(
    db: Database,
    clock: Clock,
    location_id: str = "loc_1",
    scopes: Iterable[str] = SCOPES,
    *,
    secret_key: str = TEST_SECRET,
    name: str = "test client",
    rate_limit: int | None = None,
) -> IssuedClient:
    """An API client and its raw token, as `kotally client create` issues them."""
    with db.unit_of_work() as session:
        return clients.create(
            session,
            clock,
            secret_key,
            location_id=location_id,
            name=name,
            scopes=scopes,
            rate_limit_per_second=rate_limit,
        )


def make_contact(
    db: Database,
    clock: Clock,
    *,
    ghl_contact_id: str | None = None,
    external_contact_id: str | None = None,
    location_id: str = "loc_1",
) -> uuid.UUID:
    """A contact written directly, as no grant would write it (another contact already holding
    one of its ids, say)."""
    contact_id = uuid.uuid4()
    with db.unit_of_work() as session:
        session.add(
            Contact(
                id=contact_id,
                location_id=location_id,
                ghl_contact_id=ghl_contact_id,
                external_contact_id=external_contact_id,
                created_at=clock.now(),
            )
        )
    return contact_id


def update_location(db: Database, clock: Clock, location_id: str = "loc_1", **kw: Any) -> None:
    with db.unit_of_work() as session:
        locations.update(session, clock, location_id, **kw)


def make_config(
    db: Database,
    clock: Clock,
    config_id: str = "pc_package_1",
    *,
    location_id: str = "loc_1",
    credits: int = 10,
    type_: str = "package",
    **kw: Any,
) -> None:
    with db.unit_of_work() as session:
        configs.create(
            session,
            clock,
            location_id=location_id,
            config_id=config_id,
            name=config_id,
            type_=type_,
            credits=credits,
            **kw,
        )


def update_config(
    db: Database,
    clock: Clock,
    config_id: str = "pc_package_1",
    *,
    location_id: str = "loc_1",
    **kw: Any,
) -> None:
    with db.unit_of_work() as session:
        configs.update(session, clock, location_id=location_id, config_id=config_id, **kw)


def rows(db: Database, model: type[M], *where: ColumnElement[bool]) -> list[M]:
    """Every row of `model` matching `where`, read in a fresh transaction."""
    with db.unit_of_work(write=False) as session:
        return list(session.execute(select(model).where(*where)).scalars())


def lot(db: Database, entitlement_id: str) -> Entitlement:
    with db.unit_of_work(write=False) as session:
        return session.get_one(Entitlement, uuid.UUID(entitlement_id))


def run(
    db: Database,
    clock: Clock,
    operation: Callable[[LedgerContext, R], Reply],
    request: R,
) -> Reply:
    location_id = request.location_id  # type: ignore[attr-defined]
    with db.unit_of_work() as session:
        location = session.get_one(Location, location_id)
        ctx = LedgerContext(session, clock, location, str(uuid.uuid4()), "test")
        return operation(ctx, request)


def adjust_lot(
    db: Database, clock: Clock, grant: dict[str, Any], amount: int, **kw: Any
) -> dict[str, Any]:
    """An operator's adjustment of `amount` on the lot of `grant` (a grant's response body)."""
    fields = {
        "location_id": "loc_1",
        "request_id": f"adjust-{uuid.uuid4()}",
        "contact_id": grant["contact_id"],
        "entitlement_id": grant["entitlement_id"],
        "amount": amount,
        "reason": "correction",
        **kw,
    }
    return run(db, clock, adjust, AdjustRequest.model_validate(fields)).body


OPERATIONS: dict[str, tuple[Any, type[BaseModel], str | None]] = {
    "grant": (grants.grant, GrantRequest, "grant"),
    "check": (service.check, CheckRequest, None),
    "deduct": (service.deduct, DeductRequest, "deduct"),
    "restore": (restore.restore, RestoreRequest, "restore"),
}


class Ledger:
    """Ledger operations with the published examples' defaults, returning response bodies."""

    def __init__(self, db: Database, clock: Clock, location_id: str = "loc_1") -> None:
        self.db, self.clock, self.location_id = db, clock, location_id

    def reply(self, op: str, /, **fields: Any) -> Reply:
        """Run one operation ("grant", "check", "deduct", "restore") and return its Reply."""
        operation, model, key_prefix = OPERATIONS[op]
        if key_prefix is not None:
            fields.setdefault("request_id", f"{key_prefix}-{uuid.uuid4()}")
        if op == "grant":
            fields.setdefault("external_payment_id", f"pay-{uuid.uuid4()}")
        if "external_contact_id" not in fields:
            fields.setdefault("ghl_contact_id", "ghl_contact_123")
        fields.setdefault("product_config_id", "pc_package_1")
        data = {"location_id": self.location_id, **fields}
        return run(self.db, self.clock, operation, model.model_validate(data))

    def grant(self, **fields: Any) -> dict[str, Any]:
        return self.reply("grant", **fields).body

    def check(self, **fields: Any) -> dict[str, Any]:
        return self.reply("check", **fields).body

    def deduct(self, **fields: Any) -> dict[str, Any]:
        return self.reply("deduct", **fields).body

    def restore(self, **fields: Any) -> dict[str, Any]:
        return self.reply("restore", **fields).body


def studio(db: Database, clock: Clock) -> Ledger:
    """loc_1 with pc_package_1 (10 credits, calendar cal_1) and pc_other (5 credits, cal_2)."""
    make_location(db, clock)
    make_config(db, clock, calendars=["cal_1"])
    make_config(db, clock, "pc_other", credits=5, calendars=["cal_2"])
    return Ledger(db, clock)


def make_admin_user(
    db: Database, clock: Clock, email: str, role: str = "owner", password: str | None = None
) -> str:
    """An admin UI user; returns the password (a generated one unless given)."""
    password = password or f"pw-{uuid.uuid4().hex}"
    with db.unit_of_work() as session:
        admin_users.create(session, clock, email=email, role=role, password=password, actor="test")
    return password
