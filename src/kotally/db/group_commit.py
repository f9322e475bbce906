"""SQLite: one writer thread per process group-commits the API's write requests.

SQLite has one write lock per database, and a commit in WAL mode with `synchronous=FULL` costs an
fsync. So instead of every request taking the lock, writing and committing on its own thread,
requests queue here; one thread per process takes the first queued request, opens one `BEGIN
IMMEDIATE` under the write gate (waiting, as the case may be, for another process's batch), then
takes every request queued by then (up to `max_batch`), runs each in a session of its own that
holds a SAVEPOINT (a request that fails rolls back its savepoint alone, so each stays all or
nothing), commits once, and only then answers them all. No answer precedes its commit: a commit
that fails fails every request of the batch.

The thread starts with the first request and ends after `idle_seconds` without one, so an app
that is built and dropped (the tests build hundreds) leaves no thread behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from kotally.db.engine import Database, WriteBatch

T = TypeVar("T")
Job = Callable[[Session], Any]
# A job written in raw statements: it gets the batch's sqlite3 connection, inside a savepoint.
RawJob = Callable[[sqlite3.Connection], Any]
_SAVEPOINT = "kotally_request"

MAX_BATCH = 128
IDLE_SECONDS = 2.0
# After each batch the writer lets go of the write lock this long before it takes it again: the
# writers of other processes poll for it every millisecond at most, and without the pause a busy
# process kept it from them for seconds (the benchmark: deduct p99 1.5 s with two workers).
HANDOFF_SECONDS = 0.0012


@dataclass
class _Request:
    job: Job | RawJob
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    raw: bool = False
    value: Any = None
    error: BaseException | None = None


class GroupCommitWriter:
    def __init__(
        self, db: Database, *, max_batch: int = MAX_BATCH, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
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
        request = _Request(job, loop.create_future(), loop, raw)
        with self._lock:
            self._queue.put(request)
            if not self._running:
                self._running = True
                threading.Thread(target=self._serve, name="kotally-writer", daemon=True).start()
        return await request.future

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        return
                continue
            self._commit(first)
            time.sleep(HANDOFF_SECONDS)

    def _take(self, batch: list[_Request]) -> None:
        """Adds what is queued to `batch`, up to max_batch requests."""
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _commit(self, first: _Request) -> None:
        batch = [first]
        try:
            with self._db.write_batch() as new_session:
                # Taken once the write lock is held: what arrived while it was awaited joins
                # this batch and shares its commit.
                self._take(batch)
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
    def settle() -> None:
        if request.future.done():  # the caller went away (a cancelled request)
            return
        if request.error is not None:
            request.future.set_exception(request.error)
        else:
            request.future.set_result(request.value)

    with contextlib.suppress(RuntimeError):  # the caller's event loop is closed
        request.loop.call_soon_threadsafe(settle)
