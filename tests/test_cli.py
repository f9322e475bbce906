"""The operator command line, run in-process on a real database."""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.engine import make_url

from kotally import cli as cli_module
from kotally.cli import common as cli_common
from kotally.config import get_settings
from kotally.db.engine import Database
from kotally.db.models import ApiClient, Entitlement, Location, ProductConfig
from kotally.kit.clock import FrozenClock
from kotally.kit.crypto import hash_token
from tests.conftest import DATABASES, TEST_SECRET
from tests.factories import Ledger, lot, make_config, make_location, rows

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TOKEN_RE = re.compile(rf"ktly_({UUID_RE})_{UUID_RE}")

Kotally = Callable[[str], Result]
KotallyOn = Callable[[str, str], Result]


@pytest.fixture
def kotally_on(monkeypatch: pytest.MonkeyPatch, clock: FrozenClock) -> Iterator[KotallyOn]:
    """Run `kotally <command line>` on a database url, with the test clock as the CLI's clock."""
    monkeypatch.setenv("KOTALLY_SECRET_KEY", TEST_SECRET)
    monkeypatch.setattr(cli_common, "CLOCK", clock)
    runner = CliRunner()

    def invoke(database_url: str, command: str) -> Result:
        monkeypatch.setenv("KOTALLY_DATABASE_URL", database_url)
        get_settings.cache_clear()  # settings are cached per process: re-read the environment
        try:
            return runner.invoke(cli_module.main, shlex.split(command))
        finally:
            get_settings.cache_clear()

    yield invoke
    get_settings.cache_clear()


@pytest.fixture
def kotally(kotally_on: KotallyOn, database_url: str) -> Kotally:
    """`kotally <command line>` on the migrated test database."""
    return lambda command: kotally_on(database_url, command)


@pytest.fixture(params=DATABASES)
def blank_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    pg = request.getfixturevalue("postgres")
    name = f"{pg.name}_blank"
    with pg.admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with pg.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _refused(result: Result, message: str, exit_code: int = 1) -> None:
    assert result.exit_code == exit_code, result.output
    assert message in result.output


def _json(result: Result) -> Any:
    return json.loads(_ok(result).stdout)


# --- migrate -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "location list",
        "location create --id loc_1 --name Studio",
        "client list --location loc_1",
        "config list --location loc_1",
        "verify",
        "expire",
    ],
)
def test_a_command_on_an_unmigrated_database_says_to_migrate(
    kotally_on: KotallyOn, blank_database_url: str, command: str
) -> None:
    result = kotally_on(blank_database_url, command)

    _refused(result, "run `kotally migrate`")


def test_migrate_brings_a_blank_database_to_the_schema(
    kotally_on: KotallyOn, blank_database_url: str
) -> None:
    first = kotally_on(blank_database_url, "migrate")
    again = kotally_on(blank_database_url, "migrate")

    assert "database migrated" in _ok(first).output
    _ok(again)
    assert _json(kotally_on(blank_database_url, "location list")) == []


# --- locations -----------------------------------------------------------------------------------


def test_location_create_and_list(kotally: Kotally) -> None:
    created = kotally(
        "location create --id loc_1 --name 'Studio One' --timezone Europe/Berlin "
        "--cancellation-window-hours 24"
    )

    assert "location loc_1 created" in _ok(created).output
    assert _json(kotally("location list")) == [
        {
            "id": "loc_1",
            "name": "Studio One",
            "timezone": "Europe/Berlin",
            "billing_status": "active",
            "cancellation_window_hours": 24,
            "stripe_webhook_secret_set": False,
            "ghl_installed": False,
        }
    ]


