"""Operator actions on product configs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from kotally.configs import repository
from kotally.db.models import ProductConfig, ProductConfigLink
from kotally.db.models.product_config import LINK_KINDS
from kotally.errors import OperatorError
from kotally.kit.clock import Clock
from kotally.kit.ids import new_id
from kotally.locations import service as locations

CONFIG_TYPES = ("package", "membership")
CREDITS_MAX = 1_000_000


def _check_numbers(credits: int | None, expiry_days: int | None) -> None:
    if credits is not None and not 0 < credits <= CREDITS_MAX:
        raise OperatorError(f"credits must be a whole number from 1 to {CREDITS_MAX}")
    if expiry_days is not None and expiry_days <= 0:
        raise OperatorError("expiry days must be a whole number >= 1")


def _set_links(config: ProductConfig, kind: str, values: Sequence[str]) -> None:
    assert kind in LINK_KINDS
    for value in values:
        if not value.strip() or len(value) > 255:
            raise OperatorError(f"{kind} ids must be 1-255 characters")
    # Links that stay are kept as they are: deleting and re-adding the same (kind, value) would
    # insert before the delete is flushed and break the UNIQUE constraint.
    wanted = dict.fromkeys(values)
    kept = [link for link in config.links if link.kind != kind or link.value in wanted]
    present = {link.value for link in kept if link.kind == kind}
    config.links = kept + [
        ProductConfigLink(id=new_id(), location_id=config.location_id, kind=kind, value=value)
        for value in wanted
        if value not in present
    ]


def create(
    session: Session,
    clock: Clock,
    *,
    location_id: str,
    config_id: str,
    name: str,
    type_: str,
    credits: int,
    expiry_days: int | None = None,
    calendars: Sequence[str] = (),
    ghl_products: Sequence[str] = (),
    stripe_prices: Sequence[str] = (),
) -> ProductConfig:
    locations.get(session, location_id)
    if not config_id.strip() or len(config_id) > 255:
        raise OperatorError("product config id must be 1-255 characters")
    if type_ not in CONFIG_TYPES:
        raise OperatorError("type must be package or membership")
    if not name.strip():
        raise OperatorError("name must not be empty")
    _check_numbers(credits, expiry_days)
    if repository.get(session, location_id, config_id) is not None:
        raise OperatorError(f"product config {config_id!r} already exists in {location_id!r}")
    now = clock.now()
    config = ProductConfig(
        id=new_id(),
        location_id=location_id,
        config_id=config_id,
        name=name,
        type=type_,
        credits=credits,
        expiry_days=expiry_days,
        active=True,
        created_at=now,
        updated_at=now,
        links=[],
    )
    _set_links(config, "calendar", calendars)
    _set_links(config, "ghl_product", ghl_products)
    _set_links(config, "stripe_price", stripe_prices)
    session.add(config)
    return config


def update(
    session: Session,
    clock: Clock,
    *,
    location_id: str,
    config_id: str,
    name: str | None = None,
    type_: str | None = None,
    credits: int | None = None,
    expiry_days: int | None = None,
    clear_expiry: bool = False,
    calendars: Sequence[str] | None = None,
    ghl_products: Sequence[str] | None = None,
    stripe_prices: Sequence[str] | None = None,
    active: bool | None = None,
) -> ProductConfig:
    """Change a config; lots already granted keep their credits and expiry."""
    config = get(session, location_id, config_id)
    if type_ is not None and type_ not in CONFIG_TYPES:
        raise OperatorError("type must be package or membership")
    _check_numbers(credits, expiry_days)
    if name is not None:
        if not name.strip():
            raise OperatorError("name must not be empty")
        config.name = name
    if type_ is not None:
        config.type = type_
    if credits is not None:
        config.credits = credits
    if expiry_days is not None:
        config.expiry_days = expiry_days
    if clear_expiry:
        config.expiry_days = None
    for kind, values in (
        ("calendar", calendars),
        ("ghl_product", ghl_products),
        ("stripe_price", stripe_prices),
    ):
        if values is not None:
            _set_links(config, kind, values)
    if active is not None:
        config.active = active
    config.updated_at = clock.now()
    return config


def get(session: Session, location_id: str, config_id: str) -> ProductConfig:
    locations.get(session, location_id)
    config = repository.get(session, location_id, config_id)
    if config is None:
        raise OperatorError(f"no product config {config_id!r} in {location_id!r}")
    return config


def list_all(session: Session, location_id: str) -> Sequence[ProductConfig]:
    locations.get(session, location_id)
    return repository.list_all(session, location_id)
