"""The API's checks and deducts on PostgreSQL, sent in batches (db/pg_batch.py) to the batch
functions of migration 0012; ledger/pg_api.py makes each request's arguments."""

from __future__ import annotations

from dataclasses import dataclass

from kotally.db.async_pg import AsyncPostgres
from kotally.db.pg_batch import Batches
from kotally.ledger import pg_deduct

assert pg_deduct.CHECK_ARGUMENTS[-1][0] == pg_deduct.ARGUMENTS[-1][0] == "messages"

# A check writes nothing. A deduct's batch takes about three subtransaction ids per request
# (its claim, the claim's own lock-wait handler, its deduct) and a backend keeps 64 in shared
# memory: past them every other backend's snapshot must look them up on disk.
CHECKS_MAX = 64
DEDUCTS_MAX = 20


def _sql(function: str, arguments: tuple[tuple[str, str], ...]) -> bytes:
    """`SELECT function(gate…, the operation's arguments…, messages)`, each cast: an array of
    each request's gate (client id, token hash, whether admitted, location id) and of its own
    arguments, those of `arguments` after the location's two; then the refusals' messages,
    which every request shares."""
    types = ["uuid", "text", "boolean", "text"] + [sql_type for _, sql_type in arguments[2:-1]]
    types = [f"{sql_type}[]" for sql_type in types] + [arguments[-1][1]]
    casts = [f"${number}::{sql_type}" for number, sql_type in enumerate(types, 1)]
    return f"SELECT {function}({', '.join(casts)})".encode()


@dataclass(frozen=True)
class PgBatches:
    """The API's checks and deducts on PostgreSQL, each kind sent in batches (db/pg_batch.py)."""

    check: Batches
    deduct: Batches

    @classmethod
    def build(cls, pg: AsyncPostgres, in_flight: int) -> PgBatches:
        def batches(function: str, arguments: tuple[tuple[str, str], ...], most: int) -> Batches:
            sql = _sql(function, arguments)
            shared = (pg_deduct.MESSAGES_JSON,)
            return Batches(pg, sql, shared=shared, max_batch=most, in_flight=in_flight)

        return cls(
            check=batches("kotally_api_check_batch", pg_deduct.CHECK_ARGUMENTS, CHECKS_MAX),
            deduct=batches("kotally_api_deduct_batch", pg_deduct.ARGUMENTS, DEDUCTS_MAX),
        )
