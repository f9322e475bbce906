"""fewer index pages written per deduct on a large ledger

Measured on the benchmark's ledger of 10,000,000 entries (bench/RESULTS.md, sixth session): for
each index a deduct wrote to, its PostgreSQL backend read about one page from outside the shared
buffers, and it wrote 7 full page images to the WAL per deduct (0.03 on the small ledger).

- PostgreSQL: `entitlements` keeps 30 % of each page free (fillfactor 70). A deduct updates its
  lot's remaining credits; with no room on the lot's page the new row version goes elsewhere and
  every one of the table's five indexes gets an entry for it. On the large ledger 80 % of these
  updates were of that kind; with room on the page they stay on it (heap-only) and touch no index.
  Pages already written keep their layout until the table is rewritten (VACUUM FULL).
- Both databases: `ix_ledger_entries_ref` holds only the entries that have an external_ref (the
  restore of a booking and `kotally verify` look entries up by it, never by its absence), so an
  entry without one no longer writes to it.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REF_COLUMNS = ["location_id", "contact_id", "external_ref"]
_HAS_REF = sa.text("external_ref IS NOT NULL")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE entitlements SET (fillfactor = 70)")
    op.drop_index("ix_ledger_entries_ref", table_name="ledger_entries")
    op.create_index(
        "ix_ledger_entries_ref",
        "ledger_entries",
        _REF_COLUMNS,
        postgresql_where=_HAS_REF,
        sqlite_where=_HAS_REF,
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_ref", table_name="ledger_entries")
    op.create_index("ix_ledger_entries_ref", "ledger_entries", _REF_COLUMNS)
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE entitlements RESET (fillfactor)")
