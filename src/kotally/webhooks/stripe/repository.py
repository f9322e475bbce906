"""Every query of the Stripe half: grant links, invoice payments, disputes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.db.models import (
    Base,
    Entitlement,
    StripeDispute,
    StripeGrantLink,
    StripeInvoicePayment,
)
from kotally.db.scoping import scoped
from kotally.kit.ids import new_id


def _insert(session: Session, model: type[Base]) -> PgInsert | SqliteInsert:
    dialect = session.get_bind().dialect.name
    return pg_insert(model) if dialect == "postgresql" else sqlite_insert(model)


def link_grant(
    session: Session,
    location_id: str,
    grant_id: uuid.UUID,
    *,
    payment_intent_id: str | None,
    invoice_id: str | None,
    checkout_session_id: str | None,
    subscription_id: str | None,
    now: datetime,
) -> None:
    """Record the Stripe ids of a grant; a second purchase event of it fills in what is new."""
    ids = {
        "payment_intent_id": payment_intent_id,
        "invoice_id": invoice_id,
        "checkout_session_id": checkout_session_id,
        "subscription_id": subscription_id,
    }
    session.execute(
        _insert(session, StripeGrantLink)
        .values(id=new_id(), location_id=location_id, grant_id=grant_id, created_at=now, **ids)
        .on_conflict_do_nothing(index_elements=["grant_id"])
    )
    link = session.execute(
        scoped(select(StripeGrantLink), StripeGrantLink, location_id).where(
            StripeGrantLink.grant_id == grant_id
        )
    ).scalar_one()
    for name, value in ids.items():
        if value is not None and getattr(link, name) is None:
            setattr(link, name, value)


def link_invoice_payment(
    session: Session, location_id: str, invoice_id: str, payment_intent_id: str, now: datetime
) -> bool:
    """Record that a payment intent paid an invoice; False when it was known already."""
    stmt = (
        _insert(session, StripeInvoicePayment)
        .values(
            id=new_id(),
            location_id=location_id,
            invoice_id=invoice_id,
            payment_intent_id=payment_intent_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["location_id", "invoice_id", "payment_intent_id"])
        .returning(StripeInvoicePayment.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def lots_of_payment(
    session: Session, location_id: str, *, payment_intent_id: str | None, invoice_id: str | None
) -> list[uuid.UUID]:
    """The lots granted for a payment intent or an invoice, directly or through the invoice
    payments that link the two."""
    conditions = []
    if payment_intent_id is not None:
        paid_invoices = scoped(
            select(StripeInvoicePayment.invoice_id), StripeInvoicePayment, location_id
        ).where(StripeInvoicePayment.payment_intent_id == payment_intent_id)
        conditions += [
            StripeGrantLink.payment_intent_id == payment_intent_id,
            StripeGrantLink.invoice_id.in_(paid_invoices.scalar_subquery()),
        ]
    if invoice_id is not None:
        conditions.append(StripeGrantLink.invoice_id == invoice_id)
    if not conditions:
        return []
    grants = scoped(select(StripeGrantLink.grant_id), StripeGrantLink, location_id).where(
        or_(*conditions)
    )
    stmt = (
        scoped(select(Entitlement.id), Entitlement, location_id)
        .where(Entitlement.grant_id.in_(grants.scalar_subquery()))
        .order_by(Entitlement.created_at, Entitlement.id)
    )
    return list(session.execute(stmt).scalars())


def dispute(
    session: Session,
    location_id: str,
    dispute_id: str,
    *,
    charge_id: str | None,
    payment_intent_id: str | None,
    now: datetime,
) -> StripeDispute:
    """The dispute's row, created `open` when new, locked for the rest of the transaction."""
    session.execute(
        _insert(session, StripeDispute)
        .values(
            id=new_id(),
            location_id=location_id,
            dispute_id=dispute_id,
            charge_id=charge_id,
            payment_intent_id=payment_intent_id,
            state="open",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["location_id", "dispute_id"])
    )
    stmt = (
        scoped(select(StripeDispute), StripeDispute, location_id)
        .where(StripeDispute.dispute_id == dispute_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one()