def test_location_update(kotally: Kotally) -> None:
    _ok(kotally("location create --id loc_1 --name Studio"))

    _ok(
        kotally(
            "location update loc_1 --name Renamed --billing-status suspended "
            "--cancellation-window-hours 12"
        )
    )
    [updated] = _json(kotally("location list"))
    _ok(kotally("location update loc_1 --no-cancellation-window"))
    [cleared] = _json(kotally("location list"))

    assert (updated["name"], updated["billing_status"]) == ("Renamed", "suspended")
    assert updated["cancellation_window_hours"] == 12
    assert (cleared["cancellation_window_hours"], cleared["billing_status"]) == (None, "suspended")


def test_location_create_refuses_a_duplicate_id(kotally: Kotally) -> None:
    _ok(kotally("location create --id loc_1 --name Studio"))

    result = kotally("location create --id loc_1 --name Other")

    _refused(result, "location 'loc_1' already exists")
    assert [loc["name"] for loc in _json(kotally("location list"))] == ["Studio"]


@pytest.mark.parametrize(
    "command", ["location create --id loc_2 --name Studio", "location update loc_1"]
)
def test_location_refuses_a_bad_timezone(kotally: Kotally, command: str) -> None:
    _ok(kotally("location create --id loc_1 --name Studio"))

    result = kotally(f"{command} --timezone Mars/Olympus_Mons")

    _refused(result, "unknown timezone 'Mars/Olympus_Mons'")
    assert [loc["timezone"] for loc in _json(kotally("location list"))] == ["UTC"]


@pytest.mark.parametrize(
    "command", ["location create --id loc_2 --name Studio", "location update loc_1"]
)
def test_location_refuses_a_bad_billing_status(kotally: Kotally, command: str) -> None:
    _ok(kotally("location create --id loc_1 --name Studio"))

    result = kotally(f"{command} --billing-status frozen")

    _refused(result, "Invalid value for '--billing-status'", exit_code=2)
    assert [loc["billing_status"] for loc in _json(kotally("location list"))] == ["active"]


def test_location_update_of_an_unknown_location(kotally: Kotally) -> None:
    _refused(kotally("location update loc_9 --name X"), "no location 'loc_9'")


# --- API clients ---------------------------------------------------------------------------------


@pytest.fixture
def location(kotally: Kotally) -> str:
    _ok(kotally("location create --id loc_1 --name Studio"))
    return "loc_1"


def _create_client(kotally: Kotally, extra: str = "") -> dict[str, Any]:
    command = "client create --location loc_1 --name 'Booking app' --scopes restore,check,deduct"
    issued: dict[str, Any] = _json(kotally(f"{command} --json {extra}"))
    return issued


def _stored_hash(db: Database, client_id: str) -> str:
    [client] = rows(db, ApiClient, ApiClient.id == uuid.UUID(client_id))
    return client.token_hash


def test_client_create_prints_its_token_once(kotally: Kotally, location: str, db: Database) -> None:
    issued = _create_client(kotally)

    match = TOKEN_RE.fullmatch(issued["token"])
    assert match is not None
    assert match.group(1) == issued["client_id"]
    assert (issued["location_id"], issued["scopes"]) == ("loc_1", ["check", "deduct", "restore"])
    assert _stored_hash(db, issued["client_id"]) == hash_token(TEST_SECRET, issued["token"])


def test_client_create_without_json_prints_the_token(kotally: Kotally, location: str) -> None:
    result = kotally("client create --location loc_1 --name App --scopes summary")

    assert TOKEN_RE.search(_ok(result).stdout) is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--location loc_9 --scopes check", "no location 'loc_9'"),
        ("--location loc_1 --scopes check,launch", "unknown scope(s) launch"),
    ],
)
def test_client_create_refusals(
    kotally: Kotally, location: str, db: Database, options: str, message: str
) -> None:
    _refused(kotally(f"client create --name App {options}"), message)
    assert rows(db, ApiClient) == []


def test_client_rotate_issues_a_new_token(kotally: Kotally, location: str, db: Database) -> None:
    issued = _create_client(kotally)

    rotated = _json(kotally(f"client rotate {issued['client_id']} --json"))

    assert rotated["client_id"] == issued["client_id"]
    assert TOKEN_RE.fullmatch(rotated["token"]) is not None
    assert rotated["token"] != issued["token"]
    assert _stored_hash(db, issued["client_id"]) == hash_token(TEST_SECRET, rotated["token"])


