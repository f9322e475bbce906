"""The live-server scenarios that fit CI time: `kotally serve --workers 2` on a fresh database.

Crashes, outage and fuzzing take minutes (and the outage stops the shared PostgreSQL server), so
they run only from the documented command: `.venv/bin/python -m reliability.run`.
"""

from __future__ import annotations

import pytest
from reliability.runner import standard
from reliability.scenarios import double_spend, retries

from tests.conftest import DATABASES

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.mark.parametrize("kind", DATABASES)
@pytest.mark.parametrize(
    ("name", "attack"), [("double_spend", double_spend.attack), ("retries", retries.attack)]
)
async def test_live_scenario(kind: str, name: str, attack: object) -> None:
    figures = await standard(name, kind, attack)  # type: ignore[arg-type]
    assert figures.notes == []
    assert (figures.failures, figures.violations) == (0, 0)
    assert figures.requests >= 2_000
