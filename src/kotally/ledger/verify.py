"""`kotally verify`: recompute every lot from the ledger and check the invariants of ledger.md."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from kotally.db.models import Appointment, Entitlement, IdempotencyRecord, LedgerEntry, Location
from kotally.db.scoping import scoped


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    expected: object
    found: object

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: expected {self.expected}, found {self.found}"


def verify(session: Session) -> list[Violation]:
    violations: list[Violation] = []
    for location_id in session.execute(select(Location.id).order_by(Location.id)).scalars():
        violations += _lots(session, location_id)
        violations += _chains(session, location_id)
        violations += _appointments(session, location_id)
        violations += _idempotency(session, location_id)
    return violations


def _lots(session: Session, location_id: str) -> list[Violation]:
    sums = (
        scoped(
            select(
                LedgerEntry.entitlement_id.label("lot_id"),
                func.sum(LedgerEntry.amount).label("total"),
                func.sum(case((LedgerEntry.kind == "adjust", LedgerEntry.amount), else_=0)).label(
                    "adjusted"
                ),
            ),
            LedgerEntry,
            location_id,
        )
        .group_by(LedgerEntry.entitlement_id)
        .subquery()
    )
    rows = session.execute(
        scoped(
            select(
                Entitlement.id,
                Entitlement.status,
                Entitlement.credits_granted,
                Entitlement.credits_remaining,
                func.coalesce(sums.c.total, 0),
                func.coalesce(sums.c.adjusted, 0),
            ),
            Entitlement,
            location_id,
        ).outerjoin(sums, sums.c.lot_id == Entitlement.id)
    )
    found: list[Violation] = []
    for lot_id, status, granted, remaining, total, adjusted in rows:
        subject = f"lot {lot_id}"
        if remaining != total:
            found.append(Violation("credits_remaining = sum of entries", subject, total, remaining))
        if not 0 <= remaining <= granted + adjusted:
            found.append(
                Violation(
                    "0 <= credits_remaining <= granted + adjustments",
                    subject,
                    f"0..{granted + adjusted}",
                    remaining,
                )
            )
        if status == "active" and remaining == 0:
            found.append(Violation("an active lot has credits", subject, "> 0", remaining))
        if status in ("exhausted", "expired", "voided") and remaining != 0:
            article = "a" if status == "voided" else "an"
            found.append(Violation(f"{article} {status} lot has no credits", subject, 0, remaining))
    return found


def _chains(session: Session, location_id: str) -> list[Violation]:
    """Each entry's balance_after is the running sum of its lot's entries up to it."""
    running = func.sum(LedgerEntry.amount).over(
        partition_by=LedgerEntry.entitlement_id, order_by=LedgerEntry.id
    )
    inner = scoped(
        select(
            LedgerEntry.id.label("entry_id"),
            LedgerEntry.balance_after.label("balance_after"),
            running.label("running"),
        ),
        LedgerEntry,
        location_id,
    ).subquery()
    rows = session.execute(
        select(inner.c.entry_id, inner.c.running, inner.c.balance_after).where(
            inner.c.running != inner.c.balance_after
        )
    )
    return [
        Violation("entry balance_after = running sum", f"ledger entry {entry_id}", run, after)
        for entry_id, run, after in rows
    ]


def _appointments(session: Session, location_id: str) -> list[Violation]:
    sums = (
        scoped(
            select(
                LedgerEntry.contact_id,
                LedgerEntry.external_ref,
                func.sum(case((LedgerEntry.kind == "deduct", -LedgerEntry.amount), else_=0)).label(
                    "deducted"
                ),
                func.sum(case((LedgerEntry.kind == "restore", LedgerEntry.amount), else_=0)).label(
                    "restored"
                ),
            ),
            LedgerEntry,
            location_id,
        )
        .where(LedgerEntry.external_ref.is_not(None))
        .group_by(LedgerEntry.contact_id, LedgerEntry.external_ref)
        .subquery()
    )
    rows = session.execute(
        scoped(
            select(
                Appointment.external_ref,
                Appointment.credits_deducted,
                Appointment.credits_restored,
                func.coalesce(sums.c.deducted, 0),
                func.coalesce(sums.c.restored, 0),
            ),
            Appointment,
            location_id,
        ).outerjoin(
            sums,
            and_(
                sums.c.contact_id == Appointment.contact_id,
                sums.c.external_ref == Appointment.external_ref,
            ),
        )
    )
    found: list[Violation] = []
    for ref, deducted, restored, entries_deducted, entries_restored in rows:
        subject = f"appointment {ref}"
        if deducted != entries_deducted:
            found.append(
                Violation(
                    "credits_deducted = sum of deduct entries", subject, entries_deducted, deducted
                )
            )
        if restored != entries_restored:
            found.append(
                Violation(
                    "credits_restored = sum of restore entries", subject, entries_restored, restored
                )
            )
    return found


def _idempotency(session: Session, location_id: str) -> list[Violation]:
    stuck = session.execute(
        scoped(select(IdempotencyRecord.request_id), IdempotencyRecord, location_id).where(
            IdempotencyRecord.state != "completed"
        )
    ).scalars()
    return [
        Violation(
            "a committed request_id is completed", f"request_id {rid!r}", "completed", "in_progress"
        )
        for rid in stuck
    ]
