"""`kotally migrate`, `serve` and `demo`."""

from __future__ import annotations

import click

from kotally.cli import main
from kotally.cli.common import clock, database, load_settings, operator_errors
from kotally.db.engine import normalize_url
from kotally.db.migrate import upgrade_to_head
from kotally.demo import curl_commands, ensure_demo


@main.command()
@operator_errors
def migrate() -> None:
    """Bring the database to the latest schema."""
    db = database()
    try:
        upgrade_to_head(db.engine)
    finally:
        db.dispose()
    click.echo(f"database migrated ({db.dialect})")


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
@operator_errors
def serve_command(host: str, port: int, workers: int) -> None:
    """Serve the machine API (migrates the database first)."""
    from kotally.server import serve

    settings = load_settings()
    try:
        settings.check_production()
        normalize_url(settings.database_url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    base = f"http://{host}:{port}"
    click.echo(f"Kotally on {base}  (docs: {base}/docs, admin UI: {base}/admin)", err=True)
    serve(settings, host=host, port=port, workers=workers)


@main.command("demo")
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True)
@operator_errors
def demo_command(base_url: str) -> None:
    """Create the demo location, package and client (idempotent) and print ready curl commands."""
    settings = load_settings()
    db = database()
    try:
        upgrade_to_head(db.engine)
        with db.unit_of_work() as session:
            world = ensure_demo(session, clock(), settings.secret_key)
    finally:
        db.dispose()
    click.echo("demo location loc_1 with a 10-credit package pc_package_1 on calendar cal_demo_1")
    click.echo(f"demo API client {world.client_id}; token (rotated on every `kotally demo`):")
    click.echo(world.token)
    click.echo(f"\nAdmin UI: {base_url.rstrip('/')}/admin")
    click.echo(f"  sign in as {world.admin_email} (owner) with the password (reset on every run):")
    click.echo(f"  {world.admin_password}")
    click.echo("\nThe published examples, ready to paste once `kotally serve` runs:")
    for line in curl_commands(base_url, world.token):
        click.echo(line)
