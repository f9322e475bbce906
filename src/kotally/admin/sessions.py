"""Sign-in, server-side sessions and the failed-sign-in rate limit (admin.md §1).

The cookie holds a random token; the row's id is its keyed hash (as API tokens are kept), so a
read of the table does not yield a usable cookie. Each sign-in makes a new row and a new token:
a token planted before sign-in is never promoted (no session fixation).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from kotally.admin import passwords
from kotally.admin import repository as repo
from kotally.config import Settings
from kotally.db.models import AdminSession, AdminUser
from kotally.kit.clock import Clock
from kotally.kit.crypto import hash_token

TOKEN_BYTES = 32
# last_seen_at is written at most this often, so that page views are not all writes.
TOUCH_INTERVAL = timedelta(seconds=60)


class SignInRefused(Exception):
    """Wrong email or password: one message for both, so accounts cannot be discovered."""


class SignInLimited(Exception):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: AdminSession
    user: AdminUser


@dataclass(frozen=True)
class Current:
    """The signed-in user of a request."""

    session_id: str
    csrf_token: str
    user_id: str
    email: str
    role: str

    @property
    def actor(self) -> str:
        return f"admin:{self.email}"

    @property
    def can_write(self) -> bool:
        return self.role in ("owner", "admin")

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def session_id_of(settings: Settings, token: str) -> str:
    return hash_token(settings.secret_key, token)


def sign_in(
    session: Session,
    clock: Clock,
    settings: Settings,
    *,
    email: str,
    password: str,
    address: str,
    previous_token: str | None,
) -> SignedIn:
    """Check the rate limit, then the password; a failure is recorded (commit it anyway)."""
    email = email.strip().lower()[:320]
    now = clock.now()
    window = timedelta(seconds=settings.admin_sign_in_window_seconds)
    _refuse_if_limited(session, settings, email, address, now - window)
    user = repo.user_by_email(session, email) if email else None
    ok = passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        repo.forget_failures(session, before=now - window)
        repo.add_failure(session, email, address, now)
        raise SignInRefused()
    repo.forget_failures(session, email=email)
    if previous_token:
        _end(session, session_id_of(settings, previous_token), now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = AdminSession(
        id=session_id_of(settings, token),
        admin_user_id=user.id,
        csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
        created_at=now,
        last_seen_at=now,
        expires_at=_expiry(settings, now, now),
        ended_at=None,
    )
    session.add(row)
    user.last_sign_in_at = now
    return SignedIn(token, row, user)


def _refuse_if_limited(
    session: Session, settings: Settings, email: str, address: str, since: datetime
) -> None:
    by_account = repo.failures_since(session, email=email, address=None, since=since)
    by_address = repo.failures_since(session, email=None, address=address, since=since)
    if (
        by_account >= settings.admin_sign_in_account_failures_max
        or by_address >= settings.admin_sign_in_address_failures_max
    ):
        raise SignInLimited(settings.admin_sign_in_window_seconds)


def current(
    session: Session, clock: Clock, settings: Settings, token: str | None
) -> tuple[Current | None, bool]:
    """The signed-in user of `token`, and whether the row's last_seen_at is due a write."""
    if not token or len(token) > 128:
        return None, False
    found = repo.session_by_id(session, session_id_of(settings, token))
    if found is None:
        return None, False
    row, user = found
    now = clock.now()
    if row.ended_at is not None or row.expires_at <= now or not user.active:
        return None, False
    who = Current(row.id, row.csrf_token, str(user.id), user.email, user.role)
    return who, now - row.last_seen_at >= TOUCH_INTERVAL


def touch(session: Session, clock: Clock, settings: Settings, session_id: str) -> None:
    found = repo.session_by_id(session, session_id)
    if found is None:
        return
    row, _ = found
    now = clock.now()
    row.last_seen_at = now
    row.expires_at = _expiry(settings, row.created_at, now)


def sign_out(session: Session, clock: Clock, settings: Settings, token: str | None) -> None:
    if token and len(token) <= 128:
        _end(session, session_id_of(settings, token), clock.now())


def _end(session: Session, session_id: str, now: datetime) -> None:
    found = repo.session_by_id(session, session_id)
    if found is not None and found[0].ended_at is None:
        found[0].ended_at = now


def _expiry(settings: Settings, created: datetime, now: datetime) -> datetime:
    idle = now + timedelta(seconds=settings.admin_session_idle_seconds)
    lifetime = created + timedelta(seconds=settings.admin_session_lifetime_seconds)
    return min(idle, lifetime)
