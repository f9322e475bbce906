"""request_id semantics (api-v2.md §5): one key, one outcome, forever."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from kotally.db.errors import is_lock_timeout
from kotally.errors import IdempotencyKeyReused, RequestInProgress
from kotally.idempotency import repository
from kotally.kit.clock import Clock
from kotally.ledger.outcomes import Outcome, Refusal


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def fingerprint(endpoint: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps([endpoint, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(
    session: Session,
    clock: Clock,
    *,
    location_id: str,
    request_id: str,
    endpoint: str,
    payload: dict[str, Any],
    correlation_id: str,
    operation: Callable[[], Outcome],
) -> Reply:
    """Run `operation` at most once for (location, request_id), in the caller's transaction.

    The claim is written in the same transaction as the work, so a crash or rollback leaves
    neither behind; the caller must commit before answering.
    """
    digest = fingerprint(endpoint, payload)
    try:
        record_id = repository.claim(
            session,
            location_id=location_id,
            request_id=request_id,
            endpoint=endpoint,
            fingerprint=digest,
            payload=payload,
            now=clock.now(),
        )
    except OperationalError as exc:
        if is_lock_timeout(exc):
            raise RequestInProgress() from exc
        raise
    if record_id is None:
        return _replay(session, location_id, request_id, endpoint, digest, payload)

    try:
        outcome = operation()
    except Refusal as refusal:
        outcome = refusal.outcome
    body = outcome.body(correlation_id)
    if outcome.stored:
        repository.complete(session, record_id, 200, body, clock.now())
    else:
        repository.release(session, record_id)
    return Reply(200, body)


def _replay(
    session: Session,
    location_id: str,
    request_id: str,
    endpoint: str,
    digest: str,
    payload: dict[str, Any],
) -> Reply:
    record = repository.get(session, location_id, request_id)
    if record is None:  # the other claim was rolled back between our insert and this read
        raise RequestInProgress()
    return replay(record, endpoint, digest, payload)


class StoredRecord(Protocol):
    """What a replay reads of a request_id's record (a mapped row, or a SQL function's answer)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def state(self) -> str: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def response(self) -> dict[str, Any] | None: ...


def replay(record: StoredRecord, endpoint: str, digest: str, payload: dict[str, Any]) -> Reply:
    """The stored answer of a request_id claimed before, or why there is none to give yet."""
    if record.endpoint != endpoint or record.fingerprint != digest:
        raise IdempotencyKeyReused(
            conflicting_fields=_conflicting_fields(
                record.endpoint, record.payload, endpoint, payload
            )
        )
    if record.state != "completed" or record.response is None or record.status_code is None:
        raise RequestInProgress()
    return Reply(record.status_code, record.response, replayed=True)


def _conflicting_fields(
    old_endpoint: str, old: dict[str, Any], new_endpoint: str, new: dict[str, Any]
) -> list[str]:
    fields = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return (["endpoint"] if old_endpoint != new_endpoint else []) + fields
