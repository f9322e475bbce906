"""Product config queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from kotally.db.models import ProductConfig, ProductConfigLink
from kotally.db.scoping import scoped

# Built once (the check and deduct paths run it on every request).
_GET = scoped(select(ProductConfig), ProductConfig, bindparam("location_id")).where(
    ProductConfig.config_id == bindparam("config_id")
)


def get(session: Session, location_id: str, config_id: str) -> ProductConfig | None:
    params = {"location_id": location_id, "config_id": config_id}
    return session.execute(_GET, params).scalar_one_or_none()


def get_active(session: Session, location_id: str, config_id: str) -> ProductConfig | None:
    config = get(session, location_id, config_id)
    return config if config is not None and config.active else None


# Built once too: check and deduct by calendar_id run it on every request.
_FOR_LINK = (
    scoped(select(ProductConfig), ProductConfig, bindparam("location_id"))
    .join(ProductConfigLink, ProductConfigLink.product_config_id == ProductConfig.id)
    .where(
        ProductConfigLink.location_id == bindparam("location_id"),
        ProductConfigLink.kind == bindparam("kind"),
        ProductConfigLink.value == bindparam("value"),
        ProductConfig.active.is_(True),
    )
    .order_by(ProductConfig.config_id)
)


def active_for_link(
    session: Session, location_id: str, kind: str, value: str
) -> Sequence[ProductConfig]:
    """Active configs linked to a calendar, GHL product or Stripe price."""
    params = {"location_id": location_id, "kind": kind, "value": value}
    return session.execute(_FOR_LINK, params).scalars().unique().all()


# The selection of check, deduct and restore needs the configs' ids alone: no objects loaded.
# Bound: location_id, config_id (the check reads it as a subquery of its one statement too).
ACTIVE_ID = scoped(select(ProductConfig.id), ProductConfig, bindparam("location_id")).where(
    ProductConfig.config_id == bindparam("config_id"),
    ProductConfig.active.is_(True),
)
_ACTIVE_IDS_FOR_LINK = _FOR_LINK.with_only_columns(ProductConfig.id)
_LINKED = scoped(
    select(ProductConfigLink.value), ProductConfigLink, bindparam("location_id")
).where(
    ProductConfigLink.product_config_id == bindparam("config"),
    ProductConfigLink.kind == bindparam("kind"),
)


def active_id(session: Session, location_id: str, config_id: str) -> uuid.UUID | None:
    """The id of the active config `config_id` (get_active's config, by id)."""
    params = {"location_id": location_id, "config_id": config_id}
    found: uuid.UUID | None = session.connection().execute(ACTIVE_ID, params).scalar()
    return found


def active_ids_for_link(
    session: Session, location_id: str, kind: str, value: str
) -> list[uuid.UUID]:
    """The ids of active_for_link's configs, in its order."""
    params = {"location_id": location_id, "kind": kind, "value": value}
    return list(dict.fromkeys(session.connection().execute(_ACTIVE_IDS_FOR_LINK, params).scalars()))


def linked(session: Session, location_id: str, config: uuid.UUID, kind: str) -> list[str]:
    """ProductConfig.linked(kind) for a config by id, sorted."""
    params = {"location_id": location_id, "config": config, "kind": kind}
    return sorted(session.connection().execute(_LINKED, params).scalars())


def list_all(session: Session, location_id: str) -> Sequence[ProductConfig]:
    stmt = scoped(select(ProductConfig), ProductConfig, location_id).order_by(
        ProductConfig.config_id
    )
    return session.execute(stmt).scalars().all()
