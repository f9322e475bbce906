"""What a request draws on: its product configs, its contact, its live lots (api-v2.md §4.5)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from kotally.configs import repository as configs
from kotally.contacts import repository as contacts
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
