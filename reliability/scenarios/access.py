"""6. Access matrix against the live server (the same matrix runs in tests/reliability over ASGI)."""

from __future__ import annotations

import httpx

from reliability.access import AccessWorld, run_matrix
from reliability.harness import LOCATION, OTHER_LOCATION, Environment, Server
from reliability.load import Figures


def world(environment: Environment) -> AccessWorld:
    gone = environment.create_client("deactivated")
    environment.cli("client", "deactivate", gone.client_id)
    rotated = environment.create_client("rotated")
    environment.cli("client", "rotate", rotated.client_id, "--json")
    scoped = {
        scope: environment.create_client(f"only-{scope}", scopes=scope).token
        for scope in ("check", "summary")
    }
    return AccessWorld(
        location=LOCATION,
        other_location=OTHER_LOCATION,
        token=environment.clients["load"].token,
        other_token=environment.clients["other"].token,
        deactivated_token=gone.token,
        rotated_out_token=rotated.token,
        scoped_tokens=scoped,
    )


async def attack(server: Server, environment: Environment, figures: Figures) -> None:
    access_world = world(environment)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await run_matrix(client, access_world, figures)
