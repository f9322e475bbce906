"""The operator command line: `kotally …`. The database comes from KOTALLY_DATABASE_URL."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from kotally.auth import service as clients
from kotally.config import Settings, get_settings
from kotally.configs import service as configs
from kotally.db.engine import Database, normalize_url
from kotally.db.migrate import is_at_head, upgrade_to_head
from kotally.demo import curl_commands, ensure_demo
from kotally.errors import OperatorError
from kotally.kit.clock import SystemClock, isoformat
from kotally.ledger.expiry import sweep
from kotally.ledger.verify import verify
from kotally.locations import service as locations

F = TypeVar("F", bound=Callable[..., Any])
CLOCK = SystemClock()


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid KOTALLY_ settings: {exc}") from exc


def _database() -> Database:
    try:
        return Database(_settings())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _session(*, write: bool = True) -> Iterator[Session]:
    db = _database()
    try:
        if not is_at_head(db.engine):
            raise click.ClickException("the database is not migrated: run `kotally migrate` first")
        with db.unit_of_work(write=write) as session:
            yield session
    finally:
        db.dispose()


def _operator_errors(func: F) -> F:
    """Refusals and database trouble become one clear line and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OperatorError as exc:
            raise click.ClickException(str(exc)) from exc
        except DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(f"database error: {detail}") from exc

    return wrapper  # type: ignore[return-value]


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group()
@click.version_option(package_name="kotally")
def main() -> None:
    """Kotally: the credit and entitlement ledger."""


@main.command()
@_operator_errors
def migrate() -> None:
    """Bring the database to the latest schema."""
    db = _database()
    try:
        upgrade_to_head(db.engine)
    finally:
        db.dispose()
    click.echo(f"database migrated ({db.dialect})")


# --- locations -------------------------------------------------------------------------------


@main.group()
def location() -> None:
    """Locations (tenants)."""


_location_options = [
    click.option("--timezone", help="IANA time zone, e.g. Europe/Berlin"),
    click.option("--billing-status", type=click.Choice(["active", "trialing", "suspended"])),
    click.option(
        "--cancellation-window-hours",
        type=click.IntRange(min=0),
        help="restores allowed only until this many hours before the appointment",
    ),
]


def _with(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _location_row(loc: Any) -> dict[str, Any]:
    return {
        "id": loc.id,
        "name": loc.name,
        "timezone": loc.timezone,
        "billing_status": loc.billing_status,
        "cancellation_window_hours": loc.cancellation_window_hours,
    }


@location.command("create")
@click.option("--id", "location_id", required=True)
@click.option("--name", required=True)
@_with(_location_options)
@_operator_errors
def location_create(
    location_id: str,
    name: str,
    timezone: str | None,
    billing_status: str | None,
    cancellation_window_hours: int | None,
) -> None:
    """Create a location."""
    with _session() as session:
        loc = locations.create(
            session,
            CLOCK,
            location_id=location_id,
            name=name,
            timezone=timezone or "UTC",
            billing_status=billing_status or "active",
            cancellation_window_hours=cancellation_window_hours,
        )
        row = _location_row(loc)
    click.echo(f"location {row['id']} created")


@location.command("update")
@click.argument("location_id")
@click.option("--name")
@_with(_location_options)
@click.option("--no-cancellation-window", is_flag=True, help="remove the cancellation window")
@_operator_errors
def location_update(
    location_id: str,
    name: str | None,
    timezone: str | None,
    billing_status: str | None,
    cancellation_window_hours: int | None,
    no_cancellation_window: bool,
) -> None:
    """Change a location."""
    window: object = locations.UNSET
    if no_cancellation_window and cancellation_window_hours is not None:
        raise click.UsageError("give --cancellation-window-hours or --no-cancellation-window")
    if no_cancellation_window:
        window = None
    elif cancellation_window_hours is not None:
        window = cancellation_window_hours
    with _session() as session:
        locations.update(
            session,
            CLOCK,
            location_id,
            name=name,
            timezone=timezone,
            billing_status=billing_status,
            cancellation_window_hours=window,
        )
    click.echo(f"location {location_id} updated")


@location.command("list")
@_operator_errors
def location_list() -> None:
    """List locations."""
    with _session(write=False) as session:
        rows = [_location_row(loc) for loc in locations.list_all(session)]
    _echo_json(rows)


# --- API clients ------------------------------------------------------------------------------


@main.group()
def client() -> None:
    """Machine API clients and their tokens."""


def _issued(issued: clients.IssuedClient, as_json: bool, verb: str) -> None:
    if as_json:
        _echo_json(
            {
                "client_id": str(issued.client.id),
                "token": issued.token,
                "location_id": issued.client.location_id,
                "scopes": sorted(issued.client.scope_set),
            }
        )
        return
    click.echo(f"client {issued.client.id} {verb}; its token (shown once, keep it safe):")
    click.echo(issued.token)


@client.command("create")
@click.option("--location", "location_id", required=True)
@click.option("--name", required=True)
@click.option("--scopes", required=True, help="comma-separated: grant,check,deduct,restore,summary")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    help="requests per second for this client (burst twice that)",
)
@click.option("--json", "as_json", is_flag=True)
@_operator_errors
def client_create(
    location_id: str, name: str, scopes: str, rate_limit: int | None, as_json: bool
) -> None:
    """Create an API client and print its token once."""
    settings = _settings()
    with _session() as session:
        issued = clients.create(
            session,
            CLOCK,
            settings.secret_key,
            location_id=location_id,
            name=name,
            scopes=scopes.split(","),
            rate_limit_per_second=rate_limit,
        )
    _issued(issued, as_json, "created")


