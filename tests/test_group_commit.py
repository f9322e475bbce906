"""The group-commit writer: a savepoint per request in one transaction, answers after the commit.

It serves SQLite in the app, but nothing in it is SQLite's: it runs on both databases here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kotally.db.engine import Database
from kotally.db.group_commit import GroupCommitWriter
from kotally.db.models import Location
from kotally.kit.clock import FrozenClock
from kotally.locations import service as locations

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _create(name: str, clock: FrozenClock) -> Callable[[Session], str]:
    def job(session: Session) -> str:
        locations.create(session, clock, location_id=name, name=name)
        session.flush()
        return name

    return job


def _fail_after_create(name: str, clock: FrozenClock) -> Callable[[Session], str]:
    def job(session: Session) -> str:
        _create(name, clock)(session)
        raise LookupError(f"{name} refused after writing")

    return job


def _names(db: Database) -> set[str]:
    with db.unit_of_work(write=False) as session:
        return set(session.scalars(select(Location.id)))


async def _one_batch(
    writer: GroupCommitWriter, jobs: list[Callable[[Session], str]]
) -> list[object]:
    """Hold the writer on a first job until every other job is queued: they form one batch."""
    queued = threading.Event()

    def hold(_: Session) -> str:
        queued.wait(timeout=30)
        return "held"

    first = asyncio.ensure_future(writer.run(hold))
    await asyncio.sleep(0.05)  # the writer has taken `hold`
    rest = [asyncio.ensure_future(writer.run(job)) for job in jobs]
    await asyncio.sleep(0)  # every job is in the queue
    queued.set()
    await asyncio.gather(first, return_exceptions=True)  # its own answer is not asserted
    return list(await asyncio.gather(*rest, return_exceptions=True))


async def test_a_failing_request_rolls_back_alone(db: Database, clock: FrozenClock) -> None:
    writer = GroupCommitWriter(db)
    answers = await _one_batch(
        writer,
        [_create("a", clock), _fail_after_create("b", clock), _create("c", clock)],
    )
    assert answers[0] == "a"
    assert answers[2] == "c"
    assert isinstance(answers[1], LookupError)
    assert _names(db) == {"a", "c"}
    assert writer.largest_batch == 3  # the three shared one transaction


async def test_requests_of_a_batch_see_each_others_work(db: Database, clock: FrozenClock) -> None:
    def count(session: Session) -> str:
        return str(session.scalar(select(func.count()).select_from(Location)))

    writer = GroupCommitWriter(db)
    answers = await _one_batch(writer, [_create("a", clock), count, _create("b", clock), count])
    assert answers == ["a", "1", "b", "2"]


async def test_a_failed_commit_fails_every_request_and_keeps_nothing(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = db.write_batch

    @contextmanager
    def failing_commit() -> Iterator[Callable[[], Session]]:
        with batch() as new_session:
            yield new_session
            raise OSError("disk I/O error")  # at the commit: the transaction rolls back

    writer = GroupCommitWriter(db)
    monkeypatch.setattr(db, "write_batch", failing_commit)
    answers = await _one_batch(writer, [_create("a", clock), _create("b", clock)])
    assert all(isinstance(a, OSError) for a in answers)
    assert _names(db) == set()


async def test_the_answer_comes_after_the_commit(db: Database, clock: FrozenClock) -> None:
    writer = GroupCommitWriter(db)
    seen: list[set[str]] = []

    def create_and_look(session: Session) -> str:
        _create("a", clock)(session)
        seen.append(_names(db))  # another connection: the write is not committed yet
        return "a"

    assert await writer.run(create_and_look) == "a"
    assert seen == [set()]
    assert _names(db) == {"a"}  # by the time the caller has its answer, it is


async def test_the_thread_ends_when_idle_and_comes_back(db: Database, clock: FrozenClock) -> None:
    writer = GroupCommitWriter(db, idle_seconds=0.05)

    def writers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "kotally-writer"]

    assert await writer.run(_create("a", clock)) == "a"
    deadline = time.monotonic() + 5
    while writers() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert writers() == []
    assert await writer.run(_create("b", clock)) == "b"
    assert _names(db) == {"a", "b"}


async def test_requests_queued_while_the_lock_is_awaited_join_the_batch(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes the rest of its batch once it holds the write lock: what queued while it
    waited (another process's batch, on SQLite) shares the commit."""
    batch = db.write_batch
    waiting, free = threading.Event(), threading.Event()

    @contextmanager
    def slow_lock() -> Iterator[Callable[[], Session]]:
        waiting.set()
        free.wait(timeout=30)  # the lock is someone else's until `free`
        with batch() as new_session:
            yield new_session

    writer = GroupCommitWriter(db)
    monkeypatch.setattr(db, "write_batch", slow_lock)
    first = asyncio.ensure_future(writer.run(_create("a", clock)))
    assert await asyncio.to_thread(waiting.wait, 30)  # the writer took `a` and awaits the lock
    rest = [asyncio.ensure_future(writer.run(_create(name, clock))) for name in ("b", "c")]
    await asyncio.sleep(0)  # both are in the queue
    free.set()
    assert await asyncio.gather(first, *rest) == ["a", "b", "c"]
    assert (writer.batches, writer.largest_batch) == (1, 3)
    assert _names(db) == {"a", "b", "c"}
