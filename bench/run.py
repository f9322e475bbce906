"""The Kotally benchmark: one command, one table.

    .venv/bin/python -m bench.run                    # everything: SQLite and PostgreSQL, small
                                                     # and large ledger, both limits (~8 min)
    .venv/bin/python -m bench.run --db sqlite --no-large --duration 5   # a quick look

For each database it creates a fresh one (a SQLite file in a temporary directory; a PostgreSQL
database created and dropped here), migrates it with `kotally migrate`, seeds it straight in SQL
(bench/seed.py), starts `kotally serve` and drives it with wrk (a separate process, Lua script
bench/kotally.lua) at 32 connections: check-eligibility, deduct, a 90/10 check/deduct mix and the
contact summary read. Beside them, measured in the same run on the same machine:

  (a) the database limit: the deduct transaction run by pgbench straight against PostgreSQL
      (bench/pg_deduct.sql), on the same seeded database;
  (b) the HTTP limit: a FastAPI endpoint answering constant JSON (bench/minimal_app.py) under the
      same uvicorn settings and worker count;
  (c) the SQLite limit: the same deduct transaction in a loop of Python's sqlite3, one transaction
      each, with the server's `synchronous` setting (bench/sqlite_deduct.py), on the same file.

Needs wrk (Debian package `wrk`; installed here when missing and running as root) and, for
PostgreSQL, pgbench (package `postgresql-client`) and a server at KOTALLY_BENCH_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres). Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import seed
from bench.meter import PG_ADMIN_URL, CpuMeter, worker_pids, worker_rss_mb
from bench.report import Result, table, targets
from kotally.config import Settings

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
SECRET_KEY = "kotally-benchmark-secret-key-0123456789abcdef"
WORKLOADS = ("check", "deduct", "mix", "summary")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- tools -------------------------------------------------------------------------------------


def ensure_tools(need_pgbench: bool) -> None:
    if shutil.which("wrk") is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            log("wrk is missing: apt-get install -y wrk")
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        else:
            sys.exit("bench: wrk is missing; install it with `sudo apt-get install -y wrk`")
    if need_pgbench and shutil.which("pgbench") is None:
        sys.exit("bench: pgbench is missing: apt-get install -y postgresql-client")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- servers -----------------------------------------------------------------------------------


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[int]:
    """Start a server in its own process group, wait until `probe` answers, stop it after.

    Its output goes to a temporary file; error lines in it are reported when it stops.
    """
    logfile = tempfile.NamedTemporaryFile(prefix="kotally-bench-server-", suffix=".log")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, start_new_session=True, stdout=logfile, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                sys.exit(f"bench: server exited with {proc.returncode}: {' '.join(cmd)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
                request = urllib.request.Request(f"http://127.0.0.1:{port}{probe}")
                with urllib.request.urlopen(request, timeout=5):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"bench: server did not come up: {' '.join(cmd)}")
                time.sleep(0.2)
        time.sleep(0.5)  # let every worker finish starting
        yield proc.pid
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=40)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        logfile.seek(0)
        output = logfile.read().decode(errors="replace").splitlines()
        errors = [ln for ln in output if '"error"' in ln]
        logfile.close()
        if errors:
            disconnects = sum("ClientDisconnect" in ln for ln in errors)
            log(
                f"server logged {len(errors)} error line(s), {disconnects} of them "
                "ClientDisconnect (wrk closing connections with requests in flight at the end "
                f"of a run); first: "
                f"{errors[0][:300]}"
            )


def kotally_env(database_url: str, log_level: str = "WARNING") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KOTALLY_DATABASE_URL=database_url,
        KOTALLY_SECRET_KEY=SECRET_KEY,
        KOTALLY_RATE_LIMIT_PER_SECOND="0",
        KOTALLY_LOG_LEVEL=log_level,
        KOTALLY_EXPIRE_SWEEP_INTERVAL_SECONDS="0",
    )
    return env


def http_status(port: int, path: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {seed.TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def smoke_check(port: int) -> None:
    body = json.dumps(
        {
            "location_id": seed.LOCATION_ID,
            "ghl_contact_id": seed.ghl_id(1),
            "product_config_id": seed.BENCH_CONFIG,
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/entitlements/check-eligibility",
        data=body,
        headers={"Authorization": f"Bearer {seed.TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    if answer.get("reason_code") != "eligible":
        sys.exit(f"bench: the seeded check is not eligible: {answer}")


# --- load generators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    duration: int
    warmup: int
    connections: int
    threads: int


def wrk(port: int, mode: str, contacts: int, seconds: int, load: Load) -> dict[str, Any]:
    cmd = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "kotally.lua"),
        f"http://127.0.0.1:{port}",
        "--",
        mode,
        seed.TOKEN,
        seed.LOCATION_ID,
        str(contacts),
        f"w{uuid.uuid4().hex[:12]}",
        seed.BENCH_CONFIG,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        sys.exit(f"bench: no result from wrk:\n{out}")
    parsed: dict[str, Any] = json.loads(line.removeprefix("BENCHJSON "))
    return parsed


def wrk_result(db: str, ledger: str, workload: str, raw: dict[str, Any]) -> Result:
    errors = raw["errors"]
    codes: dict[str, int] = raw["codes"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    not_ok = sum(n for key, n in codes.items() if key.startswith("200 false "))
    non_2xx = sum(n for key, n in codes.items() if not key.startswith("2"))
    return Result(
        db=db,
        ledger=ledger,
        workload=workload,
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        requests=raw["requests"],
        failed=socket_errors + non_2xx,
        not_ok=not_ok,
        codes=codes,
    )


def profile_start(pid: int, out: Path, seconds: int) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(spy).exists():
        log("py-spy is missing (pip install py-spy): no profile")
        return None
    worker = worker_pids(pid)[0]
    cmd = [spy, "record", "-p", str(worker), "-d", str(seconds), "-r", "200"]
    cmd += ["-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pgbench(url: str, contacts: int, load: Load, ledger: str) -> Result:
    with tempfile.TemporaryDirectory(prefix="kotally-pgbench-") as tmp:
        base = [
            "pgbench", "-n", "-M", "prepared", f"-c{load.connections}", f"-j{load.threads}",
            "-D", f"ncontacts={contacts}", "-f", str(BENCH / "pg_deduct.sql"),
        ]  # fmt: skip
        if load.warmup:
            subprocess.run([*base, f"-T{load.warmup}", url], capture_output=True, check=True)
        cmd = [*base, f"-T{load.duration}", "-l", f"--log-prefix={tmp}/log", url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        latencies: list[int] = []
        for path in Path(tmp).glob("log*"):
            for row in path.read_text().splitlines():
                latencies.append(int(row.split()[2]))
    failed = 0
    for row in out.splitlines():
        if row.startswith("number of failed transactions"):
            failed = int(row.split(":")[1].split()[0])
    latencies.sort()
    n = len(latencies)
    return Result(
        db="postgresql",
        ledger=ledger,
        workload="limit_a",
        rps=n / load.duration,
        p50_ms=latencies[n // 2] / 1000 if n else 0.0,
        p99_ms=latencies[min(n - 1, int(n * 0.99))] / 1000 if n else 0.0,
        requests=n,
        failed=failed,
    )


# --- databases ---------------------------------------------------------------------------------


@contextmanager
def fresh_database(kind: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(KOTALLY_DATABASE_URL, sqlite path, plain PostgreSQL URL) of a new, empty database."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kotally-bench-") as tmp:
            path = f"{tmp}/bench.db"
            yield f"sqlite:///{path}", path, None
        return
    name = f"kotally_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    plain = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield plain, None, plain
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def kotally(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "kotally"), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"bench: kotally {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def bench_database(
    kind: str, ledger: str, contacts: int, args: argparse.Namespace, load: Load
) -> list[Result]:
    results: list[Result] = []
    with fresh_database(kind) as (url, sqlite_path, pg_url):
        env = kotally_env(url, args.log_level)
        kotally(env, "migrate")
        started = time.monotonic()
        settings = Settings(database_url=url, secret_key=SECRET_KEY)
        seed.seed(settings, contacts=contacts, sqlite_path=sqlite_path, pg_url=pg_url)
        entries = contacts * seed.ENTRIES_PER_CONTACT
        log(
            f"{kind} {ledger}: seeded {contacts:,} contacts, {entries:,} ledger entries "
            f"in {time.monotonic() - started:.0f} s"
        )
        port = free_port()
        cmd = [str(BIN / "kotally"), "serve", "--port", str(port), "--workers", str(args.workers)]
        with server(cmd, env, port, "/healthz") as pid:
            smoke_check(port)
            has_summary = (
                http_status(port, f"/api/v2/contacts/bc1/summary?location_id={seed.LOCATION_ID}")
                != 404
            )
            for workload in args.workloads:
                if workload == "summary" and not has_summary:
                    log("GET /api/v2/contacts/{id}/summary does not exist yet: skipped")
                    results.append(Result(kind, ledger, workload, 0, 0, 0, 0, skipped="no route"))
                    continue
                if load.warmup:
                    wrk(port, workload, contacts, load.warmup, load)
                meter = CpuMeter(pid, pg_url)
                meter.start()
                spy = None
                if args.profile:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    out = args.profile / f"{kind}-{ledger}-{workload}.txt"
                    spy = profile_start(pid, out, load.duration)
                raw = wrk(port, workload, contacts, load.duration, load)
                result = wrk_result(kind, ledger, workload, raw)
                meter.stop(result, raw["duration_us"] / 1e6)
                result.rss_mb = worker_rss_mb(pid)
                if spy is not None:
                    spy.wait(timeout=60)
                log(
                    f"{kind} {ledger} {workload}: {result.rps:,.0f} req/s, p50 "
                    f"{result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, failed {result.failed}, "
                    f"ok:false {result.not_ok}; CPU/req app {result.app_cpu_ms:.2f} ms, db "
                    f"{result.db_cpu_ms:.2f} ms; other load {result.other_cores:.2f} cores; "
                    f"worker RSS {result.rss_mb:.0f} MiB"
                )
                results.append(result)
        if sqlite_path is not None and not args.no_limits:
            result = limit_c(sqlite_path, contacts, load, ledger, settings.sqlite_synchronous)
            log(f"sqlite {ledger} limit (c): {result.rps:,.0f} tx/s, p99 {result.p99_ms:.1f}")
            results.append(result)
        if pg_url is not None and not args.no_limits:
            result = pgbench(pg_url, contacts, load, ledger)
            log(f"postgresql {ledger} limit (a): {result.rps:,.0f} tx/s, p99 {result.p99_ms:.1f}")
            results.append(result)
        if args.verify:
            started = time.monotonic()
            log(f"{kind} {ledger}: {kotally(env, 'verify')} ({time.monotonic() - started:.0f} s)")
    return results


def limit_c(path: str, contacts: int, load: Load, ledger: str, synchronous: str) -> Result:
    """The deduct transaction in a sqlite3 loop (bench/sqlite_deduct.py), its own process."""
    cmd = [sys.executable, "-m", "bench.sqlite_deduct", path, str(contacts)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if load.warmup:
        subprocess.run([*cmd, str(load.warmup), synchronous], env=env, check=True, cwd=ROOT,
                       capture_output=True)  # fmt: skip
    out = subprocess.run(
        [*cmd, str(load.duration), synchronous], env=env, check=True, cwd=ROOT,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    raw = json.loads(out.strip().splitlines()[-1])
    return Result(
        db="sqlite",
        ledger=ledger,
        workload="limit_c",
        rps=raw["requests"] / raw["seconds"],
        p50_ms=raw["p50_ms"],
        p99_ms=raw["p99_ms"],
        requests=int(raw["requests"]),
    )


def limit_b(args: argparse.Namespace, load: Load) -> Result:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.minimal_app", "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with server(cmd, env, port, "/") as pid:
        if load.warmup:
            wrk(port, "check", 1, load.warmup, load)
        meter = CpuMeter(pid, None)
        meter.start()
        raw = wrk(port, "check", 1, load.duration, load)
        result = wrk_result("-", "-", "limit_b", raw)
        meter.stop(result, raw["duration_us"] / 1e6)
        result.rss_mb = worker_rss_mb(pid)
    log(f"limit (b): {result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk and pgbench threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server workers")
    parser.add_argument("--contacts", type=int, default=10_000, help="small ledger contacts")
    parser.add_argument("--large-contacts", type=int, default=100_000)
    parser.add_argument("--no-large", action="store_true", help="skip the large ledger")
    parser.add_argument("--no-limits", action="store_true", help="skip limits (a) and (b)")
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the server's KOTALLY_LOG_LEVEL (INFO: an access line per request, to a file)",
    )
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles of a worker, per run")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    args.workloads = [w for w in args.only.split(",") if w]
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    ensure_tools(need_pgbench="postgresql" in dbs and not args.no_limits)
    load = Load(args.duration, args.warmup, args.connections, args.threads)

    started = time.monotonic()
    results: list[Result] = []
    if not args.no_limits:
        results.append(limit_b(args, load))
    for db in dbs:
        results += bench_database(db, "small", args.contacts, args, load)
        if not args.no_large:
            results += bench_database(db, "large", args.large_contacts, args, load)

    print(
        f"\nKotally benchmark: {args.connections} connections, {args.workers} server workers, "
        f"{args.duration} s per run, {os.cpu_count()} CPUs, log level {args.log_level}; "
        f"small ledger {args.contacts:,} contacts / "
        f"{args.contacts * seed.ENTRIES_PER_CONTACT:,} entries, large "
        f"{args.large_contacts:,} / {args.large_contacts * seed.ENTRIES_PER_CONTACT:,}\n"
    )
    print(table(results))
    print("\nTargets (reported, not asserted):")
    for line in targets(results):
        print(f"  {line}")
    print(f"\n({time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
