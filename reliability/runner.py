"""The frame every scenario runs in: fresh database, served app, attack, `kotally verify`."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from reliability.harness import Environment, Server, make_environment
from reliability.load import Driver, Figures

Attack = Callable[[Server, Environment, Figures], Awaitable[None]]


def check_verify(environment: Environment, figures: Figures, when: str = "") -> None:
    clean, output = environment.verify()
    if not clean:
        figures.violate(f"kotally verify {when}: {output[-300:]}")


def check_server_log(server: Server, environment: Environment, figures: Figures) -> None:
    """Secrets never logged; every unhandled error is a failure."""
    log = server.log_text()
    secrets = [environment.secret_key]
    for client in environment.clients.values():
        secrets.append(client.token)
        secrets.append(client.token.rsplit("_", 1)[1])  # the secret half alone
    for secret in secrets:
        if secret in log:
            figures.violate("a secret appears in the server log")
    unhandled = log.count('"unhandled error"')
    if unhandled:
        figures.fail(f"{unhandled} unhandled error(s) in the server log")


async def standard(
    name: str, kind: str, attack: Attack, *, workers: int = 2, **settings: str
) -> Figures:
    figures = Figures(name, kind)
    started = time.monotonic()
    environment = make_environment(kind, **settings)
    server = Server(environment, workers=workers)
    try:
        server.start()
        await attack(server, environment, figures)
        check_verify(environment, figures)
    finally:
        server.stop()
        check_server_log(server, environment, figures)
        environment.close()
        figures.seconds = time.monotonic() - started
    return figures


class CycleLoad(Protocol):
    """Traffic a kill cycle runs until `stop` is set."""

    stop: asyncio.Event

    async def run(self) -> None: ...


L = TypeVar("L", bound=CycleLoad)


async def kill_cycles(
    server: Server,
    environment: Environment,
    figures: Figures,
    *,
    kills: int,
    kill_after: tuple[float, float],
    driver: Callable[[], Driver],
    load: Callable[[Driver, int], L],
    check: Callable[[L, Driver], Awaitable[None]],
    before_restart: Callable[[L], None] | None = None,
) -> None:
    """`kills` times: run a load, kill -9 every server process at a random moment, restart,
    `kotally verify`, then `check` what the load sent against what the database holds."""
    killed = 0
    for cycle in range(kills):
        async with driver() as sending:
            running = load(sending, cycle)
            task = asyncio.create_task(running.run())
            await asyncio.sleep(random.uniform(*kill_after))
            killed += await asyncio.to_thread(server.kill9)
            running.stop.set()
            await asyncio.wait_for(task, timeout=60)
        if before_restart is not None:
            before_restart(running)
        await asyncio.to_thread(server.start)
        check_verify(environment, figures, f"after kill {cycle + 1}")
        async with driver() as checking:
            await check(running, checking)
    figures.notes.insert(0, f"{kills} kills, {killed} processes killed with SIGKILL")
