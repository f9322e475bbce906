"""`kotally location …`: locations (tenants)."""

from __future__ import annotations

from typing import Any

import click

from kotally.audit import service as audit
from kotally.audit import tracked
from kotally.cli import main
from kotally.cli.common import clock, echo_json, open_session, operator_errors, with_options
from kotally.locations import service as locations


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


def _location_row(loc: Any) -> dict[str, Any]:
    return {
        "id": loc.id,
        "name": loc.name,
        "timezone": loc.timezone,
        "billing_status": loc.billing_status,
        "cancellation_window_hours": loc.cancellation_window_hours,
        "stripe_webhook_secret_set": loc.stripe_webhook_secret is not None,
        "ghl_installed": loc.ghl_installed_at is not None and loc.ghl_uninstalled_at is None,
    }


@location.command("create")
@click.option("--id", "location_id", required=True)
@click.option("--name", required=True)
@with_options(_location_options)
@operator_errors
def location_create(
    location_id: str,
    name: str,
    timezone: str | None,
    billing_status: str | None,
    cancellation_window_hours: int | None,
) -> None:
    """Create a location."""
    with open_session() as session:
        loc = tracked.create_location(
            session,
            clock(),
            audit.cli_actor(),
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
@with_options(_location_options)
@click.option("--no-cancellation-window", is_flag=True, help="remove the cancellation window")
@click.option(
    "--stripe-webhook-secret",
    help="the Stripe endpoint secret (whsec_…) of this location; stored, never printed",
)
@click.option("--no-stripe-webhook-secret", is_flag=True, help="remove the Stripe secret")
@operator_errors
def location_update(
    location_id: str,
    name: str | None,
    timezone: str | None,
    billing_status: str | None,
    cancellation_window_hours: int | None,
    no_cancellation_window: bool,
    stripe_webhook_secret: str | None,
    no_stripe_webhook_secret: bool,
) -> None:
    """Change a location."""
    window: object = locations.UNSET
    if no_cancellation_window and cancellation_window_hours is not None:
        raise click.UsageError("give --cancellation-window-hours or --no-cancellation-window")
    if no_cancellation_window:
        window = None
    elif cancellation_window_hours is not None:
        window = cancellation_window_hours
    if no_stripe_webhook_secret and stripe_webhook_secret is not None:
        raise click.UsageError("give --stripe-webhook-secret or --no-stripe-webhook-secret")
    secret: object = locations.UNSET
    if no_stripe_webhook_secret:
        secret = None
    elif stripe_webhook_secret is not None:
        secret = stripe_webhook_secret
    with open_session() as session:
        tracked.update_location(
            session,
            clock(),
            audit.cli_actor(),
            location_id,
            name=name,
            timezone=timezone,
            billing_status=billing_status,
            cancellation_window_hours=window,
            stripe_webhook_secret=secret,
        )
    click.echo(f"location {location_id} updated")


@location.command("list")
@operator_errors
def location_list() -> None:
    """List locations."""
    with open_session(write=False) as session:
        rows = [_location_row(loc) for loc in locations.list_all(session)]
    echo_json(rows)
