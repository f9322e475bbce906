"""Upcoming vs past appointments as the clock moves, and the merged timeline."""

from __future__ import annotations

from datetime import timedelta

from kotally.contacts import reads
from kotally.kit.clock import FrozenClock, isoformat
from tests.contacts.conftest import Reader
from tests.factories import Ledger


def _refs(body: dict[str, list[dict[str, str]]]) -> list[str]:
    return [a["external_ref"] for a in body["appointments"]]


def test_upcoming_and_past_split_moves_with_the_clock(
    ledger: Ledger, read: Reader, clock: FrozenClock
) -> None:
    ledger.grant()
    now = clock.now()
    for ref, offset in [("in_2d", 2 * 24), ("in_1h", 1), ("1d_ago", -24), ("now", 0)]:
        ledger.deduct(
            external_ref=ref, appointment_time=(now + timedelta(hours=offset)).isoformat()
        )

    assert _refs(read(reads.appointments_upcoming)) == ["now", "in_1h", "in_2d"]
    assert _refs(read(reads.appointments_past)) == ["1d_ago"]

    clock.advance(timedelta(hours=1))  # "in_1h" starts now: still upcoming (start >= now)
    assert _refs(read(reads.appointments_upcoming)) == ["in_1h", "in_2d"]
    assert _refs(read(reads.appointments_past)) == ["now", "1d_ago"]

    clock.advance(timedelta(days=3))
    assert _refs(read(reads.appointments_upcoming)) == []
    assert _refs(read(reads.appointments_past)) == ["in_2d", "in_1h", "now", "1d_ago"]


def test_appointment_without_a_time_is_past_at_its_recording_time(
    ledger: Ledger, read: Reader, clock: FrozenClock
) -> None:
    ledger.grant()
    start = clock.now()
    ledger.deduct(
        external_ref="timed_earlier", appointment_time=(start - timedelta(hours=2)).isoformat()
    )
    clock.advance(timedelta(hours=1))
    ledger.deduct(external_ref="untimed")  # recorded at start + 1h
    ledger.deduct(
        external_ref="timed_later", appointment_time=(start + timedelta(minutes=30)).isoformat()
    )
    clock.advance(timedelta(hours=1))

    assert _refs(read(reads.appointments_upcoming)) == []
    assert _refs(read(reads.appointments_past)) == ["untimed", "timed_later", "timed_earlier"]
    untimed = read(reads.appointments_past)["appointments"][0]
    assert untimed["appointment_time"] is None


def test_an_upcoming_page_boundary_survives_equal_times(
    ledger: Ledger, read: Reader, clock: FrozenClock
) -> None:
    ledger.grant()
    at = clock.now() + timedelta(days=1)
    for n in range(5):
        ledger.deduct(external_ref=f"b{n}", appointment_time=at.isoformat())
    pages = read.pages(reads.appointments_upcoming, "appointments", 2)
    assert [len(p) for p in pages] == [2, 2, 1]
    ids = [a["id"] for page in pages for a in page]
    assert ids == sorted(ids)


def test_timeline_merges_the_three_kinds_newest_first(
    ledger: Ledger, read: Reader, clock: FrozenClock
) -> None:
    t0 = clock.now()
    ledger.grant(external_payment_id="p1", paid_at=(t0 - timedelta(days=1)).isoformat())
    clock.set(t0 + timedelta(hours=1))
    ledger.deduct(external_ref="b1", appointment_time=(t0 + timedelta(days=2)).isoformat())
    clock.set(t0 + timedelta(hours=2))
    ledger.deduct(external_ref="b2")  # no time: the appointment sits at its created_at
    clock.set(t0 + timedelta(hours=3))
    ledger.grant(external_payment_id="p2")  # no paid_at: the payment sits at its created_at

    items = read(reads.timeline)["items"]

    def label(item: dict[str, str]) -> str:
        if item["type"] == "ledger_entry":
            return f"{item['kind']}:{item['external_ref'] or item['request_id'][:5]}"
        if item["type"] == "appointment":
            return f"appointment:{item['external_ref']}"
        return f"payment:{item['external_payment_id']}"

    assert [(label(i), i["at"]) for i in items] == [
        ("appointment:b1", isoformat(t0 + timedelta(days=2))),
        ("grant:grant", isoformat(t0 + timedelta(hours=3))),
        ("payment:p2", isoformat(t0 + timedelta(hours=3))),
        ("deduct:b2", isoformat(t0 + timedelta(hours=2))),
        ("appointment:b2", isoformat(t0 + timedelta(hours=2))),
        ("deduct:b1", isoformat(t0 + timedelta(hours=1))),
        ("grant:grant", isoformat(t0)),
        ("payment:p1", isoformat(t0 - timedelta(days=1))),
    ]
    for size in (1, 2, 3):  # every page boundary falls somewhere among the ties
        pages = read.pages(reads.timeline, "items", size)
        assert [i for page in pages for i in page] == items


def test_timeline_items_carry_the_form_of_their_kind(ledger: Ledger, read: Reader) -> None:
    ledger.grant(external_payment_id="p1", amount_cents=100)
    ledger.deduct(external_ref="b1")
    items = read(reads.timeline)["items"]
    by_type = {item["type"]: item for item in items}
    assert set(by_type["payment"]) == {"type", "at", *read(reads.payments)["payments"][0]}
    assert set(by_type["appointment"]) == {
        "type",
        "at",
        *read(reads.appointments_past)["appointments"][0],
    }
    entries = read(reads.ledger)["entries"]
    assert set(by_type["ledger_entry"]) == {"type", "at", *entries[0]}
    assert [i["id"] for i in items if i["type"] == "ledger_entry"] == [e["id"] for e in entries]
