"""The operator changes the UI and the CLI share, each with its audit row in the same transaction.

The rules stay in the domain services (locations, auth, configs); this module only takes the
before and after snapshots around them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from kotally.audit import service as audit
from kotally.auth import service as clients
from kotally.config import Settings
from kotally.configs import service as configs
from kotally.db.engine import Database
from kotally.db.models import ApiClient, Location, ProductConfig, WebhookEvent
from kotally.errors import OperatorError
from kotally.kit.clock import Clock
from kotally.locations import service as locations
from kotally.webhooks import inbox
from kotally.webhooks.endpoints import provider_of


def create_location(session: Session, clock: Clock, actor: str, **fields: Any) -> Location:
    loc = locations.create(session, clock, **fields)
    _record(
        session,
        clock,
        actor,
        "location.create",
        "location",
        loc.id,
        loc.id,
        None,
        audit.location(loc),
    )
    return loc


def update_location(
    session: Session, clock: Clock, actor: str, location_id: str, **fields: Any
) -> Location:
    before = audit.location(locations.get(session, location_id))
    loc = locations.update(session, clock, location_id, **fields)
    _record(
        session,
        clock,
        actor,
        "location.update",
        "location",
        loc.id,
        loc.id,
        before,
        audit.location(loc),
    )
    return loc


def create_client(
    session: Session, clock: Clock, secret_key: str, actor: str, **fields: Any
) -> clients.IssuedClient:
    issued = clients.create(session, clock, secret_key, **fields)
    _client(session, clock, actor, "api_client.create", issued.client, None)
    return issued


def client_in(session: Session, location_id: str | None, client_id: str) -> ApiClient:
    """The client, refused as unknown when it belongs to another location than the one named."""
    client = clients.get(session, client_id)
    if location_id is not None and client.location_id != location_id:
        raise OperatorError(f"no API client {client_id!r}")
    return client


def rotate_client(
    session: Session,
    clock: Clock,
    secret_key: str,
    actor: str,
    client_id: str,
    location_id: str | None = None,
) -> clients.IssuedClient:
    before = audit.client(client_in(session, location_id, client_id))
    issued = clients.rotate(session, clock, secret_key, client_id)
    _client(session, clock, actor, "api_client.rotate", issued.client, before)
    return issued


def deactivate_client(
    session: Session, clock: Clock, actor: str, client_id: str, location_id: str | None = None
) -> ApiClient:
    before = audit.client(client_in(session, location_id, client_id))
    client = clients.deactivate(session, client_id)
    _client(session, clock, actor, "api_client.deactivate", client, before)
    return client


def create_config(session: Session, clock: Clock, actor: str, **fields: Any) -> ProductConfig:
    config = configs.create(session, clock, **fields)
    _config(session, clock, actor, "product_config.create", config, None)
    return config


def update_config(
    session: Session,
    clock: Clock,
    actor: str,
    *,
    location_id: str,
    config_id: str,
    action: str = "product_config.update",
    **fields: Any,
) -> ProductConfig:
    before = audit.config(configs.get(session, location_id, config_id))
    config = configs.update(session, clock, location_id=location_id, config_id=config_id, **fields)
    _config(session, clock, actor, action, config, before)
    return config


def _client(
    session: Session,
    clock: Clock,
    actor: str,
    action: str,
    client: ApiClient,
    before: audit.Snapshot | None,
) -> None:
    session.flush()
    _record(
        session,
        clock,
        actor,
        action,
        "api_client",
        str(client.id),
        client.location_id,
        before,
        audit.client(client),
    )


def _config(
    session: Session,
    clock: Clock,
    actor: str,
    action: str,
    config: ProductConfig,
    before: audit.Snapshot | None,
) -> None:
    session.flush()
    _record(
        session,
        clock,
        actor,
        action,
        "product_config",
        config.config_id,
        config.location_id,
        before,
        audit.config(config),
    )


def _record(
    session: Session,
    clock: Clock,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    location_id: str,
    before: audit.Snapshot | None,
    after: audit.Snapshot | None,
) -> None:
    audit.record(
        session,
        clock,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        location_id=location_id,
        before=before,
        after=after,
    )


def replay_webhook(
    db: Database, clock: Clock, settings: Settings, actor: str, event_id: uuid.UUID
) -> WebhookEvent:
    """Process a failed or unmatched webhook event again, recording who did it."""

    def record(session: Session, status_before: str, event: WebhookEvent) -> None:
        audit.record(
            session,
            clock,
            actor=actor,
            action="webhook.replay",
            entity="webhook_event",
            entity_id=str(event.id),
            location_id=event.location_id,
            before={"status": status_before},
            after={"status": event.status, "outcome": event.outcome},
        )

    return inbox.replay(db, clock, settings, provider_of, event_id, on_replayed=record)
