"""Bounded async load with httpx, the figures each scenario reports, and response checks."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.harness import LOCATION

REQUEST_TIMEOUT_SECONDS = 30.0
RESENDS = 2  # times a cut-off request is sent again when the Driver resends cut-offs
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "cache-control")
# What must never reach a client: Python tracebacks, SQL text, driver names.
_LEAK = re.compile(
    r"Traceback|File \"|sqlalchemy|psycopg|sqlite3|SELECT |INSERT INTO|UPDATE \w+ SET|"
    r"\(Background on this error",
    re.IGNORECASE,
)


@dataclass
class Figures:
    scenario: str
    db: str
    requests: int = 0
    expected_errors: int = 0  # answers the scenario provokes on purpose (503 in an outage, …)
    failures: int = 0
    violations: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, message: str) -> None:
        self.failures += 1
        self._note(f"failure: {message}")

    def violate(self, message: str) -> None:
        self.violations += 1
        self._note(f"VIOLATION: {message}")

    def _note(self, message: str) -> None:
        if len(self.notes) < 25:
            self.notes.append(message)

    def merge(self, other: Figures) -> None:
        self.requests += other.requests
        self.expected_errors += other.expected_errors
        self.failures += other.failures
        self.violations += other.violations
        for note in other.notes:
            self._note(note)


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    body: dict[str, Any] | None
    headers: httpx.Headers | None
    raw: bytes = b""
    error: str | None = None
    resent: bool = False  # sent again after a cut-off: its first send may have applied

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        return cls(
            response.status_code,
            body if isinstance(body, dict) else None,
            response.headers,
            response.content,
        )

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.body and self.body.get("ok") is True)

    @property
    def reason(self) -> str | None:
        return None if self.body is None else self.body.get("reason_code")


def check_envelope(answer: Answer, figures: Figures) -> None:
    """Every HTTP answer: a JSON envelope, security headers, nothing leaked."""
    if answer.status == 0:
        return
    text = answer.raw.decode("utf-8", errors="replace")
    if _LEAK.search(text):
        figures.violate(f"HTTP {answer.status} leaks internals: {text[:200]!r}")
    if answer.body is None or not {"ok", "reason_code", "correlation_id"} <= answer.body.keys():
        figures.violate(f"HTTP {answer.status} is not an envelope: {text[:200]!r}")
    if answer.headers is not None:
        missing = [h for h in SECURITY_HEADERS if h not in answer.headers]
        if missing:
            figures.violate(f"HTTP {answer.status} lacks security headers {missing}")
    if answer.status >= 500 and answer.reason != "SERVICE_UNAVAILABLE":
        figures.fail(f"HTTP {answer.status} {answer.reason}")


class Driver:
    """One httpx client, at most `concurrency` requests in flight, each counted."""

    def __init__(
        self,
        base_url: str,
        token: str,
        figures: Figures,
        concurrency: int = 32,
        *,
        resend_cut_offs: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.figures = figures
        # A request cut off with no HTTP answer (a reset connection: on a loaded machine, a
        # keep-alive connection the server closed as the client reused it) is sent again with
        # the same body, as a client of the contract does: the request_id makes it safe.
        self.resend_cut_offs = resend_cut_offs
        self._sem = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )

    async def __aenter__(self) -> Driver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def post(self, path: str, body: dict[str, Any], **kw: Any) -> Answer:
        return await self.send("POST", path, json=body, **kw)

    async def send(self, method: str, path: str, **kw: Any) -> Answer:
        resendable = self.resend_cut_offs and "request_id" in kw.get("json", {})
        async with self._sem:
            for attempt in range(RESENDS + 1):
                self.figures.requests += 1
                try:
                    response = await self._client.request(method, path, **kw)
                    break
                except httpx.TransportError as exc:
                    if not resendable or attempt == RESENDS:
                        return Answer(0, None, None, error=type(exc).__name__)
                    self.figures.expected_errors += 1
        answer = Answer.of(response)
        answer.resent = attempt > 0
        check_envelope(answer, self.figures)
        return answer


async def gather_bounded(jobs: Iterable[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run every job (the Driver's semaphore bounds concurrency)."""
    return list(await asyncio.gather(*(job() for job in jobs)))


def grant_body(contact: str, request_id: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "location_id": LOCATION,
        "request_id": request_id or f"g-{uuid.uuid4()}",
        "external_payment_id": kw.pop("external_payment_id", f"pay-{uuid.uuid4()}"),
        "external_contact_id": contact,
        "product_config_id": "pc_20",
        "amount_cents": 2000,
        "currency": "EUR",
        **kw,
    }


def selection_body(contact: str, request_id: str | None = None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location_id": LOCATION,
        "external_contact_id": contact,
        "product_config_id": "pc_20",
        **kw,
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


GRANT = "/api/v2/grants"
CHECK = "/api/v2/entitlements/check-eligibility"
DEDUCT = "/api/v2/entitlements/deduct"
RESTORE = "/api/v2/entitlements/restore"
