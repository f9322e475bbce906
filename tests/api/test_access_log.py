"""The access line (observability.py AccessLog): written directly while configure_logging's
handler is the root's only one, and then the same line as structlog writes through it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest

from kotally.observability import ACCESS_LOG, AccessLog
from tests.api.conftest import CHECK, PATHS, Api

VARYING = {"correlation_id", "duration_ms", "timestamp"}


async def _lines(api: Api, stream: io.StringIO) -> list[dict[str, object]]:
    start = len(stream.getvalue())
    response = await api.post(PATHS["check"], CHECK)
    assert response.status_code == 200
    await asyncio.sleep(0)  # the direct lines are written once the loop turns
    lines = [
        json.loads(line)
        for line in stream.getvalue()[start:].splitlines()
        if '"kotally.access"' in line
    ]
    for line in lines:
        assert line["reason_code"] == response.json()["reason_code"]
        assert line["correlation_id"] == response.headers["x-correlation-id"]
    return lines


async def test_the_access_line_is_the_same_either_way(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = ACCESS_LOG.handler
    assert handler is not None  # tests/api/conftest.py configures logging as `kotally serve`
    stream = io.StringIO()
    monkeypatch.setattr(handler, "stream", stream)
    root = logging.getLogger()
    saved = root.handlers[:]
    written: list[bool] = []
    write = ACCESS_LOG.write
    monkeypatch.setattr(ACCESS_LOG, "write", lambda fields: written.append(write(fields)) or True)
    try:
        root.handlers[:] = [handler]  # as in `kotally serve`: the direct line
        direct = await _lines(api, stream)
        monkeypatch.undo()
        monkeypatch.setattr(handler, "stream", stream)
        root.handlers[:] = [handler, logging.NullHandler()]  # another handler: through structlog
        through_structlog = await _lines(api, stream)
    finally:
        root.handlers[:] = saved
    assert written == [True]
    assert len(direct) == len(through_structlog) == 1
    one, other = direct[0], through_structlog[0]
    assert list(one) == list(other)  # the same keys in the same order
    assert {k: v for k, v in one.items() if k not in VARYING} == {
        k: v for k, v in other.items() if k not in VARYING
    }
    assert one["event"] == "request"
    assert one["path"] == PATHS["check"]
    for line in (one, other):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", str(line["timestamp"]))


async def test_no_direct_line_while_pytest_captures_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """With another handler on the root logger the line goes through structlog, so that
    every handler sees it."""
    with caplog.at_level(logging.INFO):
        assert (await api.post(PATHS["check"], CHECK)).status_code == 200
    lines = [r for r in caplog.records if r.name == "kotally.access"]
    assert len(lines) == 1


def test_lines_left_by_a_loop_that_stopped_are_written_on_the_next_turn_of_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access = AccessLog()
    access.handler = handler
    monkeypatch.setattr(logging.root, "handlers", [handler])
    stopped = asyncio.new_event_loop()

    async def one(n: int) -> None:
        assert access.write({"n": n})

    access.flush = lambda: None  # type: ignore[method-assign]
    stopped.run_until_complete(one(1))  # the flush it schedules does nothing: as if never run
    del access.flush
    stopped.close()
    assert stream.getvalue() == ""
    asyncio.run(one(2))
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == [1, 2]


class _Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_a_turns_lines_are_written_in_pieces_no_process_can_interleave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers share stderr; a pipe keeps a write whole only up to 4,096 bytes."""
    stream = _Writes()
    handler = logging.StreamHandler(stream)
    access = AccessLog()
    access.handler = handler
    monkeypatch.setattr(logging.root, "handlers", [handler])

    async def lines() -> None:
        for n in range(40):
            assert access.write({"n": n, "path": "/api/v2/entitlements/deduct" + "é" * 60})
        access.write({"n": 40, "long": "x" * 5000})  # longer than a chunk: alone

    asyncio.run(lines())
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(41))
    assert 10 < len(stream.writes) < 41  # fewer writes than lines
    for text in stream.writes:
        assert text.endswith("\n")
        assert len(text.encode()) <= 4096 or text.count("\n") == 1
