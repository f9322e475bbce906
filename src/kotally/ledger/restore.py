"""Restore: credits back after a cancellation (ledger.md §Restore)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kotally.db.models import Appointment, Entitlement
from kotally.idempotency.service import Reply, run_once
from kotally.ledger import repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.lots import is_expired, is_live, move
from kotally.ledger.outcomes import Outcome, Refusal, success
from kotally.ledger.schemas import RestoreRequest
from kotally.ledger.selection import (
    find_contact,
    refuse_if_other_family,
    refuse_if_suspended,
    select_configs,
)


@dataclass
class _Candidate:
    lot: Entitlement
    restorable: int  # what may go back to this lot, before liveness


def restore(ctx: LedgerContext, req: RestoreRequest) -> Reply:
    return run_once(
        ctx.session,
        ctx.clock,
        location_id=ctx.location.id,
        request_id=req.request_id,
        endpoint="restore",
        payload=req.payload(),
        correlation_id=ctx.correlation_id,
        operation=lambda: _restore(ctx, req),
    )


def _restore(ctx: LedgerContext, req: RestoreRequest) -> Outcome:
    refuse_if_suspended(ctx)
    selected = select_configs(ctx, req)
    contact_id = find_contact(ctx, req, lock=True)
    config_ids = list(selected)
    now = ctx.clock.now()
    lots = repository.all_lots(ctx.session, ctx.location.id, contact_id, config_ids)
    if not any(is_live(lot, now) for lot in lots):
        refuse_if_other_family(ctx, req, contact_id, selected)
    if not lots:
        raise Refusal("NO_ENTITLEMENT")

    appointment = _appointment(ctx, req, contact_id)
    _check_window(ctx, req, appointment, now)
    if req.external_ref is not None:
        candidates = _candidates_by_ref(ctx, contact_id, req.external_ref, config_ids)
    else:
        candidates = _candidates_by_room(lots, now)
    plan = _plan(candidates, req.amount, now)

    for lot, amount in plan:
        move(
            ctx,
            lot,
            "restore",
            amount,
            request_id=req.request_id,
            external_ref=req.external_ref,
            appointment_time=req.appointment_time,
        )
    if appointment is not None:
        appointment.credits_restored += req.amount
        appointment.updated_at = now
        if appointment.credits_restored >= appointment.credits_deducted:
            appointment.status = "cancelled"
    return success(
        "restored",
        balance_after=_balance(lots, now),
        entitlement_id=str(plan[0][0].id),
    )


def _appointment(
    ctx: LedgerContext, req: RestoreRequest, contact_id: uuid.UUID
) -> Appointment | None:
    if req.external_ref is None:
        return None
    appointment = repository.appointment_by_ref(ctx.session, ctx.location.id, req.external_ref)
    return appointment if appointment is not None and appointment.contact_id == contact_id else None


def _check_window(
    ctx: LedgerContext, req: RestoreRequest, appointment: Appointment | None, now: datetime
) -> None:
    window = ctx.location.cancellation_window_hours
    at = req.appointment_time or (appointment.appointment_time if appointment else None)
    if window is None or at is None:
        return
    if now > at - timedelta(hours=window):
        raise Refusal("CANCELLATION_WINDOW_EXPIRED")


def _candidates_by_ref(
    ctx: LedgerContext, contact_id: uuid.UUID, external_ref: str, config_ids: list[uuid.UUID]
) -> list[_Candidate]:
    """Lots this ref's deductions drew on, most recent draw first, with what is still out."""
    entries = repository.entries_for_ref(
        ctx.session, ctx.location.id, contact_id, external_ref, config_ids
    )
    out: dict[uuid.UUID, int] = {}
    last_draw: dict[uuid.UUID, int] = {}
    for entry in entries:
        out[entry.entitlement_id] = out.get(entry.entitlement_id, 0) - entry.amount
        if entry.kind == "deduct":
            last_draw[entry.entitlement_id] = entry.id
    lots = repository.lots_by_id(ctx.session, ctx.location.id, list(last_draw))
    order = sorted(last_draw, key=lambda lot_id: last_draw[lot_id], reverse=True)
    return [_Candidate(lots[lot_id], out[lot_id]) for lot_id in order if out[lot_id] > 0]


def _candidates_by_room(lots: Sequence[Entitlement], now: datetime) -> list[_Candidate]:
    """Live lots with room, latest expiry first (never-expiring lots count as latest).

    With no live lot left, the expired lots are the candidates, so that the answer can say
    ENTITLEMENT_EXPIRED rather than NOTHING_TO_RESTORE.
    """
    live = [lot for lot in lots if is_live(lot, now)]
    pool = live or [lot for lot in lots if is_expired(lot, now)]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    ordered = sorted(pool, key=lambda lot: (lot.expires_at or far, lot.created_at), reverse=True)
    return [
        _Candidate(lot, lot.credits_granted - lot.credits_remaining)
        for lot in ordered
        if lot.credits_granted > lot.credits_remaining
    ]


def _plan(
    candidates: list[_Candidate], amount: int, now: datetime
) -> list[tuple[Entitlement, int]]:
    """All or nothing: which lot takes how much, or the refusal that applies."""
    room = {
        c.lot.id: min(c.restorable, c.lot.credits_granted - c.lot.credits_remaining)
        for c in candidates
        if is_live(c.lot, now)
    }
    live_total = sum(room.values())
    if amount > sum(c.restorable for c in candidates):
        raise Refusal("NOTHING_TO_RESTORE", credits_restorable=live_total)
    if not room and all(is_expired(c.lot, now) for c in candidates):
        raise Refusal("ENTITLEMENT_EXPIRED")
    if amount > live_total:
        raise Refusal("NOTHING_TO_RESTORE", credits_restorable=live_total)
    plan: list[tuple[Entitlement, int]] = []
    left = amount
    for candidate in candidates:
        give = min(room.get(candidate.lot.id, 0), left)
        if give > 0:
            plan.append((candidate.lot, give))
            left -= give
    return plan


def _balance(lots: Sequence[Entitlement], now: datetime) -> int:
    return sum(lot.credits_remaining for lot in lots if is_live(lot, now))
