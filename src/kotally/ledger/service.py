"""Check and deduct: the hot paths.

On SQLite both are a few raw sqlite3 statements (ledger/sqlite_ops.py); on PostgreSQL each is one
call of a SQL function, kotally_deduct or kotally_check (ledger/pg_deduct.py). The API reaches the
same statements without a session (ledger/sqlite_api.py, ledger/pg_api.py). The two databases
answer alike: every test runs on both (docs/ledger.md).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from kotally.idempotency.service import Reply
from kotally.ledger import pg_deduct, sqlite_ops
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import CheckRequest, DeductRequest


def check(ctx: LedgerContext, req: CheckRequest) -> Reply:
    """Would the contact have enough credits? Changes nothing."""
    if _on_sqlite(ctx.session):
        body = sqlite_ops.check_request(
            sqlite_ops.connection_of(ctx.session),
            ctx.location,
            req,
            ctx.clock.now(),
            ctx.correlation_id,
        )
        return Reply(200, body)
    return pg_deduct.check(ctx, req)


def deduct(ctx: LedgerContext, req: DeductRequest) -> Reply:
    """Take credits, once per request_id (api-v2.md §4.5, §5). The same steps on both databases:
    SQL statements run on SQLite's connection (sqlite_ops.deduct), or PostgreSQL's SQL function
    kotally_deduct; both answer alike, and pg_deduct.reply makes the Reply."""
    if not _on_sqlite(ctx.session):
        return pg_deduct.deduct(ctx, req)
    args = pg_deduct.arguments(ctx, req)
    return pg_deduct.reply(sqlite_ops.deduct(sqlite_ops.connection_of(ctx.session), args), args)


def _on_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"
