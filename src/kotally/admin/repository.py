"""Queries of admin users, sessions and sign-in attempts (installation-wide, not per location)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from kotally.db.models import AdminSession, AdminUser, SignInAttempt


def user_by_email(session: Session, email: str) -> AdminUser | None:
    stmt = select(AdminUser).where(AdminUser.email == email.lower())
    return session.execute(stmt).scalar_one_or_none()


def user_by_id(session: Session, user_id: uuid.UUID) -> AdminUser | None:
    return session.get(AdminUser, user_id)


def users(session: Session) -> Sequence[AdminUser]:
    return session.execute(select(AdminUser).order_by(AdminUser.email)).scalars().all()


def active_owner_count(session: Session) -> int:
    stmt = select(func.count()).where(AdminUser.role == "owner", AdminUser.active.is_(True))
    return int(session.execute(stmt).scalar_one())


def session_by_id(session: Session, session_id: str) -> tuple[AdminSession, AdminUser] | None:
    stmt = (
        select(AdminSession, AdminUser)
        .join(AdminUser, AdminUser.id == AdminSession.admin_user_id)
        .where(AdminSession.id == session_id)
    )
    row = session.execute(stmt).first()
    return None if row is None else (row[0], row[1])


def end_sessions_of(session: Session, user_id: uuid.UUID, now: datetime) -> None:
    session.execute(
        update(AdminSession)
        .where(AdminSession.admin_user_id == user_id, AdminSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def failures_since(
    session: Session, *, email: str | None, address: str | None, since: datetime
) -> int:
    stmt = select(func.count()).select_from(SignInAttempt).where(SignInAttempt.attempted_at > since)
    if email is not None:
        stmt = stmt.where(SignInAttempt.email == email)
    if address is not None:
        stmt = stmt.where(SignInAttempt.address == address)
    return int(session.execute(stmt).scalar_one())


def add_failure(session: Session, email: str, address: str, at: datetime) -> None:
    session.add(SignInAttempt(email=email, address=address, attempted_at=at))


def forget_failures(
    session: Session, *, email: str | None = None, before: datetime | None = None
) -> None:
    stmt = delete(SignInAttempt)
    if email is not None:
        stmt = stmt.where(SignInAttempt.email == email)
    if before is not None:
        stmt = stmt.where(SignInAttempt.attempted_at <= before)
    session.execute(stmt)
