"""SQLite: the API's write requests group-committed on the event loop.

SQLite has one write lock per database, and a commit in WAL mode with `synchronous=FULL` costs an
fsync. So instead of every request taking the lock, writing and committing on its own, requests
queue here, on the event loop that received them. When the loop comes to the queue, it tries for
the write gate without waiting (db/write_gate.py `try_acquire`). Should another process or thread
hold it, the loop goes on serving and tries again a little later, up to the busy timeout, after
which the queued requests fail as SQLite's own wait would ('database is locked': 503). Once it
holds the gate, it opens one `BEGIN IMMEDIATE`, takes every request queued by then (up to
`max_batch`), runs each in a session of its own that holds a SAVEPOINT (a request that fails
rolls back its savepoint alone, so each stays all or nothing), commits once, and only then answers
them all. No answer precedes its commit: a commit that fails fails every request of the batch.

The batch runs on the loop itself, not on a thread of its own: with a writer thread the loop and
the writer took the GIL from each other at every statement (each sqlite3 call lets it go), and a
deduct cost the process 756-937 us of CPU against 528-697 on the loop (bench/RESULTS.md). While a
batch runs (a few milliseconds) the loop does nothing else; the wait for the lock it never spends
blocked. After each batch the loop leaves the lock alone for HANDOFF_SECONDS, so the writers of
other processes, which poll for it, get their turn. A request whose caller went away while it was
queued is not run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from kotally.db.engine import Database, WriteBatch
from kotally.db.write_gate import database_is_locked

T = TypeVar("T")
Job = Callable[[Session], Any]
# A job written in raw statements: it gets the batch's sqlite3 connection, inside a savepoint.
RawJob = Callable[[sqlite3.Connection], Any]
_SAVEPOINT = "kotally_request"

MAX_BATCH = 128
# After each batch the loop lets go of the write lock this long before it takes it again: the
# writers of other processes poll for it every millisecond at most, and without the pause a busy
# process kept it from them for seconds (the benchmark: deduct p99 1.5 s with two workers).
HANDOFF_SECONDS = 0.0012
# While another holds the lock, the loop tries again after this long (the event loop's timers
# count milliseconds: a shorter pause would spin).
RETRY_SECONDS = 0.001


@dataclass
class _Request:
    job: Job | RawJob
    future: asyncio.Future[Any]
    raw: bool
    value: Any = None
    error: BaseException | None = None


@dataclass
class _LoopState:
    queue: list[_Request] = field(default_factory=list)
    # The next try for the lock, when one is due; while it is, new requests just queue.
    next_try: asyncio.TimerHandle | asyncio.Handle | None = None
    # When the first try of the current wait for the lock failed (None: not waiting).
    waiting_since: float | None = None
    # When this loop last let go of the lock (its handoff pause runs from there).
    released_at: float = float("-inf")


class GroupCommitWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = MAX_BATCH,
        busy_timeout_seconds: float | None = None,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        # How long requests wait for the lock in all (KOTALLY_DB_BUSY_TIMEOUT_SECONDS).
        self._timeout = busy_timeout_seconds or db.settings.db_busy_timeout_seconds
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self.batches = 0  # committed batches, for tests and metrics
        self.largest_batch = 0

    async def run(self, job: Callable[[Session], T]) -> T:
        """Run `job(session)` in the next batch; returns its value once the batch committed."""
        return await self._enqueue(job, raw=False)  # type: ignore[no-any-return]

    async def run_raw(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job(connection)` in the next batch, in a savepoint sent as SQL: no session."""
        return await self._enqueue(job, raw=True)  # type: ignore[no-any-return]

    async def _enqueue(self, job: Job | RawJob, *, raw: bool) -> Any:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        request = _Request(job, loop.create_future(), raw)
        state.queue.append(request)
        if state.next_try is None:
            self._schedule(loop, state)
        return await request.future

    def _schedule(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        """The next try for the lock: now, or once the handoff after this loop's last batch
        is over."""
        wait = state.released_at + HANDOFF_SECONDS - time.monotonic()
        state.next_try = (
            loop.call_later(wait, self._try, loop, state)
            if wait > 0
            else loop.call_soon(self._try, loop, state)
        )

    def _try(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        """The batch, if the lock is free; else another try shortly, or the timeout's 503."""
        state.next_try = None
        state.queue = [request for request in state.queue if not request.future.done()]
        if not state.queue:
            state.waiting_since = None
            return
        try:
            locked = self._db.try_write_lock()
        except Exception as exc:  # the lock file cannot be opened: as a failed BEGIN
            self._fail_queued(state, exc)
            return
        if not locked:
            now = time.monotonic()
            if state.waiting_since is None:
                state.waiting_since = now
            if now - state.waiting_since >= self._timeout:
                self._fail_queued(state, None)
            else:
                state.next_try = loop.call_later(RETRY_SECONDS, self._try, loop, state)
            return
        state.waiting_since = None
        batch = state.queue[: self._max_batch]
        del state.queue[: self._max_batch]
        self._commit(batch)  # answers every request of it, whatever happened
        state.released_at = time.monotonic()
        if state.queue:
            self._schedule(loop, state)

    def _fail_queued(self, state: _LoopState, exc: BaseException | None) -> None:
        """Every queued request fails: with `exc`, or (None) as SQLite's busy timeout would."""
        state.waiting_since = None
        queued, state.queue = state.queue, []
        for request in queued:
            request.error = exc if exc is not None else database_is_locked()
            _answer(request)

    def _commit(self, batch: list[_Request]) -> None:
        """Runs `batch` in one transaction under the write gate the caller took."""
        try:
            with self._db.write_batch(locked=True) as new_session:
                for request in batch:
                    if request.raw:
                        _run_raw(request, new_session.driver)
                    else:
                        _run_one(request, new_session)
            self.batches += 1
            self.largest_batch = max(self.largest_batch, len(batch))
        except BaseException as exc:  # the batch did not commit: no request of it took effect
            for request in batch:
                request.error, request.value = exc, None
        for request in batch:
            _answer(request)


def _run_one(request: _Request, new_session: WriteBatch) -> None:
    session = new_session()
    try:
        request.value = request.job(session)  # type: ignore[arg-type]
        session.commit()  # releases this request's savepoint
    except Exception as exc:
        session.rollback()  # to this request's savepoint: the others keep their work
        request.error = exc
    finally:
        session.close()


def _run_raw(request: _Request, conn: sqlite3.Connection) -> None:
    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        request.value = request.job(conn)  # type: ignore[arg-type]
    except Exception as exc:
        conn.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")  # this request's work alone
        request.error = exc
    conn.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def _answer(request: _Request) -> None:
    if request.future.done():  # the caller went away (a cancelled request)
        return
    if request.error is not None:
        request.future.set_exception(request.error)
    else:
        request.future.set_result(request.value)
