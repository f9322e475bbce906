"""What a run costs: CPU of the server, its PostgreSQL backends and the rest of the machine,
and the workers' memory, read from /proc."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.report import Result

PG_ADMIN_URL = os.environ.get(
    "KOTALLY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def worker_pids(pid: int) -> list[int]:
    """The uvicorn worker processes under a server (the server itself with one worker)."""
    workers = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(child)
    return workers or [pid]


def worker_rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of the largest server worker, in MiB."""
    largest = 0.0
    for worker in worker_pids(pid):
        try:
            status = Path(f"/proc/{worker}/status").read_text()
        except OSError:
            continue
        for row in status.splitlines():
            if row.startswith("VmRSS:"):
                largest = max(largest, int(row.split()[1]) / 1024)
    return largest


# --- CPU accounting: per-request cost holds up when other work shares the machine ---------------

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICKS  # all but idle and iowait


def pg_backends(url: str | None) -> list[int]:
    if url is None:
        return []
    name = make_url(url).database
    admin = create_engine(make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg"))
    try:
        with admin.connect() as conn:
            rows = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
            return [int(r[0]) for r in rows]
    finally:
        admin.dispose()


@dataclass
class CpuMeter:
    """CPU of the server, of its PostgreSQL backends, of wrk and of everything else."""

    server_pid: int
    pg_url: str | None
    app: float = 0.0
    db: dict[int, float] = field(default_factory=dict)
    busy: float = 0.0
    children: float = 0.0

    def _app(self) -> float:
        return sum(process_cpu(p) for p in {self.server_pid, *worker_pids(self.server_pid)})

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self.app = self._app()
        self.db = {p: process_cpu(p) for p in pg_backends(self.pg_url)}
        self.children = self._children()
        self.busy = machine_busy()

    def stop(self, result: Result, seconds: float) -> None:
        busy = machine_busy() - self.busy
        app = self._app() - self.app
        db = sum(process_cpu(p) - self.db.get(p, 0.0) for p in pg_backends(self.pg_url))
        load_generator = self._children() - self.children
        n = max(result.requests, 1)
        result.app_cpu_ms = 1000 * app / n
        result.db_cpu_ms = 1000 * db / n
        result.other_cores = max(busy - app - db - load_generator, 0.0) / seconds