@client.command("rotate")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@_operator_errors
def client_rotate(client_id: str, as_json: bool) -> None:
    """Replace a client's token; the old one stops working at once."""
    settings = _settings()
    with _session() as session:
        issued = clients.rotate(session, CLOCK, settings.secret_key, client_id)
    _issued(issued, as_json, "rotated")


@client.command("deactivate")
@click.argument("client_id")
@_operator_errors
def client_deactivate(client_id: str) -> None:
    """Turn a client off; its token is rejected from the next request on."""
    with _session() as session:
        clients.deactivate(session, client_id)
    click.echo(f"client {client_id} deactivated")


@client.command("list")
@click.option("--location", "location_id", required=True)
@_operator_errors
def client_list(location_id: str) -> None:
    """List a location's clients (never their tokens)."""
    with _session(write=False) as session:
        rows = [
            {
                "client_id": str(c.id),
                "name": c.name,
                "scopes": sorted(c.scope_set),
                "active": c.active,
                "rate_limit_per_second": c.rate_limit_per_second,
                "created_at": isoformat(c.created_at),
                "rotated_at": isoformat(c.rotated_at),
                "last_used_at": isoformat(c.last_used_at),
            }
            for c in clients.list_for(session, location_id)
        ]
    _echo_json(rows)


# --- product configs --------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Product configs: what a payment grants and what a booking draws on."""


_link_options = [
    click.option("--calendar", "calendars", multiple=True, help="linked calendar id (repeatable)"),
    click.option(
        "--ghl-product", "ghl_products", multiple=True, help="GHL product id (repeatable)"
    ),
    click.option(
        "--stripe-price", "stripe_prices", multiple=True, help="Stripe price id (repeatable)"
    ),
]


def _config_row(c: Any) -> dict[str, Any]:
    return {
        "id": c.config_id,
        "name": c.name,
        "type": c.type,
        "credits_total" if c.type == "package" else "monthly_credits": c.credits,
        "expiry_days": c.expiry_days,
        "active": c.active,
        "calendars": c.linked("calendar"),
        "ghl_products": c.linked("ghl_product"),
        "stripe_prices": c.linked("stripe_price"),
    }


@config.command("create")
@click.option("--location", "location_id", required=True)
@click.option("--id", "config_id", required=True)
@click.option("--name", required=True)
@click.option("--type", "type_", required=True, type=click.Choice(["package", "membership"]))
@click.option(
    "--credits",
    required=True,
    type=int,
    help="credits per purchase (package) or per month (membership)",
)
@click.option("--expiry-days", type=int)
@_with(_link_options)
@_operator_errors
def config_create(
    location_id: str,
    config_id: str,
    name: str,
    type_: str,
    credits: int,
    expiry_days: int | None,
    calendars: tuple[str, ...],
    ghl_products: tuple[str, ...],
    stripe_prices: tuple[str, ...],
) -> None:
    """Create a product config."""
    with _session() as session:
        configs.create(
            session,
            CLOCK,
            location_id=location_id,
            config_id=config_id,
            name=name,
            type_=type_,
            credits=credits,
            expiry_days=expiry_days,
            calendars=calendars,
            ghl_products=ghl_products,
            stripe_prices=stripe_prices,
        )
    click.echo(f"product config {config_id} created in {location_id}")


