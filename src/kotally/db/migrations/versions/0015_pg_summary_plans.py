"""PostgreSQL: the contact summary's plans take its indexes, even when made on an empty table

PL/pgSQL caches the plans of kotally_summary's statements per connection. Made while a table was
empty after a VACUUM (`appointments` on a new database, say), they scan that table whole, and
keep doing so on that connection as the table grows, until an ANALYZE of it invalidates them.
Measured: on a connection that had read eight summaries before 30,000 appointments were booked,
the next summary read all 30,000 rows; with this setting, none (bench/RESULTS.md, eighth
session).

Every read of the summary is by an indexed key (the contact's, then its five latest of each
list), so `enable_seqscan = off` for the function's own statements loses no good plan: it only
stops a plan from counting on a table staying empty. The deduct's booking needed a rewrite
instead (0014): there the write itself goes through the unique key.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUMMARY = "kotally_summary(text, text, uuid, timestamptz)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER FUNCTION {_SUMMARY} SET enable_seqscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER FUNCTION {_SUMMARY} RESET enable_seqscan")
