"""Hand-written hostile inputs, shared by the live suite and tests/reliability (ASGI).

Each case is a raw request and the statuses the contract allows for it. Every answer must also be a
JSON envelope with the security headers and no internals (load.check_envelope), never a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.load import Answer, Figures, check_envelope

BODY_BYTES_MAX = 64 * 1024
GRANT = "/api/v2/grants"
DEDUCT = "/api/v2/entitlements/deduct"
CHECK = "/api/v2/entitlements/check-eligibility"
RESTORE = "/api/v2/entitlements/restore"


@dataclass
class Case:
    name: str
    path: str
    content: bytes | None
    allowed: set[int]
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    reasons: set[str] | None = None  # when set, the reason_code must be one of these


def _deduct(location: str, contact: str, **kw: Any) -> dict[str, Any]:
    return {
        "location_id": location,
        "request_id": kw.pop("request_id", "hostile-1"),
        "external_contact_id": contact,
        "product_config_id": "pc_20",
        **kw,
    }


def _grant(location: str, contact: str, **kw: Any) -> dict[str, Any]:
    return {
        "location_id": location,
        "request_id": kw.pop("request_id", "hostile-grant"),
        "external_payment_id": kw.pop("external_payment_id", "hostile-pay"),
        "external_contact_id": contact,
        "product_config_id": "pc_20",
        **kw,
    }


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


def cases(location: str, contact: str) -> Iterator[Case]:
    """Every case for a location whose pc_20 config exists and a contact with credits."""
    ok200 = {200}
    v422 = {422}
    # Body limits: declared, undeclared (chunked) and exactly at the limit.
    big = _j(_deduct(location, contact, external_ref="x" * (BODY_BYTES_MAX + 10)))
    yield Case("body over the limit (Content-Length)", DEDUCT, big, {413})
    yield Case("body over the limit, no Content-Length", DEDUCT, None, {413})  # streamed, see send
    yield Case(
        "metadata over 8 KiB",
        GRANT,
        _j(_grant(location, contact, metadata={"x": "y" * 9000})),
        v422,
    )
    # Deep nesting: JSON bombs that would blow the stack or the CPU.
    yield Case("30k nested arrays", DEDUCT, b"[" * 30_000 + b"]" * 30_000, {400})
    yield Case(
        "100k nested objects", DEDUCT, b'{"a":' * 20_000 + b"1" + b"}" * 20_000, {400, 413, 422}
    )
    deep_meta = (
        b'{"location_id":"%s","request_id":"deep","external_payment_id":"deep","external_contact_id":"%s","product_config_id":"pc_20","metadata":'
        % (location.encode(), contact.encode())
    )
    yield Case("deep metadata", GRANT, deep_meta + b'{"a":' * 5000 + b"1" + b"}" * 5001, {400, 422})
    # NUL and control characters.
    for name, value in [("NUL", "a\x00b"), ("ESC", "a\x1bb"), ("DEL", "a\x7f"), ("C1", "a\x85")]:
        yield Case(
            f"{name} in request_id", DEDUCT, _j(_deduct(location, contact, request_id=value)), v422
        )
        yield Case(f"{name} in contact id", DEDUCT, _j(_deduct(location, value)), v422)
        yield Case(f"{name} in location_id", DEDUCT, _j(_deduct(value, contact)), v422)
        yield Case(
            f"{name} in email",
            GRANT,
            _j(
                _grant(
                    location,
                    contact,
                    email=f"a{value}@b.c",
                    request_id=f"g-{name}",
                    external_payment_id=f"p-{name}",
                )
            ),
            v422,
        )
        yield Case(
            f"{name} in metadata",
            GRANT,
            _j(
                _grant(
                    location,
                    contact,
                    metadata={"k": value, value: 1},
                    request_id=f"m-{name}",
                    external_payment_id=f"pm-{name}",
                )
            ),
            ok200 | v422,
        )
    yield Case(
        "raw NUL byte in body", DEDUCT, b'{"location_id":"' + location.encode() + b'\x00"}', {400}
    )
    # Overlong values.
    yield Case(
        "overlong request_id", DEDUCT, _j(_deduct(location, contact, request_id="r" * 256)), v422
    )
    yield Case("overlong contact id", DEDUCT, _j(_deduct(location, "c" * 256)), v422)
    yield Case(
        "overlong product_config_id",
        CHECK,
        _j(
            {
                "location_id": location,
                "external_contact_id": contact,
                "product_config_id": "p" * 10_000,
            }
        ),
        v422,
    )
    yield Case(
        "request_id at the limit",
        DEDUCT,
        _j(_deduct(location, contact, request_id="r" * 255)),
        ok200,
    )
    # Wrong types.
    for amount in ["1", 1.5, True, None, [], {}, 0, -1, 10_001]:
        yield Case(
            f"amount {amount!r}",
            DEDUCT,
            _j(_deduct(location, contact, amount=amount, request_id=f"amt-{amount!r}")),
            v422,
        )
    for bad in [1, 1.0, True, [], {}, None]:
        yield Case(
            f"request_id {bad!r}", DEDUCT, _j(_deduct(location, contact, request_id=bad)), v422
        )
        yield Case(f"location_id {bad!r}", DEDUCT, _j(_deduct(bad, contact)), v422)  # type: ignore[arg-type]
    yield Case("metadata a list", GRANT, _j(_grant(location, contact, metadata=[1, 2])), v422)
    yield Case(
        "paid_at a number", GRANT, _j(_grant(location, contact, paid_at=1_700_000_000)), v422
    )
    yield Case("paid_at garbage", GRANT, _j(_grant(location, contact, paid_at="yesterday")), v422)
    for name, body in [
        ("array", b"[]"),
        ("string", b'"x"'),
        ("number", b"1"),
        ("null", b"null"),
        ("empty", b""),
        ("truncated", b'{"a":'),
        ("trailing comma", b'{"a":1,}'),
        ("single quotes", b"{'a':1}"),
        ("NaN", b'{"amount": NaN}'),
        ("Infinity", b'{"a": -Infinity}'),
    ]:
        yield Case(f"body {name}", DEDUCT, body, {400})
    yield Case("no content type", DEDUCT, _j(_deduct(location, contact)), {415}, headers={})
    yield Case(
        "text/plain",
        DEDUCT,
        _j(_deduct(location, contact)),
        {415},
        headers={"Content-Type": "text/plain"},
    )
    yield Case(
        "form body",
        DEDUCT,
        b"a=1",
        {415},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    # Unicode edge cases.
    yield Case("invalid UTF-8", DEDUCT, b'{"location_id":"\xff\xfe"}', {400})
    yield Case(
        "UTF-16 body", DEDUCT, _j(_deduct(location, contact)).decode().encode("utf-16"), {400}
    )
    yield Case(
        "BOM before body",
        DEDUCT,
        b"\xef\xbb\xbf" + _j(_deduct(location, contact, request_id="bom")),
        {200, 400},
    )
    for name, value in [
        ("lone high surrogate", "\\ud800"),
        ("lone low surrogate", "\\udfff"),
        ("reversed pair", "\\udc00\\ud800"),
    ]:
        raw = f'{{"location_id":"{location}","request_id":"s{value}","external_contact_id":"{contact}","product_config_id":"pc_20"}}'
        yield Case(f"{name} in request_id", DEDUCT, raw.encode(), {400, 422})
        raw = f'{{"location_id":"{location}","request_id":"sg-{name}","external_payment_id":"sp-{name}","external_contact_id":"{contact}","product_config_id":"pc_20","name":"x{value}","email":"a{value}@b.c","metadata":{{"k{value}":"v{value}"}}}}'
        yield Case(f"{name} in grant hints", GRANT, raw.encode(), {400, 422})
    for name, value in [
        ("emoji", "😀"),
        ("RTL override", "a\u202eb"),
        ("zero-width joiner", "a\u200db"),
        ("combining marks", "e" + "\u0301" * 200),
        ("BOM char", "\ufeffx"),
        ("noncharacter", "\uffff"),
        ("astral", "\U0010ffff"),
    ]:
        yield Case(
            f"{name} in ids",
            GRANT,
            _j(
                _grant(
                    location,
                    f"u-{value}",
                    request_id=f"u-{value}",
                    external_payment_id=f"up-{value}",
                    name=value,
                    metadata={value: value},
                )
            ),
            ok200,
        )
    yield Case(
        "255 emoji id", DEDUCT, _j(_deduct(location, "😀" * 255, request_id="emoji-255")), ok200
    )
    yield Case(
        "256 emoji id", DEDUCT, _j(_deduct(location, "😀" * 256, request_id="emoji-256")), v422
    )
    # Duplicate keys: which one wins is undefined, so refuse.
    yield Case(
        "duplicate key",
        DEDUCT,
        b'{"location_id":"%s","location_id":"other"}' % location.encode(),
        {400},
    )
    yield Case("duplicate nested key", GRANT, b'{"metadata":{"a":1,"a":2}}', {400})
    # Huge integers and numbers.
    yield Case(
        "huge amount",
        DEDUCT,
        b'{"location_id":"%s","request_id":"h","external_contact_id":"%s","product_config_id":"pc_20","amount":%s}'
        % (location.encode(), contact.encode(), b"9" * 40),
        v422,
    )
    yield Case("5000-digit amount", DEDUCT, b'{"amount":' + b"9" * 5000 + b"}", {400, 422})
    yield Case(
        "amount 1e400", DEDUCT, _j(_deduct(location, contact))[:-1] + b',"amount":1e400}', {400}
    )
    yield Case("amount 1.0", DEDUCT, _j(_deduct(location, contact))[:-1] + b',"amount":1.0}', v422)
    yield Case("huge amount_cents", GRANT, _j(_grant(location, contact, amount_cents=10**30)), v422)
    yield Case(
        "metadata huge int",
        GRANT,
        _j(
            _grant(
                location,
                contact,
                metadata={"n": 10**300},
                request_id="mh",
                external_payment_id="mh",
            )
        ),
        {200, 422},
    )
    yield Case(
        "metadata 1e400",
        GRANT,
        _j(_grant(location, contact, request_id="mi", external_payment_id="mi"))[:-1]
        + b',"metadata":{"x":1e400}}',
        {400},
    )
    yield Case(
        "metadata -0.0 and 1e-400",
        GRANT,
        _j(_grant(location, contact, request_id="mz", external_payment_id="mz"))[:-1]
        + b',"metadata":{"x":-0.0,"y":1e-400}}',
        {200, 422},
    )
    # Dates at the edges of the calendar.
    for name, value in [
        ("year 9999", "9999-12-31T23:59:59.999Z"),
        ("year 1", "0001-01-01T00:00:00Z"),
        ("year 1 east of UTC", "0001-01-01T00:00:00+14:00"),
        ("year 9999 west of UTC", "9999-12-31T23:00:00-14:00"),
        ("leap second", "2026-06-30T23:59:60Z"),
        ("Feb 30", "2026-02-30T00:00:00Z"),
    ]:
        yield Case(
            f"paid_at {name}",
            GRANT,
            _j(
                _grant(
                    location,
                    contact,
                    paid_at=value,
                    request_id=f"d-{name}",
                    external_payment_id=f"dp-{name}",
                )
            ),
            {200, 422},
        )
        yield Case(
            f"appointment_time {name}",
            DEDUCT,
            _j(_deduct(location, contact, appointment_time=value, request_id=f"a-{name}")),
            {200, 422},
        )
    # Paths, methods, query strings and headers.
    yield Case("unknown path", "/api/v2/nope", None, {404}, method="GET", headers={})
    yield Case("path traversal", "/api/v2/../../etc/passwd", None, {404}, method="GET", headers={})
    yield Case("GET on a POST route", DEDUCT, None, {405}, method="GET", headers={})
    yield Case("DELETE on a POST route", GRANT, None, {405}, method="DELETE", headers={})
    yield Case(
        "contact read NUL id",
        f"/api/v2/contacts/a%00b?location_id={location}",
        None,
        {404, 422},
        method="GET",
        headers={},
    )
    yield Case(
        "contact read huge limit",
        f"/api/v2/contacts/{contact}/ledger?location_id={location}&limit=99999999999999999999",
        None,
        {404, 422},
        method="GET",
        headers={},
    )
    yield Case(
        "contact read bad cursor",
        f"/api/v2/contacts/{contact}/ledger?location_id={location}&cursor=%ff%00garbage",
        None,
        {404, 422},
        method="GET",
        headers={},
    )
    yield Case(
        "contact read overlong id",
        f"/api/v2/contacts/{'x' * 5000}?location_id={location}",
        None,
        {404, 422},
        method="GET",
        headers={},
    )
    yield Case(
        "bad X-Correlation-Id",
        DEDUCT,
        _j(_deduct(location, contact, request_id="cid")),
        ok200,
        headers={"Content-Type": "application/json", "X-Correlation-Id": "x" * 500 + "<script>"},
    )


async def _chunks(data: bytes) -> Any:
    for i in range(0, len(data), 8192):
        yield data[i : i + 8192]


async def run_cases(
    client: httpx.AsyncClient, token: str, location: str, contact: str, figures: Figures
) -> None:
    """Send every case with a valid all-scopes token; check status and envelope."""
    for case in cases(location, contact):
        headers = {"Authorization": f"Bearer {token}", **case.headers}
        content: Any = case.content
        if case.name == "body over the limit, no Content-Length":
            content = _chunks(b'{"x":"' + b"y" * (BODY_BYTES_MAX * 2) + b'"}')
        figures.requests += 1
        try:
            response = await client.request(
                case.method, case.path, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            figures.fail(f"{case.name}: no answer ({type(exc).__name__})")
            continue
        answer = Answer.of(response)
        check_envelope(answer, figures)
        if response.status_code not in case.allowed:
            figures.fail(
                f"{case.name}: HTTP {response.status_code} {answer.reason}, expected {sorted(case.allowed)}"
            )
