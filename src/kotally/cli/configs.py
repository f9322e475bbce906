"""`kotally config …`: product configs."""

from __future__ import annotations

from typing import Any

import click

from kotally.audit import service as audit
from kotally.audit import tracked
from kotally.cli import main
from kotally.cli.common import clock, echo_json, open_session, operator_errors, with_options
from kotally.configs import service as configs


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
@with_options(_link_options)
@operator_errors
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
    with open_session() as session:
        tracked.create_config(
            session,
            clock(),
            audit.cli_actor(),
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
@with_options(_link_options)
@click.option("--activate", is_flag=True, help="make a deactivated config active again")
@operator_errors
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
    with open_session() as session:
        tracked.update_config(
            session,
            clock(),
            audit.cli_actor(),
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
@operator_errors
def config_deactivate(config_id: str, location_id: str) -> None:
    """Stop granting and drawing on a product config (its lots stop being live)."""
    with open_session() as session:
        tracked.update_config(
            session,
            clock(),
            audit.cli_actor(),
            location_id=location_id,
            config_id=config_id,
            action="product_config.deactivate",
            active=False,
        )
    click.echo(f"product config {config_id} deactivated")


@config.command("list")
@click.option("--location", "location_id", required=True)
@operator_errors
def config_list(location_id: str) -> None:
    """List a location's product configs."""
    with open_session(write=False) as session:
        rows = [_config_row(c) for c in configs.list_all(session, location_id)]
    echo_json(rows)
