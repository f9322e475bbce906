"""PostgreSQL: the API's contact summary, authentication included, in one statement

- kotally_iso: a time as the API writes it (kit/clock.py isoformat: UTC, milliseconds, a Z);
- kotally_summary: the body of contacts/reads.py `summary` (api-v2.md §4.6) as json, or NULL when
  the location has no such contact. reads.summary (SQLAlchemy) is the reference it must equal:
  tests/contacts/test_summary_by_database.py compares the two on varied histories;
- kotally_api_summary: kotally_gate (migration 0009) with the `summary` scope, then
  kotally_summary, so that the API's summary is one round trip (ledger/pg_api.py `summary`).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ISO = """
CREATE FUNCTION kotally_iso(p_at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$
"""

# Each list as read_repository.py reads it (the same joins, order and limits, on the indexes of
# migrations 0002 and 0003); each row as contacts/schemas.py writes it.
SUMMARY = """
CREATE FUNCTION kotally_summary(
    p_location_id text, p_contact_key text, p_contact_uuid uuid, p_now timestamptz
) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    c contacts;
    v_available bigint;
    v_lots json;
    v_count bigint;
    v_amount numeric;
    v_last timestamptz;
BEGIN
    -- contacts/repository.py find_row_for_read: the Kotally UUID first, then either other id,
    -- the ghl id preferred.
    IF p_contact_uuid IS NOT NULL THEN
        SELECT * INTO c FROM contacts WHERE location_id = p_location_id AND id = p_contact_uuid;
    END IF;
    IF c.id IS NULL THEN
        SELECT * INTO c FROM contacts
        WHERE location_id = p_location_id
          AND (ghl_contact_id = p_contact_key OR external_contact_id = p_contact_key)
        ORDER BY CASE WHEN ghl_contact_id = p_contact_key THEN 0 ELSE 1 END
        LIMIT 1;
        IF c.id IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;

    -- reads.py _balance_and_lots: the usable lots (live, config active, credits left) and the
    -- newest LOTS_SHOWN_MAX of any status, newest first.
    WITH usable AS (
        SELECT e.id, e.created_at, e.status, e.credits_remaining, e.expires_at,
               p.config_id
        FROM entitlements e
        JOIN product_configs p ON p.id = e.product_config_id AND p.location_id = p_location_id
        WHERE e.location_id = p_location_id AND e.contact_id = c.id
          AND e.status IN ('active', 'exhausted')
          AND e.effective_at <= p_now AND (e.expires_at IS NULL OR e.expires_at > p_now)
          AND p.active AND e.credits_remaining > 0
    ), newest AS (
        SELECT e.id, e.created_at, e.status, e.credits_remaining, e.expires_at,
               p.config_id
        FROM entitlements e
        JOIN product_configs p ON p.id = e.product_config_id AND p.location_id = p_location_id
        WHERE e.location_id = p_location_id AND e.contact_id = c.id
        ORDER BY e.created_at DESC, e.id DESC
        LIMIT 100
    ), shown AS (
        SELECT * FROM usable UNION SELECT * FROM newest
    )
    SELECT (SELECT coalesce(sum(credits_remaining), 0) FROM usable),
           (SELECT json_agg(json_build_object(
                'id', id,
                'product_config_id', config_id,
                'status', CASE WHEN status IN ('active', 'exhausted')
                                    AND expires_at IS NOT NULL AND expires_at <= p_now
                               THEN 'expired' ELSE status END,
                'credits_remaining', credits_remaining,
                'expires_at', kotally_iso(expires_at))
                ORDER BY created_at DESC, id DESC) FROM shown)
    INTO v_available, v_lots;

    SELECT count(id), coalesce(sum(coalesce(amount_cents, 0)), 0),
           max(coalesce(paid_at, created_at))
    INTO v_count, v_amount, v_last
    FROM grants WHERE location_id = p_location_id AND contact_id = c.id;

    RETURN json_build_object(
        'contact', json_build_object(
            'id', c.id, 'ghl_contact_id', c.ghl_contact_id,
            'external_contact_id', c.external_contact_id, 'email', c.email, 'name', c.name,
            'created_at', kotally_iso(c.created_at)),
        'summary', json_build_object(
            'credits_available', v_available,
            'last_paid_at', kotally_iso(v_last),
            'lifetime_value_cents', v_amount,
            'payment_events_count', v_count,
            'entitlements', coalesce(v_lots, '[]'),
            'recent_ledger', coalesce((
                SELECT json_agg(json_build_object(
                    'id', l.id::text, 'kind', l.kind, 'amount', l.amount,
                    'entitlement_id', l.entitlement_id, 'product_config_id', l.config_id,
                    'entitlement_balance_after', l.balance_after, 'request_id', l.request_id,
                    'external_ref', l.external_ref,
                    'appointment_time', kotally_iso(l.appointment_time),
                    'correlation_id', l.correlation_id, 'actor', l.actor,
                    'created_at', kotally_iso(l.created_at)) ORDER BY l.id DESC)
                FROM (
                    SELECT le.*, p.config_id FROM ledger_entries le
                    JOIN product_configs p
                      ON p.id = le.product_config_id AND p.location_id = p_location_id
                    WHERE le.location_id = p_location_id AND le.contact_id = c.id
                    ORDER BY le.id DESC LIMIT 5
                ) AS l), '[]'),
            'recent_appointments', coalesce((
                SELECT json_agg(json_build_object(
                    'id', a.id, 'external_ref', a.external_ref, 'calendar_id', a.calendar_id,
                    'appointment_time', kotally_iso(a.appointment_time), 'status', a.status,
                    'credits_deducted', a.credits_deducted,
                    'credits_restored', a.credits_restored) ORDER BY a.at DESC, a.id DESC)
                FROM (
                    SELECT *, coalesce(appointment_time, created_at) AS at FROM appointments
                    WHERE location_id = p_location_id AND contact_id = c.id
                    ORDER BY coalesce(appointment_time, created_at) DESC, id DESC LIMIT 5
                ) AS a), '[]'),
            'recent_payments', coalesce((
                SELECT json_agg(json_build_object(
                    'id', g.id, 'external_payment_id', g.external_payment_id,
                    'provider', g.provider, 'event_type', g.event_type,
                    'amount_cents', g.amount_cents, 'currency', g.currency,
                    'paid_at', kotally_iso(g.paid_at), 'product_config_id', g.config_id,
                    'entitlement_id', g.lot_id, 'credits_granted', g.lot_credits)
                    ORDER BY g.at DESC, g.id DESC)
                FROM (
                    SELECT gr.*, coalesce(gr.paid_at, gr.created_at) AS at, p.config_id,
                           e.id AS lot_id, e.credits_granted AS lot_credits
                    FROM grants gr
                    JOIN product_configs p
                      ON p.id = gr.product_config_id AND p.location_id = p_location_id
                    LEFT JOIN entitlements e
                      ON e.grant_id = gr.id AND e.location_id = p_location_id
                    WHERE gr.location_id = p_location_id AND gr.contact_id = c.id
                    ORDER BY coalesce(gr.paid_at, gr.created_at) DESC, gr.id DESC LIMIT 5
                ) AS g), '[]')));
END
$$
"""

API_SUMMARY = """
CREATE FUNCTION kotally_api_summary(
    p_client_id uuid, p_token_hash text, p_admitted boolean,
    p_location_id text, p_contact_key text, p_contact_uuid uuid, p_now timestamptz
) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_gate json := kotally_gate(p_client_id, p_token_hash, 'summary', p_admitted, p_location_id);
BEGIN
    IF v_gate ->> 'k' <> 'pass' THEN
        RETURN v_gate;
    END IF;
    RETURN json_build_object(
        'k', 'done', 'body', kotally_summary(p_location_id, p_contact_key, p_contact_uuid, p_now));
END
$$
"""

SIGNATURES = (
    "kotally_api_summary(uuid, text, boolean, text, text, uuid, timestamptz)",
    "kotally_summary(text, text, uuid, timestamptz)",
    "kotally_iso(timestamptz)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in (ISO, SUMMARY, API_SUMMARY):
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