def test_client_deactivate(kotally: Kotally, location: str) -> None:
    issued = _create_client(kotally)

    _ok(kotally(f"client deactivate {issued['client_id']}"))

    [listed] = _json(kotally("client list --location loc_1"))
    assert listed["active"] is False
    _refused(kotally(f"client rotate {issued['client_id']}"), "is deactivated")


def test_client_list_never_shows_a_token_or_its_hash(
    kotally: Kotally, location: str, db: Database
) -> None:
    issued = _create_client(kotally, "--rate-limit 20")

    result = kotally("client list --location loc_1")

    [listed] = _json(result)
    assert listed["client_id"] == issued["client_id"]
    assert (listed["name"], listed["active"], listed["rate_limit_per_second"]) == (
        "Booking app",
        True,
        20,
    )
    assert issued["token"] not in result.output
    assert issued["token"].rsplit("_", 1)[1] not in result.output  # nor its secret part
    assert _stored_hash(db, issued["client_id"]) not in result.output
    assert not any("token" in key or "hash" in key for key in listed)


def test_client_of_an_unknown_id(kotally: Kotally, location: str) -> None:
    _refused(kotally(f"client deactivate {uuid.uuid4()}"), "no API client")


# --- product configs -----------------------------------------------------------------------------


def _configs(kotally: Kotally) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in _json(kotally("config list --location loc_1"))}


def test_config_create_and_list(kotally: Kotally, location: str) -> None:
    _ok(
        kotally(
            "config create --location loc_1 --id pc_package_1 --name '10-class pack' "
            "--type package --credits 10 --expiry-days 90 "
            "--calendar cal_1 --calendar cal_2 --ghl-product prod_1"
        )
    )
    _ok(
        kotally(
            "config create --location loc_1 --id pc_member --name Monthly --type membership "
            "--credits 8 --stripe-price price_1"
        )
    )

    assert _configs(kotally) == {
        "pc_package_1": {
            "id": "pc_package_1",
            "name": "10-class pack",
            "type": "package",
            "credits_total": 10,
            "expiry_days": 90,
            "active": True,
            "calendars": ["cal_1", "cal_2"],
            "ghl_products": ["prod_1"],
            "stripe_prices": [],
        },
        "pc_member": {
            "id": "pc_member",
            "name": "Monthly",
            "type": "membership",
            "monthly_credits": 8,
            "expiry_days": None,
            "active": True,
            "calendars": [],
            "ghl_products": [],
            "stripe_prices": ["price_1"],
        },
    }


def test_config_update_deactivate_and_activate(kotally: Kotally, location: str) -> None:
    _ok(
        kotally(
            "config create --location loc_1 --id pc_1 --name Pack --type package --credits 10 "
            "--expiry-days 30 --calendar cal_1"
        )
    )

    _ok(kotally("config update pc_1 --location loc_1 --credits 12 --no-expiry --calendar cal_9"))
    updated = _configs(kotally)["pc_1"]
    _ok(kotally("config deactivate pc_1 --location loc_1"))
    deactivated = _configs(kotally)["pc_1"]
    _ok(kotally("config update pc_1 --location loc_1 --activate"))

    assert (updated["credits_total"], updated["expiry_days"], updated["calendars"]) == (
        12,
        None,
        ["cal_9"],
    )
    assert deactivated["active"] is False
    assert _configs(kotally)["pc_1"]["active"] is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--location loc_1 --credits 0", "credits must be"),
        ("--location loc_1 --credits -3", "credits must be"),
        ("--location loc_9 --credits 10", "no location 'loc_9'"),
    ],
    ids=["zero-credits", "negative-credits", "unknown-location"],
)
def test_config_create_refusals(
    kotally: Kotally, location: str, db: Database, options: str, message: str
) -> None:
    result = kotally(f"config create --id pc_1 --name Pack --type package {options}")

    _refused(result, message)
    assert rows(db, ProductConfig) == []


