"""Keyset pagination of the contact lists: stable under equal timestamps, no gaps, no repeats."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from kotally.contacts import reads
from kotally.kit.clock import FrozenClock
from kotally.kit.pagination import InvalidCursor
from tests.contacts.conftest import Reader, ReadFn
from tests.factories import Ledger

LISTS: list[tuple[ReadFn, str]] = [
    (reads.entitlements, "entitlements"),
    (reads.appointments_upcoming, "appointments"),
    (reads.appointments_past, "appointments"),
    (reads.ledger, "entries"),
    (reads.payments, "payments"),
    (reads.timeline, "items"),
]


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item.get("type", "") + ":" + item["id"] for item in items]


def _grants(ledger: Ledger, clock: FrozenClock) -> None:
    for _ in range(45):  # all at the same instant: only the id orders them
        ledger.grant(product_config_id="pc_big")


def _bookings(ledger: Ledger, clock: FrozenClock, days: int) -> None:
    ledger.grant(product_config_id="pc_big")
    for n in range(45):  # 15 distinct times, 3 appointments at each
        at = clock.now() + timedelta(days=days) + timedelta(hours=n // 3)
        ledger.deduct(
            product_config_id="pc_big", external_ref=f"booking_{n}", appointment_time=at.isoformat()
        )


def _deducts(ledger: Ledger, clock: FrozenClock) -> None:
    ledger.grant(product_config_id="pc_big")
    for _ in range(44):
        ledger.deduct(product_config_id="pc_big")


def _mixed(ledger: Ledger, clock: FrozenClock) -> None:
    # 9 grants (entry + payment), 9 bookings (entry + appointment), 9 plain deducts: 45 items,
    # all at one instant, so the order rests on type, then id.
    for n in range(9):
        ledger.grant(product_config_id="pc_big")
        ledger.deduct(product_config_id="pc_big", external_ref=f"booking_{n}")
        ledger.deduct(product_config_id="pc_big")


BUILDERS: dict[str, Callable[[Ledger, FrozenClock], None]] = {
    "entitlements": _grants,
    "appointments_upcoming": lambda ledger, clock: _bookings(ledger, clock, 1),
    "appointments_past": lambda ledger, clock: _bookings(ledger, clock, -30),
    "ledger": _deducts,
    "payments": _grants,
    "timeline": _mixed,
}


def _sorted_by_spec(read_fn: ReadFn, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order api-v2.md asks for, computed independently of the implementation."""
    name = read_fn.__name__
    if name == "ledger":
        return sorted(items, key=lambda e: int(e["id"]), reverse=True)
    if name == "timeline":
        rank = {"ledger_entry": 2, "appointment": 1, "payment": 0}
        return sorted(
            items,
            key=lambda i: (
                i["at"],
                rank[i["type"]],
                int(i["id"]) if i["type"] == "ledger_entry" else i["id"],
            ),
            reverse=True,
        )
    if name == "appointments_upcoming":
        return sorted(items, key=lambda a: (a["appointment_time"], a["id"]))
    if name == "appointments_past":
        return sorted(items, key=lambda a: (a["appointment_time"], a["id"]), reverse=True)
    time_field = "created_at" if name == "entitlements" else "paid_at"
    return sorted(items, key=lambda x: (x[time_field] or "", x["id"]), reverse=True)


@pytest.mark.parametrize(("read_fn", "name"), LISTS, ids=lambda v: getattr(v, "__name__", ""))
def test_45_items_page_as_20_20_5(
    ledger: Ledger, read: Reader, clock: FrozenClock, read_fn: ReadFn, name: str
) -> None:
    BUILDERS[read_fn.__name__](ledger, clock)
    if read_fn is reads.ledger:
        assert len(read(read_fn, limit=100)[name]) == 45

    pages = read.pages(read_fn, name, 20)

    assert [len(page) for page in pages] == [20, 20, 5]
    items = [item for page in pages for item in page]
    assert len(set(_ids(items))) == 45
    whole = read(read_fn, limit=100)
    assert "next_cursor" not in whole
    assert items == whole[name]
    assert items == _sorted_by_spec(read_fn, items)


@pytest.mark.parametrize(("read_fn", "name"), LISTS, ids=lambda v: getattr(v, "__name__", ""))
def test_any_page_size_gives_the_same_list(
    ledger: Ledger, read: Reader, clock: FrozenClock, read_fn: ReadFn, name: str
) -> None:
    BUILDERS[read_fn.__name__](ledger, clock)
    whole = read(read_fn, limit=100)[name]
    for limit in (1, 7, 44, 45):
        pages = read.pages(read_fn, name, limit)
        assert [item for page in pages for item in page] == whole, limit


def test_exact_fit_has_no_next_cursor(ledger: Ledger, read: Reader) -> None:
    for _ in range(3):
        ledger.grant()
    assert "next_cursor" not in read(reads.payments, limit=3)
    assert "next_cursor" in read(reads.payments, limit=2)


def test_empty_list_has_no_next_cursor(ledger: Ledger, read: Reader) -> None:
    ledger.grant()
    assert read(reads.appointments_upcoming) == {"appointments": []}


