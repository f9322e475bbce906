"""Pause and resume: a disputed payment's lots stop being live until the dispute is decided.

A pause is a status, not a movement: the lot keeps its credits (no ledger entry), but a paused
lot is not live (ledger.md invariant 3), so checks and deducts do not see it. Resuming makes it
`active` or `exhausted` again by what it holds; lots voided or expired meanwhile stay so.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.idempotency.service import Reply, run_once
from kotally.ledger import clawback_repository as repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.outcomes import Outcome, success


@dataclass(frozen=True)
class PauseRequest:
    request_id: str
    reference: str  # why: the dispute's id
    lot_ids: tuple[uuid.UUID, ...]

    def payload(self) -> dict[str, Any]:
        return {"reference": self.reference}


def pause(ctx: LedgerContext, req: PauseRequest) -> Reply:
    return _run(ctx, req, "pause", lambda: _pause(ctx, req))


def resume(ctx: LedgerContext, req: PauseRequest) -> Reply:
    return _run(ctx, req, "resume", lambda: _resume(ctx, req))


def _run(ctx: LedgerContext, req: PauseRequest, endpoint: str, op: Any) -> Reply:
    return run_once(
        ctx.session,
        ctx.clock,
        location_id=ctx.location.id,
        request_id=req.request_id,
        endpoint=endpoint,
        payload=req.payload(),
        correlation_id=ctx.correlation_id,
        operation=op,
    )


def _pause(ctx: LedgerContext, req: PauseRequest) -> Outcome:
    lots = repository.lock_lots(ctx.session, ctx.location.id, list(req.lot_ids))
    paused = [lot for lot in lots if lot.status in LIVE_STATUSES]
    for lot in paused:
        lot.status = "paused"
    return success(
        "lots_paused",
        entitlement_ids=[str(lot.id) for lot in paused],
        credits_paused=sum(lot.credits_remaining for lot in paused),
    )


def _resume(ctx: LedgerContext, req: PauseRequest) -> Outcome:
    lots = repository.lock_lots(ctx.session, ctx.location.id, list(req.lot_ids))
    resumed = [lot for lot in lots if lot.status == "paused"]
    for lot in resumed:
        lot.status = "active" if lot.credits_remaining > 0 else "exhausted"
    return success(
        "lots_resumed",
        entitlement_ids=[str(lot.id) for lot in resumed],
        credits_resumed=sum(lot.credits_remaining for lot in resumed),
    )
