"""Check and deduct: the hot paths."""

from __future__ import annotations

import uuid
from typing import Any

from kotally.configs import repository as configs
from kotally.db.models import Appointment
from kotally.idempotency.service import Reply, run_once
from kotally.kit.ids import new_id
from kotally.ledger import pg_deduct, repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.lots import move
from kotally.ledger.outcomes import Outcome, Refusal, success
from kotally.ledger.schemas import CheckRequest, DeductRequest
from kotally.ledger.selection import (
    check_balance,
    find_contact,
    live_lots_with_enough,
    refuse_if_suspended,
    select_configs,
)


def check(ctx: LedgerContext, req: CheckRequest) -> Reply:
    """Would the contact have enough credits? Changes nothing."""
    try:
        refuse_if_suspended(ctx)
        available = check_balance(ctx, req)
        outcome = success("eligible", balance_after=available - req.amount)
    except Refusal as refusal:
        outcome = refusal.outcome
    return Reply(200, outcome.body(ctx.correlation_id))


def deduct(ctx: LedgerContext, req: DeductRequest) -> Reply:
    """Take credits, once per request_id. On PostgreSQL the SQL function kotally_deduct does
    all of it in one statement (ledger/pg_deduct.py); the rules below are its specification."""
    if ctx.session.get_bind().dialect.name == "postgresql":
        return pg_deduct.deduct(ctx, req)
    return run_once(
        ctx.session,
        ctx.clock,
        location_id=ctx.location.id,
        request_id=req.request_id,
        endpoint="deduct",
        payload=req.payload(),
        correlation_id=ctx.correlation_id,
        operation=lambda: _deduct(ctx, req),
    )


def _deduct(ctx: LedgerContext, req: DeductRequest) -> Outcome:
    refuse_if_suspended(ctx)
    selected = select_configs(ctx, req)
    # The contact row lock serialises every mutation of this contact (ledger.md §Concurrency).
    contact_id = find_contact(ctx, req, lock=True)
    lots, available = live_lots_with_enough(ctx, req, contact_id, selected)

    consumed: list[dict[str, Any]] = []
    left = req.amount
    for lot in lots:
        if left == 0:
            break
        take = min(lot.credits_remaining, left)
        if take == 0:
            continue
        move(
            ctx,
            lot,
            "deduct",
            -take,
            request_id=req.request_id,
            external_ref=req.external_ref,
            appointment_time=req.appointment_time,
        )
        consumed.append({"entitlement_id": str(lot.id), "amount": take})
        left -= take

    if req.external_ref is not None:
        _record_booking(ctx, req, contact_id, selected)
    return success(
        "deducted",
        balance_after=available - req.amount,
        entitlement_id=consumed[0]["entitlement_id"],
        consumed=consumed,
    )


def _record_booking(
    ctx: LedgerContext, req: DeductRequest, contact_id: uuid.UUID, selected: list[uuid.UUID]
) -> None:
    """Record or update the appointment named by external_ref (not another contact's)."""
    assert req.external_ref is not None
    now = ctx.clock.now()
    appointment = repository.appointment_by_ref(ctx.session, ctx.location.id, req.external_ref)
    if appointment is None:
        ctx.session.add(
            Appointment(
                id=new_id(),
                location_id=ctx.location.id,
                contact_id=contact_id,
                external_ref=req.external_ref,
                calendar_id=req.calendar_id or _sole_calendar(ctx, selected),
                appointment_time=req.appointment_time,
                status="booked",
                credits_deducted=req.amount,
                credits_restored=0,
                created_at=now,
                updated_at=now,
            )
        )
        return
    if appointment.contact_id != contact_id:
        return
    appointment.credits_deducted += req.amount
    appointment.status = "booked"
    appointment.refusal = None
    appointment.updated_at = now
    if req.appointment_time is not None:
        appointment.appointment_time = req.appointment_time
    if req.calendar_id is not None:
        appointment.calendar_id = req.calendar_id


def _sole_calendar(ctx: LedgerContext, selected: list[uuid.UUID]) -> str | None:
    if len(selected) != 1:
        return None
    calendars = configs.linked(ctx.session, ctx.location.id, selected[0], "calendar")
    return calendars[0] if len(calendars) == 1 else None
