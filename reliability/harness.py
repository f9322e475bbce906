"""A fresh database, a seeded world and a `kotally serve --workers N` process tree to attack."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
KOTALLY = str(Path(sys.executable).with_name("kotally"))
POSTGRES_ADMIN_URL = os.environ.get(
    "KOTALLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
READY_TIMEOUT_SECONDS = 60.0
CLI_TIMEOUT_SECONDS = 120.0
LOCATION = "loc_rel"
OTHER_LOCATION = "loc_other"
ALL_SCOPES = "grant,check,deduct,restore,summary"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pg_ctl(action: str) -> None:
    """Stop or start the local PostgreSQL 15 cluster (the outage scenario only)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", action],
        check=True,
        timeout=120,
        capture_output=True,
    )


def wait_for_postgres(timeout: float = 60.0) -> None:
    admin = create_engine(make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg"))
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with admin.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        admin.dispose()


class Database:
    """A throwaway database: a SQLite file in a temp dir, or a PostgreSQL database."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'kotally.db'}"
            self._pg_name = None
        elif kind == "postgresql":
            self._pg_name = f"kotally_rel_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self._admin_url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg")
            self._admin('CREATE DATABASE "{name}"')
            self.url = self._admin_url.set(database=self._pg_name).render_as_string(
                hide_password=False
            )
        else:
            raise ValueError(f"unknown database {kind!r}")

    def _admin(self, sql: str) -> None:
        engine = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql.format(name=self._pg_name)))
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self._pg_name is not None:
            wait_for_postgres()
            self._admin('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def query(self, sql: str, **params: Any) -> list[Any]:
        """Read the database directly (checks that do not trust the API)."""
        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params))
        finally:
            engine.dispose()


@dataclass
class Client:
    client_id: str
    token: str
    location_id: str


@dataclass
class Environment:
    """One database, its seeded world and the environment `kotally` runs with."""

    kind: str
    workdir: Path
    db: Database
    secret_key: str
    env: dict[str, str]
    clients: dict[str, Client] = field(default_factory=dict)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KOTALLY, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kotally {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def verify(self) -> tuple[bool, str]:
        done = self.cli("verify", check=False)
        return done.returncode == 0, (done.stdout + done.stderr).strip()

    def create_client(
        self, name: str, location: str = LOCATION, scopes: str = ALL_SCOPES, **kw: str
    ) -> Client:
        extra = [arg for key, value in kw.items() for arg in (f"--{key}", value)]
        out = self.cli(
            "client",
            "create",
            "--location",
            location,
            "--name",
            name,
            "--scopes",
            scopes,
            "--json",
            *extra,
        ).stdout
        data = json.loads(out)
        client = Client(data["client_id"], data["token"], data["location_id"])
        self.clients[name] = client
        return client

    def close(self) -> None:
        try:
            self.db.drop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def make_environment(kind: str, **settings: str) -> Environment:
    """A fresh, migrated database with two locations and a 20-credit package in each."""
    workdir = Path(tempfile.mkdtemp(prefix=f"kotally-rel-{kind}-"))
    db = Database(kind, workdir)
    secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        "KOTALLY_DATABASE_URL": db.url,
        "KOTALLY_SECRET_KEY": secret,
        "KOTALLY_ENV": "production",
        "KOTALLY_RATE_LIMIT_PER_SECOND": "0",
        "KOTALLY_LOG_LEVEL": "INFO",
        "TMPDIR": str(workdir),  # the server's metrics dir lands here, removed with it
        **{f"KOTALLY_{k.upper()}": v for k, v in settings.items()},
    }
    environment = Environment(kind, workdir, db, secret, env)
    try:
        environment.cli("migrate")
        for loc in (LOCATION, OTHER_LOCATION):
            environment.cli("location", "create", "--id", loc, "--name", f"Studio {loc}")
            environment.cli(
                "config",
                "create",
                "--location",
                loc,
                "--id",
                "pc_20",
                "--name",
                "20-pack",
                "--type",
                "package",
                "--credits",
                "20",
                "--calendar",
                "cal_1",
            )
        environment.create_client("load")
        environment.create_client("other", location=OTHER_LOCATION)
    except BaseException:
        environment.close()
        raise
    return environment


class Server:
    """`kotally serve --workers N` in its own process group, so kill -9 reaches every process."""

    def __init__(self, environment: Environment, workers: int = 2) -> None:
        self.environment = environment
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = environment.workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [KOTALLY, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.environment.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"kotally serve exited: see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"kotally serve not ready after {timeout}s")

    def pids(self) -> list[int]:
        """The supervisor and its workers: every process of the server's process group."""
        if self.proc is None:
            return []
        pgid = self.proc.pid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
        return found

    def kill9(self) -> int:
        """SIGKILL every server process at once; returns how many there were."""
        if self.proc is None:
            return 0
        count = len(self.pids())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.proc = None
        return count

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=40)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill9()
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
