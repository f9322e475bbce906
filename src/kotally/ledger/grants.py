"""Grants: one confirmed payment, one new lot (ledger.md §Grants)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kotally.configs import repository as configs
from kotally.contacts import repository as contacts
from kotally.db.models import Contact, Entitlement, Grant
from kotally.idempotency.service import Reply, run_once
from kotally.kit.ids import new_id
from kotally.ledger import repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.lots import move
from kotally.ledger.outcomes import Outcome, Refusal, success
from kotally.ledger.schemas import GrantRequest
from kotally.ledger.selection import refuse_if_suspended


def grant(ctx: LedgerContext, req: GrantRequest) -> Reply:
    return run_once(
        ctx.session,
        ctx.clock,
        location_id=ctx.location.id,
        request_id=req.request_id,
        endpoint="grants",
        payload=req.payload(),
        correlation_id=ctx.correlation_id,
        operation=lambda: _grant(ctx, req),
    )


def _grant(ctx: LedgerContext, req: GrantRequest) -> Outcome:
    refuse_if_suspended(ctx)
    location_id = ctx.location.id
    existing = repository.grant_by_payment(ctx.session, location_id, req.external_payment_id)
    if existing is not None:
        return _already_applied(ctx, existing)
    config = configs.get_active(ctx.session, location_id, req.product_config_id)
    if config is None:
        raise Refusal("CONFIG_NOT_FOUND")

    contact = _contact_for_grant(ctx, req)
    now = ctx.clock.now()
    grant_id = new_id()
    inserted = repository.insert_grant(
        ctx.session,
        {
            "id": grant_id,
            "location_id": location_id,
            "contact_id": contact.id,
            "product_config_id": config.id,
            "external_payment_id": req.external_payment_id,
            "provider": req.provider,
            "event_type": req.event_type,
            "amount_cents": req.amount_cents,
            "currency": req.currency,
            "paid_at": req.paid_at,
            "external_ref": req.external_ref,
            "metadata_": req.metadata,
            "request_id": req.request_id,
            "created_at": now,
        },
    )
    if not inserted:  # a concurrent grant of the same payment committed first
        existing = repository.grant_by_payment(ctx.session, location_id, req.external_payment_id)
        assert existing is not None
        return _already_applied(ctx, existing)

    expires_at = None
    if config.expiry_days is not None:
        expires_at = _expiry(req.paid_at or now, config.expiry_days)
    lot = Entitlement(
        id=new_id(),
        location_id=location_id,
        contact_id=contact.id,
        product_config_id=config.id,
        grant_id=grant_id,
        credits_granted=config.credits,
        credits_remaining=0,
        effective_at=now,
        expires_at=expires_at,
        status="active",
        created_at=now,
    )
    ctx.session.add(lot)
    move(
        ctx, lot, "grant", config.credits, request_id=req.request_id, external_ref=req.external_ref
    )
    return success(
        "grant_applied",
        location_id=location_id,
        contact_id=str(contact.id),
        entitlement_id=str(lot.id),
        credits_granted=config.credits,
        balance_after=repository.balance(ctx.session, location_id, contact.id, config.id, now),
    )


def _expiry(start: datetime, days: int) -> datetime:
    try:
        return start + timedelta(days=days)
    except OverflowError:  # paid_at near 9999-12-31: past the end of the calendar is never
        return datetime.max.replace(tzinfo=UTC)


def _already_applied(ctx: LedgerContext, original: Grant) -> Outcome:
    lot = repository.lot_of_grant(ctx.session, ctx.location.id, original.id)
    assert lot is not None
    return success(
        "grant_already_applied",
        location_id=ctx.location.id,
        contact_id=str(original.contact_id),
        entitlement_id=str(lot.id),
        credits_granted=lot.credits_granted,
        balance_after=repository.balance(
            ctx.session,
            ctx.location.id,
            original.contact_id,
            original.product_config_id,
            ctx.clock.now(),
        ),
    )


def _contact_for_grant(ctx: LedgerContext, req: GrantRequest) -> Contact:
    """Find the contact (locked) or create it; contact hints fill empty profile fields."""
    session, location_id = ctx.session, ctx.location.id
    contact = contacts.find(session, location_id, req.contact, lock=True)
    if contact is None:
        created = contacts.insert_if_absent(
            session,
            location_id=location_id,
            ghl_contact_id=req.ghl_contact_id,
            external_contact_id=req.external_contact_id,
            email=req.email,
            name=req.name,
            now=ctx.clock.now(),
        )
        if not created and req.ghl_contact_id and req.external_contact_id:
            # The ghl id belongs to another contact: the external id alone is the key.
            contacts.insert_if_absent(
                session,
                location_id=location_id,
                ghl_contact_id=None,
                external_contact_id=req.external_contact_id,
                email=req.email,
                name=req.name,
                now=ctx.clock.now(),
            )
        contact = contacts.find(session, location_id, req.contact, lock=True)
        assert contact is not None
        return contact
    if contact.email is None and req.email is not None:
        contact.email = req.email
    if contact.name is None and req.name is not None:
        contact.name = req.name
    if (
        req.ghl_contact_id is not None
        and contact.ghl_contact_id is None
        and not contacts.id_taken(session, location_id, "ghl_contact_id", req.ghl_contact_id)
    ):
        contact.ghl_contact_id = req.ghl_contact_id
    return contact
