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
from kotally.db.errors import is_unavailable
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
    """Queue every job in one turn of the loop: the loop comes to the queue after, so they form
    one batch (the tests that rely on it assert it)."""
    return list(await asyncio.gather(*(writer.run(job) for job in jobs), return_exceptions=True))


class _Lock:
    """db.try_write_lock, refused while `taken` is set (another process's batch, say)."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = threading.Event()
        self.tries = 0
        real = db.try_write_lock

        def try_write_lock() -> bool:
            self.tries += 1
            return not self.taken.is_set() and real()

        monkeypatch.setattr(db, "try_write_lock", try_write_lock)

    async def tried(self, times: int = 1) -> None:
        deadline = time.monotonic() + 30
        while self.tries < times and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        assert self.tries >= times


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
    def failing_commit(**options: bool) -> Iterator[Callable[[], Session]]:
        with batch(**options) as new_session:
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


async def test_the_batch_runs_on_the_callers_loop(db: Database, clock: FrozenClock) -> None:
    writer = GroupCommitWriter(db)
    threads: list[threading.Thread] = []

    def job(session: Session) -> str:
        threads.append(threading.current_thread())
        return _create("a", clock)(session)

    assert await writer.run(job) == "a"
    assert threads == [threading.current_thread()]  # no thread of its own to start or stop


async def test_requests_queued_while_the_lock_is_awaited_join_the_batch(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes its batch once it holds the write lock: what queued while another held
    it (another process's batch, on SQLite) shares the commit."""
    lock = _Lock(db, monkeypatch)
    lock.taken.set()
    writer = GroupCommitWriter(db)
    first = asyncio.ensure_future(writer.run(_create("a", clock)))
    await lock.tried()  # the loop came to `a` and found the lock taken
    rest = [asyncio.ensure_future(writer.run(_create(name, clock))) for name in ("b", "c")]
    await lock.tried(2)  # and tried again since
    lock.taken.clear()
    assert await asyncio.gather(first, *rest) == ["a", "b", "c"]
    assert (writer.batches, writer.largest_batch) == (1, 3)
    assert _names(db) == {"a", "b", "c"}


async def test_a_request_cancelled_while_queued_is_not_run(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _Lock(db, monkeypatch)
    lock.taken.set()
    writer = GroupCommitWriter(db)
    gone = asyncio.ensure_future(writer.run(_create("gone", clock)))
    await lock.tried()
    gone.cancel()
    lock.taken.clear()
    assert await writer.run(_create("b", clock)) == "b"
    assert gone.cancelled()
    assert _names(db) == {"b"}


async def test_the_lock_awaited_past_the_busy_timeout_fails_the_queue(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As SQLite's own busy timeout: 'database is locked' (a 503 at the API), nothing written."""
    lock = _Lock(db, monkeypatch)
    lock.taken.set()
    writer = GroupCommitWriter(db, busy_timeout_seconds=0.05)
    answers = await _one_batch(writer, [_create("a", clock), _create("b", clock)])
    assert [str(getattr(a, "orig", a)) for a in answers] == ["database is locked"] * 2
    assert all(is_unavailable(a) for a in answers if isinstance(a, BaseException))
    lock.taken.clear()
    assert await writer.run(_create("c", clock)) == "c"  # the next request starts afresh
    assert _names(db) == {"c"}


async def test_the_loop_serves_on_while_another_thread_holds_the_lock(
    db: Database, clock: FrozenClock
) -> None:
    """The real gate, held by a write of another thread: the loop is never blocked waiting."""
    if db.dialect != "sqlite":
        pytest.skip("the write gate is SQLite's")
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with db.unit_of_work():
            held.set()
            done.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert await asyncio.to_thread(held.wait, 30)
    writer = GroupCommitWriter(db)
    queued = asyncio.ensure_future(writer.run(_create("a", clock)))
    for _ in range(10):
        await asyncio.sleep(0.005)  # the loop keeps turning meanwhile
    assert not queued.done()
    done.set()
    assert await queued == "a"
    await asyncio.to_thread(holder.join, 30)
    assert _names(db) == {"a"}