def test_rows_added_after_a_page_do_not_shift_later_pages(
    ledger: Ledger, read: Reader, clock: FrozenClock
) -> None:
    _deducts(ledger, clock)
    first = read(reads.ledger, limit=20)
    for _ in range(5):
        ledger.deduct(product_config_id="pc_big")  # newer: before the cursor, never on page 2
    second = read(reads.ledger, limit=20, cursor=first["next_cursor"])
    assert int(second["entries"][0]["id"]) == int(first["entries"][-1]["id"]) - 1


def _b64(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = [
    "",
    "!!!",
    "not a cursor",
    "é",
    _b64(b"\xff\xfe"),
    _b64(b"{not json"),
    _b64({"at": 1}),
    _b64([]),
    _b64(["x", "2026-04-16T00:00:00+00:00", "a1a0c1d4-5c49-4d8f-9d50-1c3b2b4d6f00"]),
    _b64(["e", "2026-04-16T00:00:00", "a1a0c1d4-5c49-4d8f-9d50-1c3b2b4d6f00"]),  # naive
    _b64(["e", "yesterday", "a1a0c1d4-5c49-4d8f-9d50-1c3b2b4d6f00"]),
    _b64(["e", "2026-04-16T00:00:00+00:00", "not-a-uuid"]),
    _b64(["e", "2026-04-16T00:00:00+00:00"]),
    _b64(["l", "12"]),
    _b64(["l", True]),
    _b64(["l", -1]),
    _b64(["l", 2**70]),
    _b64(["t", "2026-04-16T00:00:00+00:00", "grant", "1"]),
    _b64(["t", "2026-04-16T00:00:00+00:00", "ledger_entry", "²"]),
    _b64(["t", "2026-04-16T00:00:00+00:00", "ledger_entry", 1]),
    _b64(["t", "2026-04-16T00:00:00+00:00", "payment", "1"]),
    "A" * 600,
]


@pytest.mark.parametrize(("read_fn", "name"), LISTS, ids=lambda v: getattr(v, "__name__", ""))
def test_malformed_cursor_raises_invalid_cursor(
    ledger: Ledger, read: Reader, read_fn: ReadFn, name: str
) -> None:
    ledger.grant()
    for cursor in BAD_CURSORS:
        with pytest.raises(InvalidCursor) as raised:
            read(read_fn, cursor=cursor)
        assert isinstance(raised.value, ValueError)
        assert raised.value.field == "cursor"
        with pytest.raises(InvalidCursor):  # checked before the contact is looked up
            read(read_fn, "nobody", cursor=cursor)


def test_a_cursor_of_another_list_is_refused(ledger: Ledger, read: Reader) -> None:
    for _ in range(3):
        ledger.grant()
    cursors = {
        read_fn.__name__: read(read_fn, limit=1)["next_cursor"]
        for read_fn in (reads.entitlements, reads.payments, reads.ledger, reads.timeline)
    }
    assert read(reads.payments, limit=1, cursor=cursors["payments"])["payments"]
    for read_fn, _ in LISTS:
        for source, cursor in cursors.items():
            if source != read_fn.__name__:
                with pytest.raises(InvalidCursor):
                    read(read_fn, cursor=cursor)


def test_check_cursor_decides_as_the_reader(ledger: Ledger, read: Reader) -> None:
    # The router checks the cursor before LOCATION_MISMATCH; the reader decodes it again.
    for _ in range(3):
        ledger.grant()
    cursors = {
        read_fn: read(read_fn, limit=1)["next_cursor"]
        for read_fn in (reads.entitlements, reads.payments, reads.ledger, reads.timeline)
    }
    for read_fn, _ in LISTS:
        reads.check_cursor(read_fn, None)
        for source, cursor in cursors.items():
            if source is read_fn:
                reads.check_cursor(read_fn, cursor)
                read(read_fn, cursor=cursor)
                continue
            with pytest.raises(InvalidCursor):
                reads.check_cursor(read_fn, cursor)
        for cursor in BAD_CURSORS:
            with pytest.raises(InvalidCursor):
                reads.check_cursor(read_fn, cursor)


@pytest.mark.parametrize("limit", [0, -1, 101, True])
def test_limit_outside_1_to_100_is_a_programming_error(
    ledger: Ledger, read: Reader, limit: int
) -> None:
    ledger.grant()
    with pytest.raises(ValueError, match="limit") as raised:
        read(reads.ledger, limit=limit)
    assert not isinstance(raised.value, InvalidCursor)


def test_cursor_keeps_microseconds(ledger: Ledger, read: Reader, clock: FrozenClock) -> None:
    # Five payments inside one millisecond: the API shows them at the same time, the cursor must
    # still tell them apart.
    for _ in range(5):
        ledger.grant()
        clock.advance(timedelta(microseconds=100))
    for read_fn, name in [(reads.payments, "payments"), (reads.timeline, "items")]:
        pages = read.pages(read_fn, name, 1)
        assert [item for page in pages for item in page] == read(read_fn)[name]
        assert len(pages) == (5 if name == "payments" else 10)
