"""Every endpoint x {no token, garbage, wrong prefix, deactivated, rotated out, another location's
token, token without the scope}: rejected with the right status, never another location's data."""

from __future__ import annotations

import httpx
import pytest
from reliability.access import AccessWorld, endpoints, run_matrix
from reliability.load import Figures

pytestmark = pytest.mark.anyio


async def test_every_endpoint_rejects_every_wrong_caller(
    client: httpx.AsyncClient, world: AccessWorld
) -> None:
    figures = Figures("access", "asgi")
    await run_matrix(client, world, figures)
    assert figures.notes == []
    assert (figures.failures, figures.violations) == (0, 0)
    assert figures.requests >= 18 * len(await endpoints(client))
