"""What a request draws on: its product configs, its contact, its live lots (api-v2.md §4.5)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from kotally.configs import repository as configs
from kotally.contacts import repository as contacts
from kotally.db.models import Entitlement
from kotally.ledger import repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.outcomes import Refusal
from kotally.ledger.schemas import SelectionRequest


def refuse_if_suspended(ctx: LedgerContext) -> None:
    if ctx.location.billing_status == "suspended":
        raise Refusal("BILLING_SUSPENDED")


def select_configs(ctx: LedgerContext, req: SelectionRequest) -> list[uuid.UUID]:
    """The ids of the selected configs; CONFIG_NOT_FOUND and the both-selectors
    SERVICE_FAMILY_MISMATCH, in that order."""
    location_id = ctx.location.id
    if req.product_config_id is not None:
        return _chosen(ctx, req, configs.active_id(ctx.session, location_id, req.product_config_id))
    assert req.calendar_id is not None
    linked = configs.active_ids_for_link(ctx.session, location_id, "calendar", req.calendar_id)
    if not linked:
        raise Refusal("CONFIG_NOT_FOUND")
    return linked


def _chosen(ctx: LedgerContext, req: SelectionRequest, config: uuid.UUID | None) -> list[uuid.UUID]:
    """The config named by product_config_id, if active, and in the calendar's family if one
    was sent too."""
    if config is None:
        raise Refusal("CONFIG_NOT_FOUND")
    if req.calendar_id is not None and req.calendar_id not in configs.linked(
        ctx.session, ctx.location.id, config, "calendar"
    ):
        raise Refusal("SERVICE_FAMILY_MISMATCH")
    return [config]


def find_contact(ctx: LedgerContext, req: SelectionRequest, *, lock: bool) -> uuid.UUID:
    """The id of the request's contact; with lock, its row is locked (ledger.md §Concurrency)."""
    return _found(contacts.find_id(ctx.session, ctx.location.id, req.contact, lock=lock))


def _found(contact_id: uuid.UUID | None) -> uuid.UUID:
    if contact_id is None:
        raise Refusal("NO_ENTITLEMENT")
    return contact_id


def check_balance(ctx: LedgerContext, req: SelectionRequest) -> int:
    """The check's selection and balance: select_configs, find_contact and
    live_balance_with_enough, with the same refusals in the same order. By product_config_id
    (the common case) their three reads are one statement."""
    if req.product_config_id is None:
        selected = select_configs(ctx, req)
        contact_id = find_contact(ctx, req, lock=False)
        return live_balance_with_enough(ctx, req, contact_id, selected)
    config, found, lots, available = repository.check_facts(
        ctx.session, ctx.location.id, req.product_config_id, req.contact, ctx.clock.now()
    )
    selected = _chosen(ctx, req, config)
    contact_id = _found(found)
    refuse_unless_enough(ctx, req, contact_id, selected, lots, available)
    return available


def refuse_if_other_family(
    ctx: LedgerContext,
    req: SelectionRequest,
    contact_id: uuid.UUID,
    selected: Sequence[uuid.UUID],
) -> None:
    """By calendar alone, no live lot there but usable credits elsewhere: the wrong family."""
    if req.product_config_id is None and repository.has_usable_elsewhere(
        ctx.session, ctx.location.id, contact_id, list(selected), ctx.clock.now()
    ):
        raise Refusal("SERVICE_FAMILY_MISMATCH")


def live_lots_with_enough(
    ctx: LedgerContext, req: SelectionRequest, contact_id: uuid.UUID, selected: Sequence[uuid.UUID]
) -> tuple[Sequence[Entitlement], int]:
    """The live lots in consumption order and their balance, or the refusal that applies."""
    lots = repository.live_lots(
        ctx.session, ctx.location.id, contact_id, list(selected), ctx.clock.now()
    )
    available = sum(lot.credits_remaining for lot in lots)
    refuse_unless_enough(ctx, req, contact_id, selected, len(lots), available)
    return lots, available


def live_balance_with_enough(
    ctx: LedgerContext,
    req: SelectionRequest,
    contact_id: uuid.UUID,
    selected: Sequence[uuid.UUID],
) -> int:
    """live_lots_with_enough for the check: the balance alone, the same refusals."""
    count, available = repository.live_balance(
        ctx.session, ctx.location.id, contact_id, list(selected), ctx.clock.now()
    )
    refuse_unless_enough(ctx, req, contact_id, selected, count, available)
    return available


def refuse_unless_enough(
    ctx: LedgerContext,
    req: SelectionRequest,
    contact_id: uuid.UUID,
    selected: Sequence[uuid.UUID],
    lots: int,
    available: int,
) -> None:
    """No live lot: NO_ENTITLEMENT (or the other family's); too few: INSUFFICIENT_CREDITS."""
    if lots == 0:
        refuse_if_other_family(ctx, req, contact_id, selected)
        raise Refusal("NO_ENTITLEMENT")
    if available < req.amount:
        raise Refusal("INSUFFICIENT_CREDITS", balance_available=available)
