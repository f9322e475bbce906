"""PostgreSQL: the hot path's functions, the same answers with fewer statements and calls

Measured with pgbench straight against the API functions on the benchmark's seeded ledger
(bench/RESULTS.md): PostgreSQL's CPU per check 0.073 -> 0.063-0.064 ms, per deduct 0.348 ->
0.325-0.347 ms. Nothing they answer changes.

- kotally_select: the contact by the field its value was sent in, then by the other, each a plain
  lookup on its unique index (location, id): the same contact as the one statement it replaces
  (an OR of both fields, ordered by which matched, LIMIT 1), which cost a bitmap scan and a sort;
- kotally_check, kotally_deduct: kotally_select's row assigned, not selected FROM the function;
- kotally_api_check, kotally_api_deduct, kotally_api_summary: kotally_gate's decision that the
  request may go straight on, taken inline on the client's row (no json built and parsed again,
  one call less); a request that may not still gets kotally_gate's own answer.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence
from importlib import import_module

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_0009 = import_module("kotally.db.migrations.versions.0009_pg_api_functions")
_0010 = import_module("kotally.db.migrations.versions.0010_pg_summary_function")


def _replaced(sql: str, old: str, new: str) -> str:
    assert sql.count(old) == 1, old
    return sql.replace(old, new)


def _or_replace(sql: str) -> str:
    return sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _contact(first: str, second: str, lock: str) -> str:
    # Every piece is a constant of this file: no value reaches the SQL text.
    return f"""
            SELECT id INTO contact FROM contacts
            WHERE location_id = p_location_id AND {first} = p_contact_value{lock};
            IF NOT FOUND THEN
                SELECT id INTO contact FROM contacts
                WHERE location_id = p_location_id AND {second} = p_contact_value{lock};
            END IF;"""  # noqa: S608


def _contact_lookup(lock: str) -> str:
    return f"""        IF p_contact_field = 'ghl_contact_id' THEN{
        _contact("ghl_contact_id", "external_contact_id", lock)
    }
        ELSE{_contact("external_contact_id", "ghl_contact_id", lock)}
        END IF;"""


_OLD_CONTACT = _0009.SELECT[
    _0009.SELECT.index("    IF p_lock THEN\n") : _0009.SELECT.index("    IF contact IS NULL THEN")
]
_NEW_CONTACT = f"""    -- By the field the value was sent in, then by the other: each field holds a
    -- value once in a location (unique indexes), so this is `_matching`'s contact.
    IF p_lock THEN
{_contact_lookup(" FOR UPDATE")}
    ELSE
{_contact_lookup("")}
    END IF;

"""
SELECT = _or_replace(_replaced(_0009.SELECT, _OLD_CONTACT, _NEW_CONTACT))

CHECK = _replaced(
    _replaced(
        _or_replace(_0009.CHECK),
        "    v_available bigint;\n",
        "    v_available bigint;\n    v_selected record;\n",
    ),
    """    SELECT s.refusal, s.available INTO v_refusal, v_available
    FROM kotally_select(p_location_id, p_contact_field, p_contact_value, p_config_id,
                        p_calendar_id, p_amount, p_now, false) AS s;
""",
    """    v_selected := kotally_select(p_location_id, p_contact_field, p_contact_value,
                                 p_config_id, p_calendar_id, p_amount, p_now, false);
    v_refusal := v_selected.refusal;
    v_available := v_selected.available;
""",
)

DEDUCT = _replaced(
    _replaced(
        _0009.DEDUCT,
        "    v_available bigint;\n",
        "    v_available bigint;\n    v_selected record;\n",
    ),
    """    SELECT s.refusal, s.contact, s.configs, s.available
    INTO v_refusal, v_contact, v_configs, v_available
    FROM kotally_select(p_location_id, p_contact_field, p_contact_value, p_config_id,
                        p_calendar_id, p_amount, p_now, true) AS s;
