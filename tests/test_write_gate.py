"""SQLite's write gate: one write transaction at a time across threads and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from kotally.db.write_gate import SqliteWriteGate

# A child process that takes the gate of `path`, says so, and keeps it for `hold` seconds
# (forever when negative), then prints when it let go.
CHILD = """
import sys, time
from kotally.db.write_gate import SqliteWriteGate
gate = SqliteWriteGate(sys.argv[1], 10.0)
gate.acquire()
print("held", flush=True)
hold = float(sys.argv[2])
time.sleep(hold if hold >= 0 else 3600)
released = time.time()
gate.release()
print(f"released {released!r}", flush=True)
"""


def hold_in_child(db_path: Path, hold: float) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), str(hold)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def acquire_in_another_thread(gate: SqliteWriteGate) -> OperationalError | None:
    """What another thread of this process gets when it asks for the gate."""
    errors: list[OperationalError] = []

    def other() -> None:
        try:
            gate.acquire()
        except OperationalError as exc:
            errors.append(exc)
        else:
            gate.release()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    return errors[0] if errors else None


def test_a_nested_write_unit_of_the_same_thread_passes(tmp_path: Path) -> None:
    gate = SqliteWriteGate(str(tmp_path / "k.db"), 1.0)
    gate.acquire()
    gate.acquire()
    gate.release()
    gate.release()
    gate.acquire()  # free again
    gate.release()
    gate.close()


def test_another_thread_waits_at_most_the_busy_timeout(tmp_path: Path) -> None:
    gate = SqliteWriteGate(str(tmp_path / "k.db"), 0.2)
    gate.acquire()
    error = acquire_in_another_thread(gate)
    gate.release()
    assert "database is locked" in str(error)
    gate.close()


def test_another_process_waits_until_the_holder_lets_go(tmp_path: Path) -> None:
    db_path = tmp_path / "k.db"
    child = hold_in_child(db_path, 0.5)
    gate = SqliteWriteGate(str(db_path), 10.0)
    gate.acquire()
    acquired = time.time()
    gate.release()
    out, _ = child.communicate(timeout=30)
    released = float(out.split()[-1])
    assert released <= acquired
    gate.close()


def test_a_killed_holder_lets_go(tmp_path: Path) -> None:
    db_path = tmp_path / "k.db"
    child = hold_in_child(db_path, -1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    gate = SqliteWriteGate(str(db_path), 10.0)
    gate.acquire()  # would wait forever if the kernel kept the dead holder's lock
    gate.release()
    gate.close()


@pytest.mark.parametrize("database", [None, ":memory:"])
def test_an_in_memory_database_needs_no_lock_file(
    database: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    gate = SqliteWriteGate(database, 1.0)
    gate.acquire()
    gate.release()
    assert list(tmp_path.iterdir()) == []


def test_two_databases_of_one_process_share_the_gate(tmp_path: Path) -> None:
    """Two gates on one file in one process queue on one lock, never on two flocks."""
    first = SqliteWriteGate(str(tmp_path / "k.db"), 0.2)
    second = SqliteWriteGate(str(tmp_path / "k.db"), 0.2)
    first.acquire()
    second.acquire()  # the same thread: a nested write unit, no wait on a second flock
    second.release()
    assert "database is locked" in str(acquire_in_another_thread(second))
    first.release()
    second.acquire()
    second.release()
    first.close()
    second.close()


def test_a_closed_gate_can_be_used_again(tmp_path: Path) -> None:
    """Like an engine after dispose(), a Database's gate works again after close()."""
    gate = SqliteWriteGate(str(tmp_path / "k.db"), 1.0)
    gate.close()
    gate.acquire()
    assert acquire_in_another_thread(gate) is not None  # held, by the gate joined again
    gate.release()
    gate.close()


def test_try_acquire_never_waits_and_holds_nothing_when_refused(tmp_path: Path) -> None:
    """The group-commit writer's try (it must not block its event loop): False at once while
    another process holds the gate, holding nothing then; True once the gate is free."""
    db_path = str(tmp_path / "k.db")
    gate = SqliteWriteGate(db_path, 10.0)
    child = hold_in_child(tmp_path / "k.db", -1)
    started = time.monotonic()
    assert gate.try_acquire() is False
    assert time.monotonic() - started < 1.0
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    impatient = SqliteWriteGate(db_path, 0.2)  # another Database of this process on the file
    assert acquire_in_another_thread(impatient) is None  # the refused try kept nothing
    assert gate.try_acquire() is True
    assert acquire_in_another_thread(impatient) is not None  # now it is held
    gate.release()
    assert acquire_in_another_thread(impatient) is None
    impatient.close()
    gate.close()
