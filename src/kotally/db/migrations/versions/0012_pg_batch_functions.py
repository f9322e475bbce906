"""PostgreSQL: the API's checks and deducts in batches, many requests to one statement

A worker sends the checks (and the deducts) that arrived while its earlier statements ran as
one call (db/pg_batch.py): the parameters as arrays, one element per request, and one json
array of answers back. A batch is one transaction: one commit, one round trip, one wake-up of
the backend for all of them. Measured with pgbench on the benchmark's ledger (bench/RESULTS.md).

- kotally_claim: the idempotency claim that opened kotally_deduct, alone: NULL when claimed,
  else kotally_deduct's answer for a key already held ("in_progress", "existing");
- kotally_deduct_claimed: the rest of kotally_deduct, for a claimed key;
- kotally_deduct: replaced by the two in turn, so the ORM's callers (ledger/service.py) and the
  batch run the same statements;
- kotally_api_claim: the gate (as in kotally_api_deduct, 0011), then the claim; "claimed" with
  the location's billing state when the deduct may go on;
- kotally_api_deduct_batch: every request's gate and claim first, in the order of (location,
  request_id); then each claimed deduct in the order sent (the caller sorts by contact). Locks
  are therefore taken in one global order by every batch (claims by key, then contacts), so two
  batches cannot deadlock on each other;
- kotally_api_check_batch: kotally_api_check for each request;
- kotally_api_deduct (0009, 0011): dropped, the batch took its place.

Each request runs in a subtransaction of its own (an EXCEPTION block): an error answers that
request alone, {"k": "error", "state": SQLSTATE, "message"}, and for a deduct drops its claim,
so the request leaves nothing behind, as when it ran alone and its statement failed.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence
from importlib import import_module

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_0009 = import_module("kotally.db.migrations.versions.0009_pg_api_functions")
_0011 = import_module("kotally.db.migrations.versions.0011_pg_leaner_functions")

_CLAIM_START = "    -- The claim (idempotency/repository.py claim)"
_CLAIM_END = "    -- An unstored outcome"
_HEAD, _REST = _0011.DEDUCT.split(_CLAIM_START)
_CLAIM_BODY, _AFTER_CLAIM = _REST.split(_CLAIM_END)
_DECLARATIONS = _HEAD[_HEAD.index("DECLARE\n") : _HEAD.index("BEGIN\n")]
_CLAIM_DECLARATIONS = "    v_claimed uuid;\n    v_record record;\n"
assert _CLAIM_DECLARATIONS in _DECLARATIONS
_CLAIMED_DECLARATIONS = _DECLARATIONS.replace(_CLAIM_DECLARATIONS, "")

CLAIM = f"""
CREATE FUNCTION kotally_claim(
    p_location_id text, p_request_id text, p_fingerprint text, p_payload json,
    p_record_id uuid, p_now timestamptz
) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
{_CLAIM_DECLARATIONS}BEGIN
{_CLAIM_START}{_CLAIM_BODY.rstrip()}
    RETURN NULL;
END
$$
"""

DEDUCT_CLAIMED = f"""
CREATE FUNCTION kotally_deduct_claimed(
    p_location_id text, p_suspended boolean, p_request_id text, p_record_id uuid,
    p_appointment_id uuid, p_contact_field text, p_contact_value text, p_config_id text,
    p_calendar_id text, p_amount integer, p_external_ref text, p_appointment_time timestamptz,
    p_now timestamptz, p_correlation_id text, p_actor text, p_messages json
) RETURNS json LANGUAGE plpgsql AS $$
{_CLAIMED_DECLARATIONS}BEGIN
{_CLAIM_END}{_AFTER_CLAIM}"""

_CLAIMED_ARGUMENTS = """p_location_id, p_suspended, p_request_id, p_record_id, p_appointment_id,
        p_contact_field, p_contact_value, p_config_id, p_calendar_id, p_amount, p_external_ref,
        p_appointment_time, p_now, p_correlation_id, p_actor, p_messages"""

# kotally_deduct's CREATE line and signature, unchanged.
_DEDUCT_SIGNATURE = _HEAD[: _HEAD.index("DECLARE\n")]
assert _DEDUCT_SIGNATURE.lstrip().startswith("CREATE OR REPLACE FUNCTION kotally_deduct(")

DEDUCT = f"""{_DEDUCT_SIGNATURE}DECLARE
    v_answer json := kotally_claim(p_location_id, p_request_id, p_fingerprint, p_payload,
                                   p_record_id, p_now);
BEGIN
    IF v_answer IS NOT NULL THEN
        RETURN v_answer;
    END IF;
    RETURN kotally_deduct_claimed(
        {_CLAIMED_ARGUMENTS});
