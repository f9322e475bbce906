"""Small factories: a location, a product config, and a way to run one ledger operation."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from kotally.configs import service as configs
from kotally.db.engine import Database
from kotally.db.models import Location
from kotally.idempotency.service import Reply
from kotally.kit.clock import Clock
from kotally.ledger import grants, restore, service
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import CheckRequest, DeductRequest, GrantRequest, RestoreRequest
from kotally.locations import service as locations

R = TypeVar("R", bound=BaseModel)


def make_location(db: Database, clock: Clock, location_id: str = "loc_1", **kw: Any) -> None:
    with db.unit_of_work() as session:
        locations.create(session, clock, location_id=location_id, name=f"Studio {location_id}", **kw)


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
            session, clock, location_id=location_id, config_id=config_id, name=config_id,
            type_=type_, credits=credits, **kw,
        )


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


class Ledger:
    """Ledger operations with the published examples' defaults, returning response bodies."""

    def __init__(self, db: Database, clock: Clock, location_id: str = "loc_1") -> None:
        self.db, self.clock, self.location_id = db, clock, location_id

    def _body(self, operation: Any, model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
        data = {"location_id": self.location_id, **fields}
        return run(self.db, self.clock, operation, model.model_validate(data)).body

    def grant(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("request_id", f"grant-{uuid.uuid4()}")
        fields.setdefault("external_payment_id", f"pay-{uuid.uuid4()}")
        fields.setdefault("ghl_contact_id", "ghl_contact_123")
        fields.setdefault("product_config_id", "pc_package_1")
        return self._body(grants.grant, GrantRequest, fields)

    def check(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("ghl_contact_id", "ghl_contact_123")
        fields.setdefault("product_config_id", "pc_package_1")
        return self._body(service.check, CheckRequest, fields)

    def deduct(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("request_id", f"deduct-{uuid.uuid4()}")
        fields.setdefault("ghl_contact_id", "ghl_contact_123")
        fields.setdefault("product_config_id", "pc_package_1")
        return self._body(service.deduct, DeductRequest, fields)

    def restore(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("request_id", f"restore-{uuid.uuid4()}")
        fields.setdefault("ghl_contact_id", "ghl_contact_123")
        fields.setdefault("product_config_id", "pc_package_1")
        return self._body(restore.restore, RestoreRequest, fields)
