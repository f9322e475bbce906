"""SQLite: writers queue for the database's single write lock instead of polling for it.

SQLite lets one writer at a time hold a database. A writer that finds the lock taken polls for it,
sleeping 1, 2, 5 … up to 100 ms between tries (its busy handler), so with many writers waiting
the lock mostly sits free while they sleep, and a process that keeps retaking it starves the
others. The benchmark saw it: deducts waiting 6 s behind threads of their own process, and a p99
of 3 s with two `kotally serve` workers, against 0.1 s with one.

So a write transaction first takes this gate, then BEGIN IMMEDIATE finds the lock free:

- between the threads of a process, a reentrant lock (a nested write unit of the same thread
  passes), shared by every Database of the process on that file;
- between processes (the workers of `kotally serve`, the CLI), an exclusive flock(2) of the file
  `<database>-writer.lock` beside the database, polled every 50 µs to 1 ms (a blocking flock
  cannot be given a timeout). The kernel lets go of it for a holder that dies, kill -9 included.

The two waits together last at most the busy timeout, then 'database is locked' (a 503 at the
API), as SQLite's own wait would. Other programs writing to the file are still arbitrated by
SQLite's own lock and busy timeout.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

from sqlalchemy.exc import OperationalError

# Between processes the gate is polled, from 50 µs up to every millisecond: one system call a try.
_FIRST_PAUSE = 0.00005
_LAST_PAUSE = 0.001


def _sqlite_error(message: str) -> OperationalError:
    """An error as SQLite raises it, so that callers map it alike (a 503 at the API)."""
    return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(message))


def database_is_locked() -> OperationalError:
    """What SQLite itself raises when its busy timeout runs out."""
    return _sqlite_error("database is locked")


class _Gate:
    """The state of one database file's gate in one process, shared by its Database objects."""

    def __init__(self, lock_path: str | None) -> None:
        self.lock_path = lock_path
        self.threads = threading.RLock()
        self.depth = threading.local()
        self.fd: int | None = None
        self.users = 0

    def try_lock_file(self) -> bool:
        """One try for the file's lock: False if another process holds it."""
        if self.fd is None:
            assert self.lock_path is not None
            try:
                self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:  # no such directory, no permission: as SQLite would say it
                raise _sqlite_error("unable to open database file") from exc
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def lock_file(self, deadline: float) -> None:
        pause = _FIRST_PAUSE
        while not self.try_lock_file():
            left = deadline - time.monotonic()
            if left <= 0:
                raise database_is_locked() from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LAST_PAUSE)


# One gate per database file and process: two Database objects of one process on one file (the
# tests, a CLI command inside the app) must queue on the same lock, not on two open files whose
# flocks would shut each other out.
_GATES: dict[tuple[int, str | None], _Gate] = {}
_GATES_LOCK = threading.Lock()


class SqliteWriteGate:
    def __init__(self, database: str | None, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        in_memory = not database or database == ":memory:" or database.startswith("file::memory:")
        lock_path = None if in_memory else os.path.abspath(f"{database}-writer.lock")
        self._lock_path = lock_path
        # In-memory databases are private to their connection: each gets a gate of its own.
        self._key = (os.getpid(), lock_path if lock_path is not None else str(id(self)))
        self._gate: _Gate | None = None
        self._open()

    def _open(self) -> _Gate:
        with _GATES_LOCK:
            gate = _GATES.get(self._key)
            if gate is None:
                gate = _GATES[self._key] = _Gate(self._lock_path)
            gate.users += 1
        self._gate = gate
        return gate

    def acquire(self) -> None:
        """Waits for the gate, at most the busy timeout in all ('database is locked' then)."""
        self._take(wait=True)

    def try_acquire(self) -> bool:
        """`acquire` without waiting: False, holding nothing, if another thread or process
        holds the gate (the group-commit writer, which must not block its event loop)."""
        return self._take(wait=False)

    def _take(self, *, wait: bool) -> bool:
        gate = self._shared()
        deadline = time.monotonic() + self._timeout  # for both waits together
        if not gate.threads.acquire(blocking=wait, timeout=self._timeout if wait else -1):
            if wait:
                raise database_is_locked()
            return False
        depth = getattr(gate.depth, "n", 0)
        if depth == 0 and gate.lock_path is not None:
            try:
                if wait:
                    gate.lock_file(deadline)
                elif not gate.try_lock_file():
                    gate.threads.release()
                    return False
            except BaseException:
                gate.threads.release()
                raise
        gate.depth.n = depth + 1
        return True

    def release(self) -> None:
        gate = self._shared()
        gate.depth.n -= 1
        try:
            if gate.depth.n == 0 and gate.fd is not None:
                fcntl.flock(gate.fd, fcntl.LOCK_UN)
        finally:
            gate.threads.release()

    def close(self) -> None:
        """This Database is done with the gate; the last one closes the lock file."""
        gate, self._gate = self._gate, None
        if gate is None or self._key[0] != os.getpid():
            return
        with _GATES_LOCK:
            gate.users -= 1
            if gate.users == 0:
                del _GATES[self._key]
                if gate.fd is not None:
                    os.close(gate.fd)

    def _shared(self) -> _Gate:
        if self._key[0] != os.getpid():
            # A forked child must not share its parent's open file (it would share the lock).
            raise RuntimeError("a Database cannot be used across fork; create one in the child")
        # Used again after close(), as an engine can be after dispose(): join the gate again.
        return self._gate if self._gate is not None else self._open()