def test_config_create_refuses_a_duplicate_id(kotally: Kotally, location: str) -> None:
    create = "config create --location loc_1 --id pc_1 --type package"
    _ok(kotally(f"{create} --name First --credits 10"))

    result = kotally(f"{create} --name Second --credits 5")

    _refused(result, "product config 'pc_1' already exists in 'loc_1'")
    assert _configs(kotally)["pc_1"]["name"] == "First"


def test_config_update_refusals(kotally: Kotally, location: str) -> None:
    _ok(kotally("config create --location loc_1 --id pc_1 --name Pack --type package --credits 10"))

    zero = kotally("config update pc_1 --location loc_1 --credits 0")
    unknown = kotally("config update pc_9 --location loc_1 --name X")

    _refused(zero, "credits must be")
    _refused(unknown, "no product config 'pc_9'")
    assert _configs(kotally)["pc_1"]["credits_total"] == 10


# --- verify, expire, demo ------------------------------------------------------------------------


def test_verify_a_clean_ledger(kotally: Kotally, db: Database, clock: FrozenClock) -> None:
    make_location(db, clock)
    make_config(db, clock)
    Ledger(db, clock).grant()
    Ledger(db, clock).deduct(amount=3)

    result = kotally("verify")

    assert "no violations" in _ok(result).output


def test_verify_names_a_tampered_lot(kotally: Kotally, db: Database, clock: FrozenClock) -> None:
    make_location(db, clock)
    make_config(db, clock)
    granted = Ledger(db, clock).grant()["entitlement_id"]
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE entitlements SET credits_remaining = 3 WHERE id = :id").bindparams(
                bindparam("id", type_=Uuid())
            ),
            {"id": uuid.UUID(granted)},
        )

    result = kotally("verify")

    assert result.exit_code == 1
    assert f"lot {granted}: expected 10, found 3" in result.stderr
    assert "1 violation(s)" in result.stderr


def test_expire_runs_the_sweep(kotally: Kotally, db: Database, clock: FrozenClock) -> None:
    make_location(db, clock)
    make_config(db, clock, expiry_days=10)
    granted = Ledger(db, clock).grant()["entitlement_id"]
    Ledger(db, clock).deduct(amount=4)
    clock.advance(timedelta(days=10))

    result = kotally("expire")

    assert "expired 1 lot(s), 6 credit(s)" in _ok(result).output
    assert lot(db, granted).status == "expired"
    assert "expired 0 lot(s), 0 credit(s)" in _ok(kotally("expire")).output


def test_demo_is_idempotent_and_prints_a_token_and_curl_lines(
    kotally: Kotally, db: Database
) -> None:
    first = _ok(kotally("demo"))
    second = _ok(kotally("demo --base-url http://localhost:9000/"))

    assert [loc.id for loc in rows(db, Location)] == ["loc_1"]
    assert [(c.config_id, c.credits) for c in rows(db, ProductConfig)] == [("pc_package_1", 10)]
    [client] = rows(db, ApiClient)
    tokens = [TOKEN_RE.search(result.stdout) for result in (first, second)]
    assert all(t is not None and t.group(1) == str(client.id) for t in tokens)
    token = tokens[1].group(0)  # type: ignore[union-attr]
    assert client.token_hash == hash_token(TEST_SECRET, token)  # the token printed last works
    curls = [line for line in second.stdout.splitlines() if line.startswith("curl ")]
    assert len(curls) == 5
    assert all(f"Authorization: Bearer {token}" in line for line in curls)
    assert "http://localhost:9000/api/v2/grants" in curls[0]
    assert '"external_payment_id":"payment_123"' in curls[0]
    assert rows(db, Entitlement) == []  # the demo sets things up; it grants nothing
