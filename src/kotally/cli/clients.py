"""`kotally client …`: machine API clients and their tokens."""

from __future__ import annotations

import click

from kotally.audit import service as audit
from kotally.audit import tracked
from kotally.auth import service as clients
from kotally.cli import main
from kotally.cli.common import clock, echo_json, load_settings, open_session, operator_errors
from kotally.kit.clock import isoformat


@main.group()
def client() -> None:
    """Machine API clients and their tokens."""


def _issued(issued: clients.IssuedClient, as_json: bool, verb: str) -> None:
    if as_json:
        echo_json(
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
@operator_errors
def client_create(
    location_id: str, name: str, scopes: str, rate_limit: int | None, as_json: bool
) -> None:
    """Create an API client and print its token once."""
    settings = load_settings()
    with open_session() as session:
        issued = tracked.create_client(
            session,
            clock(),
            settings.secret_key,
            audit.cli_actor(),
            location_id=location_id,
            name=name,
            scopes=scopes.split(","),
            rate_limit_per_second=rate_limit,
        )
    _issued(issued, as_json, "created")


@client.command("rotate")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def client_rotate(client_id: str, as_json: bool) -> None:
    """Replace a client's token; the old one stops working at once."""
    settings = load_settings()
    with open_session() as session:
        issued = tracked.rotate_client(
            session, clock(), settings.secret_key, audit.cli_actor(), client_id
        )
    _issued(issued, as_json, "rotated")


@client.command("deactivate")
@click.argument("client_id")
@operator_errors
def client_deactivate(client_id: str) -> None:
    """Turn a client off; its token is rejected from the next request on."""
    with open_session() as session:
        tracked.deactivate_client(session, clock(), audit.cli_actor(), client_id)
    click.echo(f"client {client_id} deactivated")


@client.command("list")
@click.option("--location", "location_id", required=True)
@operator_errors
def client_list(location_id: str) -> None:
    """List a location's clients (never their tokens)."""
    with open_session(write=False) as session:
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
    echo_json(rows)
