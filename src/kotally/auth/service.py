"""API clients: create, rotate, deactivate, list. Only a keyed hash of a token is stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kotally.auth.scopes import SCOPES
from kotally.db.models import ApiClient
from kotally.errors import OperatorError
from kotally.kit.clock import Clock
from kotally.kit.crypto import hash_token, issue_token
from kotally.kit.ids import new_id, parse_uuid
from kotally.locations import service as locations

RATE_LIMIT_MAX = 100_000


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    token: str


def parse_scopes(raw: Iterable[str]) -> str:
    scopes = sorted({s.strip() for s in raw if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise OperatorError(
            f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}"
        )
    if not scopes:
        raise OperatorError(f"give at least one scope of {', '.join(SCOPES)}")
    return ",".join(scopes)


def create(
    session: Session,
    clock: Clock,
    secret_key: str,
    *,
    location_id: str,
    name: str,
    scopes: Iterable[str],
    rate_limit_per_second: int | None = None,
) -> IssuedClient:
    locations.get(session, location_id)
    if not name.strip() or len(name) > 255:
        raise OperatorError("client name must be 1-255 characters")
    if rate_limit_per_second is not None and not 0 < rate_limit_per_second <= RATE_LIMIT_MAX:
        raise OperatorError(f"rate limit must be from 1 to {RATE_LIMIT_MAX} requests per second")
    client_id = new_id()
    issued = issue_token(client_id)
    client = ApiClient(
        id=client_id,
        location_id=location_id,
        name=name,
        scopes=parse_scopes(scopes),
        token_hash=hash_token(secret_key, issued.token),
        active=True,
        rate_limit_per_second=rate_limit_per_second,
        created_at=clock.now(),
    )
    session.add(client)
    return IssuedClient(client, issued.token)


def get(session: Session, client_id: str) -> ApiClient:
    parsed = parse_uuid(client_id)
    client = session.get(ApiClient, parsed) if parsed else None
    if client is None:
        raise OperatorError(f"no API client {client_id!r}")
    return client


def rotate(session: Session, clock: Clock, secret_key: str, client_id: str) -> IssuedClient:
    """A new secret for the same client id; the old token stops working at once."""
    client = get(session, client_id)
    if not client.active:
        raise OperatorError(f"API client {client_id} is deactivated")
    issued = issue_token(client.id)
    client.token_hash = hash_token(secret_key, issued.token)
    client.rotated_at = clock.now()
    return IssuedClient(client, issued.token)


def deactivate(session: Session, client_id: str) -> ApiClient:
    client = get(session, client_id)
    client.active = False
    return client


def list_for(session: Session, location_id: str) -> Sequence[ApiClient]:
    locations.get(session, location_id)
    stmt = (
        select(ApiClient)
        .where(ApiClient.location_id == location_id)
        .order_by(ApiClient.created_at, ApiClient.id)
    )
    return session.execute(stmt).scalars().all()


def by_id(session: Session, client_id: uuid.UUID) -> ApiClient | None:
    return session.get(ApiClient, client_id)
