"""POST /webhooks/ghl: signatures, body checks, the inbox's once-only storage (webhooks.md §1-2)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from kotally.errors import OperatorError
from kotally.kit.clock import FrozenClock
from kotally.ledger import pg_deduct, sqlite_ops
from tests.webhooks.conftest import Hooks, appointment


def _event(clock: FrozenClock, **kw: object) -> dict[str, object]:
    now = clock.now()
    return appointment(start=now + timedelta(days=3), updated=now, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["ed25519", "rsa", "both"])
def test_a_signed_event_is_stored_and_processed(
    hooks: Hooks, clock: FrozenClock, scheme: str
) -> None:
    hooks.ledger.grant()
    body = hooks.send(_event(clock), scheme=scheme)
    assert body["ok"] is True
    assert body["reason_code"] == "event_processed"
    assert body["status"] == "processed"
    assert body["outcome"] == "deducted"
    [stored] = hooks.events()
    assert str(stored.id) == body["event_id"]
    assert stored.provider == "ghl"
    assert stored.event_type == "AppointmentCreate"
    assert stored.location_id == "loc_1"
    assert stored.effects == ["ghl:appt:appt_1:deduct:1"]
    assert stored.correlation_id == body["correlation_id"]
    assert hooks.balance() == 9


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-GHL-Signature": "N/A"},
        {"X-GHL-Signature": "N/A", "X-WH-Signature": "N/A"},
        {"X-GHL-Signature": "not base64!!"},
        {"X-GHL-Signature": "AAAA"},
        {"X-WH-Signature": "AAAA"},
        {"X-GHL-Signature": ""},
    ],
)
def test_unsigned_or_malformed_signatures_are_401_and_nothing_is_stored(
    hooks: Hooks, clock: FrozenClock, headers: dict[str, str]
) -> None:
    hooks.ledger.grant()
    response = hooks.post(_event(clock), scheme="none", headers=headers)
    assert response.status_code == 401
    assert response.json()["reason_code"] == "SIGNATURE_INVALID"
    assert "www-authenticate" not in response.headers
    assert hooks.events() == []
    assert hooks.balance() == 10


def test_a_signature_of_another_body_or_key_is_refused(hooks: Hooks, clock: FrozenClock) -> None:
    event = json.dumps(_event(clock)).encode()
    other = hooks.signer.headers(event + b" ")
    assert hooks.post(event, scheme="none", headers=other).status_code == 401
    # The Ed25519 signature is preferred: a wrong one is not rescued by a right RSA one.
    mixed = {"X-GHL-Signature": other["X-GHL-Signature"], **hooks.signer.headers(event, "rsa")}
    assert hooks.post(event, scheme="none", headers=mixed).status_code == 401
    # N/A in the Ed25519 header falls back to the RSA signature.
    legacy = {"X-GHL-Signature": "N/A", **hooks.signer.headers(event, "rsa")}
    assert hooks.post(event, scheme="none", headers=legacy).status_code == 200
    assert len(hooks.events()) == 1


def test_the_default_keys_refuse_the_tests_signatures(
    db: object, clock: FrozenClock, settings: object, signer: object
) -> None:
    from kotally.config import GHL_ED25519_PUBLIC_KEY, Settings
    from tests.webhooks.conftest import Hooks as H

    assert isinstance(settings, Settings)
    defaults = settings.model_copy(update={"expire_sweep_interval_seconds": 0})
    assert defaults.ghl_webhook_ed25519_public_key == GHL_ED25519_PUBLIC_KEY
    assert defaults.ghl_webhook_rsa_public_key is None
    hooks = H(db, clock, defaults, signer)  # type: ignore[arg-type]
    assert hooks.post(_event(clock), scheme="ed25519").status_code == 401
    assert hooks.post(_event(clock), scheme="rsa").status_code == 401  # legacy RSA: no key


def test_a_body_over_the_limit_is_413(hooks: Hooks, clock: FrozenClock) -> None:
    event = _event(clock)
    event["padding"] = "x" * 262144
    response = hooks.post(event)
    assert response.status_code == 413
    assert response.json()["reason_code"] == "PAYLOAD_TOO_LARGE"
    assert hooks.events() == []


@pytest.mark.parametrize(
    "raw", [b'{"type": "AppointmentCreate", ', b"[1, 2]", b'"text"', b"", b"\xff\xfe", b"null"]
)
def test_signed_bodies_that_are_not_json_objects_are_400(hooks: Hooks, raw: bytes) -> None:
    response = hooks.post(raw)
    assert response.status_code == 400
    assert response.json()["reason_code"] == "INVALID_JSON"
    assert hooks.events() == []


def test_the_same_event_twice_is_a_duplicate(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    event = _event(clock, webhook_id="wh_1")
    first = hooks.send(event)
    second = hooks.send(event)
    assert second["reason_code"] == "event_duplicate"
    assert second["event_id"] == first["event_id"]
    assert second["status"] == "processed"
    assert second["outcome"] == "deducted"
    assert len(hooks.events()) == 1
    assert hooks.balance() == 9


def test_without_webhook_id_the_body_hash_is_the_key(hooks: Hooks, clock: FrozenClock) -> None:
    event = {"type": "InvoicePaid", "altId": "loc_1", "altType": "location", "_id": "inv_x"}
    first = hooks.send(event)
    assert hooks.send(event)["reason_code"] == "event_duplicate"
    [stored] = hooks.events()
    assert stored.provider_event_id.startswith("sha256:")
    assert str(stored.id) == first["event_id"]


@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        ({"type": "ContactCreate", "locationId": "loc_1", "id": "c1"}, "event_type_not_handled"),
        ({"type": "AppointmentCreate", "locationId": "loc_unknown"}, "location_unknown"),
        ({"type": "AppointmentCreate"}, "location_missing"),
        ({"type": 5, "locationId": "loc_1"}, "event_type_not_handled"),
    ],
)
def test_events_with_nothing_to_do_are_stored_ignored(
    hooks: Hooks, payload: dict[str, object], outcome: str
) -> None:
    body = hooks.send({"webhookId": f"wh-{outcome}-{payload.get('type')}", **payload})
    assert body["reason_code"] == "event_ignored"
    assert body["status"] == "ignored"
    assert body["outcome"] == outcome
    assert len(hooks.events()) == 1


def test_an_unexpected_error_is_stored_failed_and_nothing_is_applied(
    hooks: Hooks, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks.ledger.grant()

    def then_fail(original: Any) -> Any:
        def fail(*args: Any) -> Any:
            original(*args)  # the credit moves, then the error: the savepoint takes it back
            raise RuntimeError("disk on fire")

        return fail

    # SQLite's deduct is its raw statements (sqlite_ops.deduct); PostgreSQL's is one call of its
    # SQL function.
    originals = sqlite_ops.deduct, pg_deduct.call
    monkeypatch.setattr(sqlite_ops, "deduct", then_fail(sqlite_ops.deduct))
    monkeypatch.setattr(pg_deduct, "call", then_fail(pg_deduct.call))
    event = _event(clock)
    body = hooks.send(event)
    assert body["reason_code"] == "event_processed"
    assert body["status"] == "failed"
    assert "disk on fire" not in json.dumps(body)
    [stored] = hooks.events()
    assert stored.status == "failed"
    assert stored.error == "RuntimeError: disk on fire"
    assert stored.effects == []
    assert hooks.balance() == 10
    hooks.clean()
    # Once fixed, the replay applies it exactly once.
    monkeypatch.setattr(sqlite_ops, "deduct", originals[0])
    monkeypatch.setattr(pg_deduct, "call", originals[1])
    replayed = hooks.replay(body["event_id"])
    assert (replayed.status, replayed.outcome, replayed.attempts) == ("processed", "deducted", 2)
    assert replayed.error is None
    assert hooks.balance() == 9
    with pytest.raises(OperatorError, match="only failed or unmatched"):
        hooks.replay(body["event_id"])
