"""The deduct and the check on SQLite: raw sqlite3 statements (ledger/sqlite_ops.py) that write
what the ORM wrote, in the caller's transaction. And rules of the deduct both databases keep."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import event, inspect, text
from sqlalchemy.orm import Session

from kotally.db.engine import Database
from kotally.db.models import Appointment, Entitlement, IdempotencyRecord, LedgerEntry, Location
from kotally.errors import RequestInProgress
from kotally.idempotency.service import fingerprint
from kotally.kit.clock import FrozenClock
from kotally.ledger import appointments, sqlite_ops
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import ContactRef, DeductRequest
from tests.factories import Ledger, lot, make_config, rows, studio

LEDGER_TABLES = ("entitlements", "ledger_entries", "idempotency_records", "appointments")


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    return studio(db, clock)


def _sqlite_only(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the raw statements are SQLite's")


def _words(sql: str) -> str:
    return " ".join(sql.split())


@contextmanager
def _watch(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """What runs: the raw statements of sqlite_ops (by sqlite3's trace), the statements sent
    through SQLAlchemy, and the objects any ORM flush writes."""
    seen: dict[str, list[Any]] = {"raw": [], "orm": [], "flushed": [], "calls": []}

    def traced(name: str) -> Any:
        original = getattr(sqlite_ops, name)

        def run(conn: Any, *args: Any, **kwargs: Any) -> Any:
            seen["calls"].append(name)
            conn.set_trace_callback(lambda sql: seen["raw"].append(_words(sql)))
            try:
                return original(conn, *args, **kwargs)
            finally:
                conn.set_trace_callback(None)

        return run

    def sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen["orm"].append(_words(statement))

    def flushing(session: Session, *_: Any) -> None:
        seen["flushed"].extend([*session.new, *session.dirty])

    with monkeypatch.context() as patch:
        patch.setattr(sqlite_ops, "deduct", traced("deduct"))
        patch.setattr(sqlite_ops, "check", traced("check"))
        event.listen(db.engine, "before_cursor_execute", sent)
        event.listen(Session, "before_flush", flushing)
        try:
            yield seen
        finally:
            event.remove(Session, "before_flush", flushing)
            event.remove(db.engine, "before_cursor_execute", sent)


def _starts(statements: list[str]) -> list[str]:
    return [" ".join(s.split()[:3]) for s in statements]


def test_a_deduct_on_sqlite_is_raw_statements_not_the_orm(
    ledger: Ledger, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sqlite_only(db)
    ledger.grant()
    sent = [
        ({"request_id": "raw-1", "external_ref": "booking_1"}, "deducted"),
        ({"request_id": "raw-1", "external_ref": "booking_1"}, "deducted"),  # the replay
        ({"request_id": "raw-2", "amount": 99}, "INSUFFICIENT_CREDITS"),
    ]
    # The lookup of the request_id, and its record written once, completed, at the end.
    lookup, facts = "SELECT endpoint, fingerprint,", "WITH selected(id) AS"
    record = "INSERT INTO idempotency_records"
    expected = [
        [lookup, facts, "UPDATE entitlements SET", "INSERT INTO ledger_entries",
         "INSERT INTO appointments", record],
        [lookup],  # nothing written: the stored answer
        [lookup, facts, record],
    ]  # fmt: skip
    for (fields, reason), statements in zip(sent, expected, strict=True):
        with _watch(db, monkeypatch) as seen:
            assert ledger.deduct(**fields)["reason_code"] == reason
        assert seen["calls"] == ["deduct"]
        assert _starts(seen["raw"]) == statements, seen["raw"]
        # Through SQLAlchemy only the transaction and the caller's own read of the location.
        assert not [s for s in seen["orm"] if any(t in s for t in LEDGER_TABLES)], seen["orm"]
        assert seen["flushed"] == []


@pytest.mark.parametrize(
    "selection", [{}, {"product_config_id": None, "calendar_id": "cal_1"}], ids=["config", "cal"]
)
def test_a_check_on_sqlite_is_one_raw_statement(
    ledger: Ledger, db: Database, monkeypatch: pytest.MonkeyPatch, selection: dict[str, Any]
) -> None:
    _sqlite_only(db)
    ledger.grant()
    with _watch(db, monkeypatch) as seen:
        assert ledger.check(**selection)["reason_code"] == "eligible"
    assert seen["calls"] == ["check"]
    assert _starts(seen["raw"]) == ["WITH selected(id) AS"]
    assert not [s for s in seen["orm"] if any(t in s for t in LEDGER_TABLES)], seen["orm"]


def _stored_as_sqlalchemy_stores(db: Database, obj: Any) -> None:
    """Every column of the row `obj` was read from holds what SQLAlchemy writes for the value
    the ORM read back: the same text, the same type (uuids, times, JSON, integers)."""
    mapper = inspect(type(obj))
    table = mapper.local_table
    dialect = db.engine.dialect
    columns = list(table.columns)
    key = columns[0]
    assert key.name == "id"

    def stored(column: Any, value: Any) -> Any:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return process(value) if process is not None else value

    names = ", ".join(c.name for c in columns)
    with db.engine.connect() as conn:
        row = conn.exec_driver_sql(
            f"SELECT {names} FROM {table.name} WHERE id = ?", (stored(key, obj.id),)
        ).one()
    for column, raw in zip(columns, row, strict=True):
        expected = stored(column, getattr(obj, mapper.get_property_by_column(column).key))
        assert (type(raw), raw) == (type(expected), expected), (table.name, column.name)


def test_rows_written_by_the_raw_deduct_read_back_through_the_orm(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    _sqlite_only(db)
    make_config(db, clock, "pc_small", credits=2, expiry_days=30, calendars=["cal_1"])
    small = ledger.grant(product_config_id="pc_small")["entitlement_id"]
    big = ledger.grant()["entitlement_id"]
    clock.set(datetime(2026, 4, 17, 9, 30, 15, 123456, tzinfo=UTC))
    fields = {
        "ghl_contact_id": "ghl_contact_123",
        "product_config_id": None,
        "calendar_id": "cal_1",
        "amount": 3,
        "request_id": "read-back",
        "external_ref": "booking_1",
        "appointment_time": "2026-05-01T12:00:00.5+02:00",
    }
    body = ledger.deduct(**fields)
    assert body["consumed"] == [
        {"entitlement_id": small, "amount": 2},
        {"entitlement_id": big, "amount": 1},
    ]
    again = ledger.deduct(**{**fields, "request_id": "read-back-2", "amount": 1})
    assert again["balance_after"] == 8

    now = clock.now()
    at = datetime(2026, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)
    entries = rows(db, LedgerEntry, LedgerEntry.kind == "deduct")
    contact_id = lot(db, big).contact_id
    assert [(e.entitlement_id, e.amount, e.balance_after) for e in entries] == [
        (uuid.UUID(small), -2, 0),
        (uuid.UUID(big), -1, 9),
        (uuid.UUID(big), -1, 8),
    ]
    for entry in entries:
        assert isinstance(entry.id, int)
        assert (entry.contact_id, entry.created_at, entry.appointment_time) == (contact_id, now, at)
        assert (entry.request_id is not None, entry.external_ref) == (True, "booking_1")
        _stored_as_sqlalchemy_stores(db, entry)
    assert [entry.id for entry in entries] == sorted(entry.id for entry in entries)
    for lot_id, status in ((small, "exhausted"), (big, "active")):
        row = lot(db, lot_id)
        assert row.status == status
        _stored_as_sqlalchemy_stores(db, row)

    [appointment] = rows(db, Appointment)
    assert isinstance(appointment.id, uuid.UUID)
    assert (appointment.contact_id, appointment.calendar_id) == (contact_id, "cal_1")
    assert (appointment.credits_deducted, appointment.status, appointment.refusal) == (
        4,
        "booked",
        None,
    )
    assert (appointment.created_at, appointment.updated_at, appointment.appointment_time) == (
        now,
        now,
        at,
    )
    _stored_as_sqlalchemy_stores(db, appointment)

    records = rows(db, IdempotencyRecord, IdempotencyRecord.endpoint == "deduct")
    assert [r.request_id for r in records] == ["read-back", "read-back-2"]
    [record] = records[:1]
    request = DeductRequest.model_validate({"location_id": "loc_1", **fields})
    assert record.payload == request.payload()
    assert record.fingerprint == fingerprint("deduct", request.payload())
    assert (record.state, record.status_code, record.response) == ("completed", 200, body)
    assert (record.created_at, record.completed_at) == (now, now)
    for record in records:
        _stored_as_sqlalchemy_stores(db, record)


def test_a_database_error_in_the_raw_deduct_is_sqlalchemys_and_applies_nothing(
    ledger: Ledger, db: Database
) -> None:
    """A sqlite3 error comes out as the ORM's did (so a busy database still answers 503)."""
    _sqlite_only(db)
    ledger.grant()
    refuse = (
        "CREATE TRIGGER test_no_entries BEFORE INSERT ON ledger_entries "
        "WHEN NEW.kind = 'deduct' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    with db.engine.begin() as conn:
        conn.execute(text(refuse))
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="refused by the test"):
        ledger.deduct(request_id="refused", external_ref="booking_1")
    with db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER test_no_entries"))

    assert ledger.check()["balance_after"] == 9  # 10 credits: nothing was taken
    assert rows(db, Appointment) == []
    assert rows(db, IdempotencyRecord, IdempotencyRecord.endpoint == "deduct") == []
    assert ledger.deduct(request_id="refused")["reason_code"] == "deducted"


# --- Rules of the deduct, on both databases ----------------------------------------------------


def test_a_ref_of_another_contacts_booking_is_kept_on_the_entries_only(
    ledger: Ledger, db: Database
) -> None:
    mine = lot(db, ledger.grant()["entitlement_id"]).contact_id
    theirs = lot(db, ledger.grant(ghl_contact_id="ghl_other")["entitlement_id"]).contact_id
    ledger.deduct(external_ref="booking_1", amount=2)

    body = ledger.deduct(
        ghl_contact_id="ghl_other",
        external_ref="booking_1",
        calendar_id="cal_1",
        appointment_time="2026-05-02T09:00:00Z",
    )

    assert body["reason_code"] == "deducted"
    [appointment] = rows(db, Appointment)
    assert (appointment.contact_id, appointment.credits_deducted) == (mine, 2)
    assert appointment.appointment_time is None
    [entry] = rows(db, LedgerEntry, LedgerEntry.contact_id == theirs, LedgerEntry.kind == "deduct")
    assert (entry.external_ref, entry.amount) == ("booking_1", -1)


def test_a_deduct_books_a_booking_shown_as_refused(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant()
    with db.unit_of_work() as session:
        ctx = LedgerContext(session, clock, session.get_one(Location, "loc_1"), "cid", "test")
        assert appointments.record_refused_booking(
            ctx,
            contact=ContactRef(value="ghl_contact_123", field="ghl_contact_id"),
            external_ref="booking_1",
            calendar_id="cal_1",
            appointment_time=None,
            refusal="INSUFFICIENT_CREDITS",
        )
    assert rows(db, Appointment)[0].refusal == "INSUFFICIENT_CREDITS"

    ledger.deduct(external_ref="booking_1", appointment_time="2026-05-02T09:00:00Z")

    [appointment] = rows(db, Appointment)
    assert (appointment.status, appointment.refusal, appointment.credits_deducted) == (
        "booked",
        None,
        1,
    )
    assert appointment.calendar_id == "cal_1"
    assert appointment.appointment_time == datetime(2026, 5, 2, 9, 0, tzinfo=UTC)


def test_a_config_with_two_calendars_records_none(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_two", calendars=["cal_a", "cal_b"])
    ledger.grant(product_config_id="pc_two")

    ledger.deduct(product_config_id="pc_two", external_ref="booking_1")

    assert [a.calendar_id for a in rows(db, Appointment)] == [None]


def test_a_request_id_left_in_progress_is_request_in_progress(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant()
    request = {"location_id": "loc_1", "request_id": "stuck", "ghl_contact_id": "ghl_contact_123"}
    payload = DeductRequest.model_validate({**request, "product_config_id": "pc_package_1"})
    with db.unit_of_work() as session:
        session.add(
            IdempotencyRecord(
                id=uuid.uuid4(),
                location_id="loc_1",
                request_id="stuck",
                endpoint="deduct",
                fingerprint=fingerprint("deduct", payload.payload()),
                payload=payload.payload(),
                state="in_progress",
                created_at=clock.now(),
            )
        )

    with pytest.raises(RequestInProgress):
        ledger.deduct(request_id="stuck")

    assert ledger.check()["balance_after"] == 9
    assert rows(db, Entitlement)[0].credits_remaining == 10