@config.command("update")
@click.argument("config_id")
@click.option("--location", "location_id", required=True)
@click.option("--name")
@click.option("--type", "type_", type=click.Choice(["package", "membership"]))
@click.option("--credits", type=int)
@click.option("--expiry-days", type=int)
@click.option("--no-expiry", is_flag=True, help="new grants never expire")
@_with(_link_options)
@click.option("--activate", is_flag=True, help="make a deactivated config active again")
@_operator_errors
def config_update(
    config_id: str,
    location_id: str,
    name: str | None,
    type_: str | None,
    credits: int | None,
    expiry_days: int | None,
    no_expiry: bool,
    calendars: tuple[str, ...],
    ghl_products: tuple[str, ...],
    stripe_prices: tuple[str, ...],
    activate: bool,
) -> None:
    """Change a product config; repeated link options replace that kind of link."""
    if no_expiry and expiry_days is not None:
        raise click.UsageError("give --expiry-days or --no-expiry, not both")
    with _session() as session:
        configs.update(
            session,
            CLOCK,
            location_id=location_id,
            config_id=config_id,
            name=name,
            type_=type_,
            credits=credits,
            expiry_days=expiry_days,
            clear_expiry=no_expiry,
            calendars=calendars or None,
            ghl_products=ghl_products or None,
            stripe_prices=stripe_prices or None,
            active=True if activate else None,
        )
    click.echo(f"product config {config_id} updated")


@config.command("deactivate")
@click.argument("config_id")
@click.option("--location", "location_id", required=True)
@_operator_errors
def config_deactivate(config_id: str, location_id: str) -> None:
    """Stop granting and drawing on a product config (its lots stop being live)."""
    with _session() as session:
        configs.update(session, CLOCK, location_id=location_id, config_id=config_id, active=False)
    click.echo(f"product config {config_id} deactivated")


@config.command("list")
@click.option("--location", "location_id", required=True)
@_operator_errors
def config_list(location_id: str) -> None:
    """List a location's product configs."""
    with _session(write=False) as session:
        rows = [_config_row(c) for c in configs.list_all(session, location_id)]
    _echo_json(rows)


# --- ledger upkeep ----------------------------------------------------------------------------


@main.command("verify")
@_operator_errors
def verify_command() -> None:
    """Recompute every lot from the ledger and check every invariant."""
    with _session(write=False) as session:
        violations = verify(session)
    if violations:
        for violation in violations:
            click.echo(str(violation), err=True)
        click.echo(f"{len(violations)} violation(s)", err=True)
        sys.exit(1)
    click.echo("ledger verified: no violations")


@main.command("expire")
@_operator_errors
def expire_command() -> None:
    """Run the expiry sweep once."""
    db = _database()
    try:
        if not is_at_head(db.engine):
            raise click.ClickException("the database is not migrated: run `kotally migrate` first")
        result = sweep(db, CLOCK)
    finally:
        db.dispose()
    click.echo(f"expired {result.lots_expired} lot(s), {result.credits_expired} credit(s)")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="worker processes sharing the database",
)
@_operator_errors
def serve_command(host: str, port: int, workers: int) -> None:
    """Serve the machine API (migrates the database first)."""
    from kotally.server import serve

    settings = _settings()
    try:
        settings.check_production()
        normalize_url(settings.database_url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Kotally on http://{host}:{port}  (docs: http://{host}:{port}/docs)", err=True)
    serve(settings, host=host, port=port, workers=workers)


@main.command("demo")
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True)
@_operator_errors
def demo_command(base_url: str) -> None:
    """Create the demo location, package and client (idempotent) and print ready curl commands."""
    settings = _settings()
    db = _database()
    try:
        upgrade_to_head(db.engine)
        with db.unit_of_work() as session:
            world = ensure_demo(session, CLOCK, settings.secret_key)
    finally:
        db.dispose()
    click.echo("demo location loc_1 with a 10-credit package pc_package_1 on calendar cal_demo_1")
    click.echo(f"demo API client {world.client_id}; token (rotated on every `kotally demo`):")
    click.echo(world.token)
    click.echo("\nThe published examples, ready to paste once `kotally serve` runs:")
    for line in curl_commands(base_url, world.token):
        click.echo(line)
