"""The operator command line: `kotally …`. The database comes from KOTALLY_DATABASE_URL.

One module per command group; each registers its commands on `main`.
"""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="kotally")
def main() -> None:
    """Kotally: the credit and entitlement ledger."""


from kotally.cli import admin, clients, configs, ledger, locations, system, webhooks  # noqa: E402

__all__ = ["admin", "clients", "configs", "ledger", "locations", "main", "system", "webhooks"]
