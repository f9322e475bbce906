"""Clawback: take back a refunded or disputed payment's unused credits (webhooks.md §4).

A refund claws back `floor(credits_granted * refunded / amount)` of the payment's lots, less
what earlier refunds of the same payment already accounted for: `refunded` is cumulative, as
Stripe's `amount_refunded` is, so refunds of 30 %, 60 % and 100 % take 3, 3 and 4 credits of
10, and a late or repeated refund takes nothing. Only unused credits go: each lot gets a `void`
entry of what it gives, never below zero. A full refund voids the lots (status `voided`, not
live any more). What was due but already used is the shortfall, answered, never taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kotally.db.models import Entitlement
from kotally.idempotency.service import Reply, run_once
from kotally.ledger import clawback_repository as repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.lots import is_expired, move
from kotally.ledger.outcomes import Outcome, success

# Lots that can give credits back: live or paused (a disputed payment may be refunded).
_HOLDING = ("active", "exhausted", "paused")


@dataclass(frozen=True)
class ClawbackRequest:
    request_id: str
    reference: str  # the payment whose refunds these are (a Stripe charge id)
    lot_ids: tuple[uuid.UUID, ...]
    refunded_cents: int  # cumulative
    amount_cents: int
    full: bool
    external_ref: str | None = None

    def payload(self) -> dict[str, Any]:
        # The lots are not part of it: the same refund found again with one more linked
        # grant is still the same refund, answered as it was.
        return {
            "reference": self.reference,
            "refunded_cents": self.refunded_cents,
            "amount_cents": self.amount_cents,
            "full": self.full,
        }


def clawback(ctx: LedgerContext, req: ClawbackRequest) -> Reply:
    return run_once(
        ctx.session,
        ctx.clock,
        location_id=ctx.location.id,
        request_id=req.request_id,
        endpoint="clawback",
        payload=req.payload(),
        correlation_id=ctx.correlation_id,
        operation=lambda: _clawback(ctx, req),
    )


def target_credits(granted: int, refunded_cents: int, amount_cents: int, full: bool) -> int:
    """What the refunds so far entitle the location to take back, rounded down."""
    if full or (amount_cents > 0 and refunded_cents >= amount_cents):
        return granted
    if amount_cents <= 0 or refunded_cents <= 0:
        return 0
    return granted * refunded_cents // amount_cents


def _clawback(ctx: LedgerContext, req: ClawbackRequest) -> Outcome:
    now = ctx.clock.now()
    lots = repository.lock_lots(ctx.session, ctx.location.id, list(req.lot_ids))
    granted = sum(lot.credits_granted for lot in lots)
    tally = repository.tally(ctx.session, ctx.location.id, req.reference, now)
    # Cumulative, and never lowered by a refund that arrives late with a smaller total.
    target = max(
        tally.credits_target,
        target_credits(granted, req.refunded_cents, req.amount_cents, req.full),
    )
    due = target - tally.credits_clawed_back
    if req.full:
        # Everything left goes, even past `due` (a restore may have refilled a lot since a
        # partial clawback), so that no voided lot keeps credits.
        taken = _take(ctx, lots, sum(lot.credits_remaining for lot in lots), req)
        for lot in lots:
            if lot.status in _HOLDING:
                lot.status = "voided"
    else:
        taken = _take(ctx, lots, due, req)
    tally.credits_clawed_back += taken
    tally.credits_target = max(target, tally.credits_clawed_back)
    tally.amount_refunded_cents = max(tally.amount_refunded_cents, req.refunded_cents)
    tally.fully_refunded = tally.fully_refunded or req.full
    tally.updated_at = now
    return success(
        "credits_voided" if req.full else "credits_clawed_back",
        credits_granted=granted,
        credits_clawed_back=taken,
        credits_clawed_back_total=tally.credits_clawed_back,
        credits_shortfall=max(due - taken, 0),
        entitlement_ids=[str(lot.id) for lot in lots],
    )


def _take(ctx: LedgerContext, lots: Sequence[Entitlement], due: int, req: ClawbackRequest) -> int:
    """Void up to `due` unused credits, lot by lot in the order they were granted."""
    now = ctx.clock.now()
    taken = 0
    for lot in lots:
        if taken >= due:
            break
        if lot.status not in _HOLDING or (is_expired(lot, now) and not req.full):
            continue  # credits past their expiry go to the sweep, unless the lot is voided
        give = min(lot.credits_remaining, due - taken)
        if give > 0:
            move(ctx, lot, "void", -give, request_id=req.request_id, external_ref=req.external_ref)
            taken += give
    return taken