END
$$
"""

API_CLAIM = _0011._api(
    """kotally_api_claim(
    p_client_id uuid, p_token_hash text, p_admitted boolean, p_location_id text,
    p_request_id text, p_fingerprint text, p_payload json, p_record_id uuid, p_now timestamptz
)""",
    "VOLATILE",
    "deduct",
    """coalesce(
            kotally_claim(p_location_id, p_request_id, p_fingerprint, p_payload, p_record_id,
                          p_now),
            json_build_object('k', 'claimed', 'suspended', v.billing_status = 'suspended'))""",
).replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION", 1)

_ERROR = "json_build_object('k', 'error', 'state', SQLSTATE, 'message', SQLERRM)"

API_DEDUCT_BATCH = f"""
CREATE FUNCTION kotally_api_deduct_batch(
    p_client_id uuid[], p_token_hash text[], p_admitted boolean[], p_location_id text[],
    p_request_id text[], p_fingerprint text[], p_payload json[], p_record_id uuid[],
    p_appointment_id uuid[], p_contact_field text[], p_contact_value text[],
    p_config_id text[], p_calendar_id text[], p_amount integer[], p_external_ref text[],
    p_appointment_time timestamptz[], p_now timestamptz[], p_correlation_id text[],
    p_actor text[], p_messages json
) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := cardinality(p_request_id);
    v_answers json[] := array_fill(NULL::json, ARRAY[v_count]);
    i integer;
BEGIN
    -- Every gate and claim first, in one order of the keys.
    FOR i IN
        SELECT s FROM generate_subscripts(p_request_id, 1) AS s
        ORDER BY p_location_id[s], p_request_id[s], s
    LOOP
        BEGIN
            v_answers[i] := kotally_api_claim(
                p_client_id[i], p_token_hash[i], p_admitted[i], p_location_id[i],
                p_request_id[i], p_fingerprint[i], p_payload[i], p_record_id[i], p_now[i]);
        EXCEPTION WHEN OTHERS THEN
            v_answers[i] := {_ERROR};
        END;
    END LOOP;
    -- Then the deducts claimed, in the order sent.
    FOR i IN 1 .. v_count LOOP
        CONTINUE WHEN (v_answers[i] ->> 'k') IS DISTINCT FROM 'claimed';
        BEGIN
            v_answers[i] := kotally_deduct_claimed(
                p_location_id[i], (v_answers[i] ->> 'suspended')::boolean, p_request_id[i],
                p_record_id[i], p_appointment_id[i], p_contact_field[i], p_contact_value[i],
                p_config_id[i], p_calendar_id[i], p_amount[i], p_external_ref[i],
                p_appointment_time[i], p_now[i], p_correlation_id[i], p_actor[i], p_messages);
        EXCEPTION WHEN OTHERS THEN
            v_answers[i] := {_ERROR};
            DELETE FROM idempotency_records WHERE id = p_record_id[i];
        END;
    END LOOP;
    RETURN array_to_json(v_answers);
END
$$
"""  # noqa: S608 - every piece is a constant of this file

API_CHECK_BATCH = f"""
CREATE FUNCTION kotally_api_check_batch(
    p_client_id uuid[], p_token_hash text[], p_admitted boolean[], p_location_id text[],
    p_contact_field text[], p_contact_value text[], p_config_id text[], p_calendar_id text[],
    p_amount integer[], p_now timestamptz[], p_correlation_id text[], p_messages json
) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_count integer := cardinality(p_client_id);
    v_answers json[] := array_fill(NULL::json, ARRAY[v_count]);
    i integer;
BEGIN
    FOR i IN 1 .. v_count LOOP
        BEGIN
            v_answers[i] := kotally_api_check(
                p_client_id[i], p_token_hash[i], p_admitted[i], p_location_id[i],
                p_contact_field[i], p_contact_value[i], p_config_id[i], p_calendar_id[i],
                p_amount[i], p_now[i], p_correlation_id[i], p_messages);
        EXCEPTION WHEN OTHERS THEN
            v_answers[i] := {_ERROR};
        END;
    END LOOP;
    RETURN array_to_json(v_answers);
END
$$
"""

_API_DEDUCT = _0009.SIGNATURES[0]
assert _API_DEDUCT.startswith("kotally_api_deduct(")
_DROPPED = (
    "kotally_api_check_batch(uuid[], text[], boolean[], text[], text[], text[], text[], text[], "
    "integer[], timestamptz[], text[], json)",
    "kotally_api_deduct_batch(uuid[], text[], boolean[], text[], text[], text[], json[], uuid[], "
    "uuid[], text[], text[], text[], text[], integer[], text[], timestamptz[], timestamptz[], "
    "text[], text[], json)",
    "kotally_api_claim(uuid, text, boolean, text, text, text, json, uuid, timestamptz)",
    "kotally_deduct_claimed(text, boolean, text, uuid, uuid, text, text, text, text, integer, "
    "text, timestamptz, timestamptz, text, text, json)",
    "kotally_claim(text, text, text, json, uuid, timestamptz)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in (CLAIM, DEDUCT_CLAIMED, DEDUCT, API_CLAIM, API_DEDUCT_BATCH, API_CHECK_BATCH):
        op.execute(sql)
    op.execute(f"DROP FUNCTION {_API_DEDUCT}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_0011.DEDUCT)  # the claim inline again, before its function goes
    op.execute(_0011.API_DEDUCT)
    for signature in _DROPPED:
        op.execute(f"DROP FUNCTION {signature}")
