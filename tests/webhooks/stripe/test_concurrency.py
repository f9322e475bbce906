"""The same Stripe event delivered many times at once applies once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.webhooks.handling import Result
from tests.factories import make_config, make_location
from tests.webhooks.stripe import events as ev
from tests.webhooks.stripe.conftest import StripeHooks

WRITERS = 10
BARRIER_TIMEOUT_SECONDS = 120


@pytest.fixture
def wide_db(settings: Settings) -> Iterator[Database]:
    # One connection per writer, so all of them are in flight at once; long lock and busy
    # timeouts so a slow machine queues writers rather than failing them.
    wide = Settings(
        **{
            **settings.model_dump(),
            "db_pool_size": WRITERS,
            "db_pool_overflow": 0,
            "db_lock_timeout_seconds": 60,
            "db_busy_timeout_seconds": 60,
        }
    )
    database = Database(wide)
    yield database
    database.dispose()


def _all_at_once(hooks: StripeHooks, event: dict[str, object]) -> list[Result]:
    barrier = threading.Barrier(WRITERS, timeout=BARRIER_TIMEOUT_SECONDS)

    def send() -> Result:
        barrier.wait()
        return hooks.send(event)  # type: ignore[arg-type]

    with ThreadPoolExecutor(WRITERS) as pool:
        return [f.result() for f in [pool.submit(send) for _ in range(WRITERS)]]


def test_one_invoice_ten_times_at_once_grants_once(wide_db: Database, clock: FrozenClock) -> None:
    make_location(wide_db, clock)
    make_config(wide_db, clock, stripe_prices=["price_pack"])
    hooks = StripeHooks(wide_db, clock)
    results = _all_at_once(
        hooks, ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_pack")]))
    )

    assert {r.outcome for r in results} == {"grant_applied"}
    assert len(hooks.grants()) == 1
    assert [lot.credits_remaining for lot in hooks.lots()] == [10]
    hooks.clean()


def test_one_refund_ten_times_at_once_claws_back_once(
    wide_db: Database, clock: FrozenClock
) -> None:
    make_location(wide_db, clock)
    make_config(wide_db, clock, stripe_prices=["price_pack"])
    hooks = StripeHooks(wide_db, clock)
    session = ev.checkout_session(line_items=[ev.checkout_line("price_pack")])
    hooks.send(ev.event("checkout.session.completed", session))
    results = _all_at_once(hooks, ev.event("charge.refunded", ev.charge(amount_refunded=2500)))

    assert {r.details["credits_clawed_back"] for r in results} == {5}
    assert [e.amount for e in hooks.entries("void")] == [-5]
    hooks.clean()
