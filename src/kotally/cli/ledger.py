"""`kotally verify` and `kotally expire`: ledger upkeep."""

from __future__ import annotations

import sys

import click

from kotally.cli import main
from kotally.cli.common import clock, database, open_session, operator_errors, require_migrated
from kotally.ledger.expiry import sweep
from kotally.ledger.verify import verify


@main.command("verify")
@operator_errors
def verify_command() -> None:
    """Recompute every lot from the ledger and check every invariant."""
    with open_session(write=False) as session:
        violations = verify(session)
    if violations:
        for violation in violations:
            click.echo(str(violation), err=True)
        click.echo(f"{len(violations)} violation(s)", err=True)
        sys.exit(1)
    click.echo("ledger verified: no violations")


@main.command("expire")
@operator_errors
def expire_command() -> None:
    """Run the expiry sweep once."""
    db = database()
    try:
        require_migrated(db)
        result = sweep(db, clock())
    finally:
        db.dispose()
    click.echo(f"expired {result.lots_expired} lot(s), {result.credits_expired} credit(s)")
