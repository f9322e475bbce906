"""Which contact a check or deduct names (contacts/repository.py `_matching`, and the SQL
functions' kotally_select): the value is looked for in both id fields, and where two contacts
hold it, one as a ghl id and the other as an external id, the one holding it in the field it was
sent in wins."""

from __future__ import annotations

from typing import Any

import pytest

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.api.conftest import Api
from tests.factories import make_contact

pytestmark = pytest.mark.usefixtures("world")


async def _balance(api: Api, **contact: Any) -> int | str:
    body = (await api.check(**{"ghl_contact_id": None, **contact})).json()
    if body["reason_code"] != "eligible":
        return str(body["reason_code"])
    return int(body["balance_after"]) + 1


async def test_the_sent_field_first_then_the_other(
    api: Api, db: Database, clock: FrozenClock
) -> None:
    assert (await api.grant(ghl_contact_id="shared")).json()["reason_code"] == "grant_applied"
    # Another contact holds "shared" as its external id.
    make_contact(db, clock, ghl_contact_id="b_ghl", external_contact_id="shared")
    for _ in range(2):
        assert (await api.grant(ghl_contact_id="b_ghl")).json()["reason_code"] == "grant_applied"
    granted = await api.grant(ghl_contact_id=None, external_contact_id="ext_only")
    assert granted.json()["reason_code"] == "grant_applied"

    assert await _balance(api, ghl_contact_id="shared") == 10
    assert await _balance(api, external_contact_id="shared") == 20
    assert await _balance(api, external_contact_id="b_ghl") == 20  # found by its ghl id
    assert await _balance(api, ghl_contact_id="ext_only") == 10  # found by its external id
    assert await _balance(api, ghl_contact_id="nobody") == "NO_ENTITLEMENT"

    taken = await api.deduct(ghl_contact_id=None, external_contact_id="shared", amount=2)  # B
    assert taken.json()["balance_after"] == 18
    taken = await api.deduct(ghl_contact_id="ext_only", amount=3)
    assert taken.json()["balance_after"] == 7
    assert await _balance(api, ghl_contact_id="shared") == 10
    assert await _balance(api, external_contact_id="shared") == 18
    assert await _balance(api, external_contact_id="ext_only") == 7
