"""Who is calling: bearer token -> API client -> location, checked on every request."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from kotally.db.engine import Database
from kotally.db.models import ApiClient, Location
from kotally.db.models.api_client import scope_set
from kotally.errors import Unauthorized
from kotally.kit.clock import Clock
from kotally.kit.crypto import hash_token, parse_token, token_matches

# last_used_at is written at most this often per client and process, not on every request.
LAST_USED_WRITE_INTERVAL_SECONDS = 60.0
# Built once, on the tables (columns, no ORM objects): it runs on every request.
_CLIENTS = cast(Table, ApiClient.__table__)
_LOCATIONS = cast(Table, Location.__table__)
CLIENT_STATEMENT = (
    select(
        _CLIENTS.c.active,
        _CLIENTS.c.token_hash,
        _CLIENTS.c.scopes,
        _CLIENTS.c.rate_limit_per_second,
        _LOCATIONS.c.id,
        _LOCATIONS.c.billing_status,
        _LOCATIONS.c.cancellation_window_hours,
    )
    .join(_LOCATIONS, _LOCATIONS.c.id == _CLIENTS.c.location_id)
    .where(_CLIENTS.c.id == bindparam("client_id"))
)


@dataclass(frozen=True)
class LocationSnapshot:
    id: str
    billing_status: str
    cancellation_window_hours: int | None


@dataclass(frozen=True)
class Principal:
    client_id: uuid.UUID
    location: LocationSnapshot
    scopes: frozenset[str]
    rate_limit_per_second: int | None


def bearer_token(authorization: str | None) -> tuple[uuid.UUID, str]:
    """The client id and token of an Authorization header; 401 when it is missing or malformed."""
    if not authorization:
        raise Unauthorized("Send Authorization: Bearer ktly_<uuid>_<uuid>.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    client_id = parse_token(token) if scheme.lower() == "bearer" else None
    if client_id is None:
        raise Unauthorized("The bearer token is malformed.")
    return client_id, token


def principal_of(client_id: uuid.UUID, row: Sequence[Any]) -> Principal:
    """The principal of a client row: scopes, rate, location id, billing status, window."""
    scopes, rate, location_id, billing_status, window = row
    return Principal(
        client_id=client_id,
        location=LocationSnapshot(location_id, billing_status, window),
        scopes=scope_set(scopes),
        rate_limit_per_second=rate,
    )


class Authenticator:
    def __init__(self, db: Database, clock: Clock, secret_key: str) -> None:
        self._db = db
        self._clock = clock
        self._secret_key = secret_key
        self._last_write: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None, session: Session) -> Principal:
        """Resolve a bearer token; every failure is the same 401 (no oracle).

        The lookup runs in the caller's transaction, beside the request's own work (one
        transaction per request instead of two: api/runtime.py `authenticate_in`). The caller
        records the use: `touch` once the request's transaction is over (`record_use`).
        """
        client_id, token = bearer_token(authorization)
        return self._resolve(session, client_id, token)

    def token_hash(self, token: str) -> str:
        """The keyed hash stored for `token` (the API's hot path compares it in SQL)."""
        return hash_token(self._secret_key, token)

    def _resolve(self, session: Session, client_id: uuid.UUID, token: str) -> Principal:
        row = session.connection().execute(CLIENT_STATEMENT, {"client_id": client_id}).first()
        return self.verify(client_id, token, row)

    def verify(self, client_id: uuid.UUID, token: str, row: Sequence[Any] | None) -> Principal:
        """The principal of CLIENT_STATEMENT's row for `client_id`, if `token` is its active
        token; the same 401 for every failure (no oracle)."""
        if row is None:
            raise Unauthorized("The bearer token is not valid.")
        active, token_hash, *rest = row
        if not active or not token_matches(self._secret_key, token, token_hash):
            raise Unauthorized("The bearer token is not valid.")
        return principal_of(client_id, rest)

    def touch_due(self, client_id: uuid.UUID) -> bool:
        """Whether `touch` would write now (it writes at most once a minute per process)."""
        last = self._last_write.get(client_id)
        return last is None or time.monotonic() - last >= LAST_USED_WRITE_INTERVAL_SECONDS

    def touch(self, client_id: uuid.UUID) -> None:
        """Record the client's use (at most once a minute per process), in its own transaction."""
        now = time.monotonic()
        with self._lock:
            last = self._last_write.get(client_id)
            if last is not None and now - last < LAST_USED_WRITE_INTERVAL_SECONDS:
                return
            self._last_write[client_id] = now
        try:
            with self._db.unit_of_work() as session:
                session.execute(
                    update(ApiClient)
                    .where(ApiClient.id == client_id)
                    .values(last_used_at=self._clock.now())
                )
        except Exception:
            with self._lock:
                self._last_write.pop(client_id, None)
