"""Admin users: create, list, change role, deactivate, reset password. Every change is audited."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.orm import Session

from kotally.admin import passwords
from kotally.admin import repository as repo
from kotally.audit import service as audit
from kotally.db.models import AdminUser
from kotally.db.models.admin_user import ADMIN_ROLES
from kotally.errors import OperatorError
from kotally.kit.clock import Clock
from kotally.kit.ids import new_id

# The actor of a ledger entry is "admin:<email>" in 255 characters.
EMAIL_LENGTH_MAX = 240
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > EMAIL_LENGTH_MAX:
        raise OperatorError(
            f"email must look like name@example.com (at most {EMAIL_LENGTH_MAX} characters)"
        )
    return email


def check_role(role: str) -> str:
    if role not in ADMIN_ROLES:
        raise OperatorError(f"role must be one of {', '.join(ADMIN_ROLES)}")
    return role


def get(session: Session, email: str) -> AdminUser:
    user = repo.user_by_email(session, email.strip())
    if user is None:
        raise OperatorError(f"no admin user {email.strip().lower()!r}")
    return user


def create(
    session: Session, clock: Clock, *, email: str, role: str, password: str, actor: str
) -> AdminUser:
    email = normalize_email(email)
    check_role(role)
    password_hash = passwords.hash_password(password)
    if repo.user_by_email(session, email) is not None:
        raise OperatorError(f"admin user {email!r} already exists")
    now = clock.now()
    user = AdminUser(
        id=new_id(),
        email=email,
        role=role,
        password_hash=password_hash,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    _audit(session, clock, actor, "admin_user.create", user, None)
    return user


def set_role(session: Session, clock: Clock, email: str, role: str, *, actor: str) -> AdminUser:
    check_role(role)
    user = get(session, email)
    before = audit.user(user)
    if user.role == "owner" and role != "owner" and user.active:
        _keep_an_owner(session)
    user.role = role
    user.updated_at = clock.now()
    _audit(session, clock, actor, "admin_user.set_role", user, before)
    return user


def deactivate(session: Session, clock: Clock, email: str, *, actor: str) -> AdminUser:
    user = get(session, email)
    before = audit.user(user)
    if user.role == "owner" and user.active:
        _keep_an_owner(session)
    user.active = False
    user.updated_at = clock.now()
    repo.end_sessions_of(session, user.id, clock.now())
    _audit(session, clock, actor, "admin_user.deactivate", user, before)
    return user


def reset_password(
    session: Session, clock: Clock, email: str, password: str, *, actor: str
) -> AdminUser:
    user = get(session, email)
    user.password_hash = passwords.hash_password(password)
    user.updated_at = clock.now()
    # A new password signs every browser out: a leaked session must not outlive the reset.
    repo.end_sessions_of(session, user.id, clock.now())
    _audit(session, clock, actor, "admin_user.reset_password", user, audit.user(user))
    return user


def list_all(session: Session) -> Sequence[AdminUser]:
    return repo.users(session)


def _keep_an_owner(session: Session) -> None:
    if repo.active_owner_count(session) <= 1:
        raise OperatorError("this is the last active owner; make another user owner first")


def _audit(
    session: Session,
    clock: Clock,
    actor: str,
    action: str,
    user: AdminUser,
    before: audit.Snapshot | None,
) -> None:
    session.flush()
    audit.record(
        session,
        clock,
        actor=actor,
        action=action,
        entity="admin_user",
        entity_id=user.email,
        location_id=None,
        before=before,
        after=audit.user(user),
    )