""",
    """    v_selected := kotally_select(p_location_id, p_contact_field, p_contact_value,
                                 p_config_id, p_calendar_id, p_amount, p_now, true);
    v_refusal := v_selected.refusal;
    v_contact := v_selected.contact;
    v_configs := v_selected.configs;
    v_available := v_selected.available;
""",
)


def _api(signature: str, volatility: str, scope: str, passed: str) -> str:
    """An API function: when kotally_gate (0009) would answer "pass", `passed` (with the
    client's row in `v`); otherwise kotally_gate's answer. The test is kotally_gate's own, in its
    order: not "unauthorized" (its first IF not taken), and its second IF taken."""
    return f"""
CREATE OR REPLACE FUNCTION {signature} RETURNS json LANGUAGE plpgsql {volatility} AS $$
DECLARE
    v record;
BEGIN
    SELECT c.active, c.token_hash, c.scopes, l.id AS location_id, l.billing_status
    INTO v
    FROM api_clients c JOIN locations l ON l.id = c.location_id
    WHERE c.id = p_client_id;
    IF (NOT FOUND OR NOT v.active OR v.token_hash IS DISTINCT FROM p_token_hash) IS NOT TRUE
       AND (p_admitted AND p_location_id IS NOT NULL AND v.location_id = p_location_id
            AND '{scope}' = ANY (string_to_array(v.scopes, ','))) IS TRUE THEN
        RETURN {passed};
    END IF;
    RETURN kotally_gate(p_client_id, p_token_hash, '{scope}', p_admitted, p_location_id);
END
$$
"""  # noqa: S608


API_CHECK = _api(
    """kotally_api_check(
    p_client_id uuid, p_token_hash text, p_admitted boolean,
    p_location_id text, p_contact_field text, p_contact_value text,
    p_config_id text, p_calendar_id text, p_amount integer, p_now timestamptz,
    p_correlation_id text, p_messages json
)""",
    "STABLE",
    "check",
    """json_build_object('k', 'done', 'body', kotally_check(
            p_location_id, v.billing_status = 'suspended', p_contact_field,
            p_contact_value, p_config_id, p_calendar_id, p_amount, p_now, p_correlation_id,
            p_messages))""",
)

API_DEDUCT = _api(
    """kotally_api_deduct(
    p_client_id uuid, p_token_hash text, p_admitted boolean,
    p_location_id text, p_request_id text, p_fingerprint text,
    p_payload json, p_record_id uuid, p_appointment_id uuid,
    p_contact_field text, p_contact_value text, p_config_id text, p_calendar_id text,
    p_amount integer, p_external_ref text, p_appointment_time timestamptz,
    p_now timestamptz, p_correlation_id text, p_actor text, p_messages json
)""",
    "VOLATILE",
    "deduct",
    """kotally_deduct(
            p_location_id, v.billing_status = 'suspended', p_request_id, p_fingerprint,
            p_payload, p_record_id, p_appointment_id, p_contact_field, p_contact_value,
            p_config_id, p_calendar_id, p_amount, p_external_ref, p_appointment_time, p_now,
            p_correlation_id, p_actor, p_messages)""",
)

API_SUMMARY = _api(
    """kotally_api_summary(
    p_client_id uuid, p_token_hash text, p_admitted boolean,
    p_location_id text, p_contact_key text, p_contact_uuid uuid, p_now timestamptz
)""",
    "STABLE",
    "summary",
    """json_build_object(
            'k', 'done',
            'body', kotally_summary(p_location_id, p_contact_key, p_contact_uuid, p_now))""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in (SELECT, CHECK, DEDUCT, API_CHECK, API_DEDUCT, API_SUMMARY):
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in (_0009.SELECT, _0009.CHECK, _0009.DEDUCT, _0009.API_CHECK, _0009.API_DEDUCT):
        op.execute(_or_replace(sql))
    op.execute(_or_replace(_0010.API_SUMMARY))
