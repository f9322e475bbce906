"""The staff embed's rules, without HTTP: GHL user context -> a short read-only session.

GHL's encrypted user context carries no expiry or nonce (integrations.md), so it is exchanged
once for a random token that lives 15 minutes and reads one location. The token is stored only
as its keyed hash (kit/crypto.py's HMAC, keyed by KOTALLY_SECRET_KEY), like API tokens.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from kotally.contacts import read_repository as contact_repo
from kotally.contacts.read_repository import LotRow
from kotally.contacts.repository import find_row_for_read
from kotally.db.models import EmbedSession
from kotally.embed import repository as repo
from kotally.embed import schemas
from kotally.embed.crypto import UndecryptablePayload, decrypt_json
from kotally.errors import KotallyError, Unauthorized
from kotally.kit.clock import Clock
from kotally.kit.crypto import hash_token
from kotally.kit.fields import ID_CHARS_MAX

SESSION_SECONDS = 15 * 60
# Expired sessions are kept this long (who looked, when), then purged as new ones are made.
RETENTION_DAYS = 30
TOKEN_PREFIX = "ktle_"  # noqa: S105 - a prefix, not a secret: "e" for embed, apart from ktly_
_TOKEN_RE = re.compile(r"^ktle_[A-Za-z0-9_-]{43}$")  # 32 random bytes, URL-safe base64
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# GHL's user context fields kept on the session row, with the row's column lengths.
_USER_FIELDS = {
    "ghl_user_id": ("userId", 255),
    "ghl_company_id": ("companyId", 255),
    "user_name": ("userName", 255),
    "email": ("email", 320),
    "role": ("role", 64),
    "user_type": ("type", 64),
}


class LocationNotFound(KotallyError):
    status = 403
    reason_code = "LOCATION_NOT_FOUND"
    default_message = "This GHL location is not set up in Kotally; ask an admin to add it."


class ContactNotFound(KotallyError):
    status = 404
    reason_code = "NOT_FOUND"
    default_message = "No contact with that id in this location."


@dataclass(frozen=True)
class CreatedSession:
    token: str
    location_id: str
    expires_at: datetime


@dataclass(frozen=True)
class EmbedPrincipal:
    session_id: uuid.UUID
    location_id: str
    expires_at: datetime


def create_session(
    session: Session, clock: Clock, shared_secret: str | None, secret_key: str, payload: str
) -> CreatedSession:
    """Decrypt GHL's user context and open a session for its activeLocation.

    401 for anything that is not a context GHL encrypted with our secret (including no secret
    configured: nothing can be verified then), 403 for a location Kotally does not know.
    """
    if not shared_secret:
        raise Unauthorized("Embedded sign-in is not set up on this Kotally server.")
    try:
        context = decrypt_json(payload, shared_secret)
    except UndecryptablePayload:
        raise Unauthorized("The GHL user context could not be verified.") from None
    location_id = context.get("activeLocation")
    if not _is_text(location_id, ID_CHARS_MAX) or not location_id:
        raise Unauthorized("Open this page inside a GHL sub-account: no active location was sent.")
    assert isinstance(location_id, str)
    if not repo.location_exists(session, location_id):
        raise LocationNotFound()
    now = clock.now()
    repo.purge_expired_before(session, now - timedelta(days=RETENTION_DAYS))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=SESSION_SECONDS)
    repo.add_session(
        session,
        EmbedSession(
            id=uuid.uuid4(),
            token_hash=hash_token(secret_key, token),
            location_id=location_id,
            created_at=now,
            expires_at=expires_at,
            **_user_fields(context),
        ),
    )
    return CreatedSession(token, location_id, expires_at)


def _is_text(value: Any, chars_max: int) -> bool:
    return isinstance(value, str) and len(value) <= chars_max and not _CONTROL.search(value)


def _user_fields(context: dict[str, Any]) -> dict[str, str | None]:
    """Who opened the session, as GHL sent it. These fields only inform: one that is missing,
    not a string or too long is recorded as null rather than refusing a verified context."""
    fields: dict[str, str | None] = {}
    for column, (key, chars_max) in _USER_FIELDS.items():
        value = context.get(key)
        fields[column] = value if _is_text(value, chars_max) and value else None
    return fields


def authenticate(
    session: Session, clock: Clock, secret_key: str, authorization: str | None
) -> EmbedPrincipal:
    """The session a bearer token names; every failure is the same kind of 401."""
    if not authorization:
        raise Unauthorized("Send Authorization: Bearer <the token from POST /embed/session>.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN_RE.match(token):
        raise Unauthorized("The bearer token is not an embed session token.")
    row = repo.find_by_token_hash(session, hash_token(secret_key, token))
    if row is None or row.expires_at <= clock.now():
        raise Unauthorized("The embed session has expired; sign in again.")
    return EmbedPrincipal(row.id, row.location_id, row.expires_at)


def location(session: Session, location_id: str) -> dict[str, Any]:
    """The session's location, for the page's header and the time zone of its times."""
    row = repo.find_location(session, location_id)
    if row is None:  # sessions are only opened for a known location
        raise LocationNotFound()
    return {"location": schemas.location(row)}


def balances(
    session: Session, clock: Clock, location_id: str, contact_key: str
) -> dict[str, Any] | None:
    """Usable credits per product config (live lots, config active, credits left).

    The same lots the API's `credits_available` sums, so the figures add up to it.
    """
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    rows = contact_repo.usable_lots(session, location_id, found.id, clock.now())
    by_config: dict[uuid.UUID, list[LotRow]] = defaultdict(list)
    for row in rows:
        by_config[row.config.id].append(row)
    items = [
        schemas.balance(
            group[0].config.config_id, group[0].config.name, group[0].config.type, group
        )
        for group in by_config.values()
    ]
    items.sort(key=lambda item: (-item["credits_available"], item["product_config_id"]))
    return {
        "credits_available": sum(row.lot.credits_remaining for row in rows),
        "balances": items,
    }
