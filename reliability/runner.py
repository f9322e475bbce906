"""The frame every scenario runs in: fresh database, served app, attack, `kotally verify`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from reliability.harness import Environment, Server, make_environment
from reliability.load import Figures

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
