"""PostgreSQL: the API's check and deduct, authentication included, in one statement each

- kotally_select: the selection that check and deduct share (ledger/selection.py): the configs,
  the contact (locked for a deduct), its live lots' balance, and the refusal that applies, in the
  order of api-v2.md §4.5;
- kotally_deduct, replaced: the same function as 0008's, its selection now kotally_select;
- kotally_check: the check (ledger/service.py check), returning its body;
- kotally_gate: the API's authentication (auth/dependency.py): the client by id, its token hash,
  its active flag, its location; it says whether the request may go straight on;
- kotally_api_check, kotally_api_deduct: the gate, then the operation, so that an API request is
  one round trip (ledger/pg_api.py).

The gate answers {"k": "pass", "billing_status"} when the request may go on; otherwise
{"k": "unauthorized"} or {"k": "principal", ...the client's scopes, rate, location}, from which
Python answers 429, 403, the body's error or LOCATION_MISMATCH in the order of api-v2.md §2 (and,
when only the rate limiter had to be asked first, calls again with p_admitted).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SELECT = """
CREATE FUNCTION kotally_select(
    p_location_id text, p_contact_field text, p_contact_value text, p_config_id text,
    p_calendar_id text, p_amount integer, p_now timestamptz, p_lock boolean,
    OUT refusal text, OUT contact uuid, OUT configs uuid[], OUT available bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_config uuid;
    v_count integer;
BEGIN
    -- The configs (selection.py select_configs).
    IF p_config_id IS NOT NULL THEN
        SELECT id INTO v_config FROM product_configs
        WHERE location_id = p_location_id AND config_id = p_config_id AND active;
        IF v_config IS NULL THEN
            refusal := 'CONFIG_NOT_FOUND';
            RETURN;
        END IF;
        IF p_calendar_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM product_config_links
            WHERE location_id = p_location_id AND product_config_id = v_config
              AND kind = 'calendar' AND value = p_calendar_id
        ) THEN
            refusal := 'SERVICE_FAMILY_MISMATCH';
            RETURN;
        END IF;
        configs := ARRAY[v_config];
    ELSE
        SELECT array_agg(id ORDER BY config_id) INTO configs FROM (
            SELECT DISTINCT c.id, c.config_id
            FROM product_configs c
            JOIN product_config_links l ON l.product_config_id = c.id
            WHERE c.location_id = p_location_id AND l.location_id = p_location_id
              AND l.kind = 'calendar' AND l.value = p_calendar_id AND c.active
        ) AS linked;
        IF configs IS NULL THEN
            refusal := 'CONFIG_NOT_FOUND';
            RETURN;
        END IF;
    END IF;

    -- The contact (contacts/repository.py _matching: the one whose id in the sent field matches
    -- first); for a deduct its row is locked, which serialises every mutation of the contact.
    IF p_lock THEN
        SELECT id INTO contact FROM contacts
        WHERE location_id = p_location_id
          AND (ghl_contact_id = p_contact_value OR external_contact_id = p_contact_value)
        ORDER BY CASE WHEN (CASE WHEN p_contact_field = 'ghl_contact_id' THEN ghl_contact_id
                                 ELSE external_contact_id END) = p_contact_value
                      THEN 0 ELSE 1 END
        LIMIT 1
        FOR UPDATE;
    ELSE
        SELECT id INTO contact FROM contacts
        WHERE location_id = p_location_id
          AND (ghl_contact_id = p_contact_value OR external_contact_id = p_contact_value)
        ORDER BY CASE WHEN (CASE WHEN p_contact_field = 'ghl_contact_id' THEN ghl_contact_id
                                 ELSE external_contact_id END) = p_contact_value
                      THEN 0 ELSE 1 END
        LIMIT 1;
    END IF;
    IF contact IS NULL THEN
        refusal := 'NO_ENTITLEMENT';
        RETURN;
    END IF;

    -- Its live lots (ledger/repository.py live_condition) and their balance (a sum of lots: it
    -- may pass what one integer holds).
    SELECT count(*), coalesce(sum(credits_remaining), 0) INTO v_count, available
    FROM entitlements
    WHERE location_id = p_location_id AND contact_id = contact
      AND product_config_id = ANY (configs)
      AND status IN ('active', 'exhausted')
      AND effective_at <= p_now AND (expires_at IS NULL OR expires_at > p_now);
    IF v_count = 0 THEN
        -- By calendar alone, usable credits in another family: the wrong family.
        IF p_config_id IS NULL AND EXISTS (
            SELECT 1 FROM entitlements e
            JOIN product_configs c ON c.id = e.product_config_id
            WHERE e.location_id = p_location_id AND e.contact_id = contact
              AND NOT (e.product_config_id = ANY (configs)) AND c.active
              AND e.credits_remaining > 0
              AND e.status IN ('active', 'exhausted')
              AND e.effective_at <= p_now
              AND (e.expires_at IS NULL OR e.expires_at > p_now)
        ) THEN
            refusal := 'SERVICE_FAMILY_MISMATCH';
        ELSE
            refusal := 'NO_ENTITLEMENT';
        END IF;
        RETURN;
    END IF;
    IF available < p_amount THEN
        refusal := 'INSUFFICIENT_CREDITS';
    END IF;
END
$$
"""

DEDUCT = """
CREATE OR REPLACE FUNCTION kotally_deduct(
    p_location_id text, p_suspended boolean, p_request_id text, p_fingerprint text,
    p_payload json, p_record_id uuid, p_appointment_id uuid,
    p_contact_field text, p_contact_value text, p_config_id text, p_calendar_id text,
    p_amount integer, p_external_ref text, p_appointment_time timestamptz,
    p_now timestamptz, p_correlation_id text, p_actor text, p_messages json
) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v_claimed uuid;
    v_record record;
    v_refusal text;
    v_configs uuid[];
    v_contact uuid;
    v_available bigint;
    v_lot record;
    v_left integer;
    v_take integer;
    v_remaining integer;
    v_consumed json[] := '{}';
    v_first uuid;
    v_appointment record;
    v_calendar text;
    v_body json;
BEGIN
    -- The claim (idempotency/repository.py claim): a concurrent claim of the key waits on the
    -- unique index, up to lock_timeout.
    BEGIN
        INSERT INTO idempotency_records
            (id, location_id, request_id, endpoint, fingerprint, payload, state, created_at)
        VALUES (p_record_id, p_location_id, p_request_id, 'deduct', p_fingerprint, p_payload,
                'in_progress', p_now)
        ON CONFLICT (location_id, request_id) DO NOTHING
        RETURNING id INTO v_claimed;
    EXCEPTION WHEN lock_not_available THEN
        RETURN json_build_object('k', 'in_progress');
    END;
    IF v_claimed IS NULL THEN
        SELECT endpoint, fingerprint, payload, state, status_code, response INTO v_record
        FROM idempotency_records
        WHERE location_id = p_location_id AND request_id = p_request_id;
        IF NOT FOUND THEN
            RETURN json_build_object('k', 'in_progress');
        END IF;
        RETURN json_build_object(
            'k', 'existing', 'endpoint', v_record.endpoint, 'fingerprint', v_record.fingerprint,
            'payload', v_record.payload, 'state', v_record.state,
            'status_code', v_record.status_code, 'response', v_record.response);
    END IF;

    -- An unstored outcome: the claim is dropped (outcomes.py UNSTORED).
    IF p_suspended THEN
        DELETE FROM idempotency_records WHERE id = p_record_id;
        RETURN json_build_object('k', 'done', 'body',
            kotally_refusal('BILLING_SUSPENDED', p_correlation_id, p_messages));
    END IF;

    SELECT s.refusal, s.contact, s.configs, s.available
    INTO v_refusal, v_contact, v_configs, v_available
    FROM kotally_select(p_location_id, p_contact_field, p_contact_value, p_config_id,
                        p_calendar_id, p_amount, p_now, true) AS s;
    IF v_refusal IS NOT NULL THEN
        v_body := kotally_refusal(v_refusal, p_correlation_id, p_messages,
            CASE WHEN v_refusal = 'INSUFFICIENT_CREDITS' THEN v_available END);
    ELSE
        -- Take the credits in consumption order (ledger/lots.py move).
        v_left := p_amount;
        FOR v_lot IN
            SELECT id, product_config_id, credits_remaining FROM entitlements
            WHERE location_id = p_location_id AND contact_id = v_contact
              AND product_config_id = ANY (v_configs)
              AND status IN ('active', 'exhausted')
              AND effective_at <= p_now AND (expires_at IS NULL OR expires_at > p_now)
            ORDER BY expires_at ASC NULLS LAST, created_at ASC, id ASC
        LOOP
            EXIT WHEN v_left = 0;
            v_take := least(v_lot.credits_remaining, v_left);
            CONTINUE WHEN v_take = 0;
            v_remaining := v_lot.credits_remaining - v_take;
            UPDATE entitlements
            SET credits_remaining = v_remaining,
                status = CASE WHEN v_remaining > 0 THEN 'active' ELSE 'exhausted' END
            WHERE id = v_lot.id;
            INSERT INTO ledger_entries
                (location_id, contact_id, entitlement_id, product_config_id, kind, amount,
                 balance_after, request_id, external_ref, appointment_time, correlation_id,
                 actor, created_at)
            VALUES (p_location_id, v_contact, v_lot.id, v_lot.product_config_id, 'deduct',
                    -v_take, v_remaining, p_request_id, p_external_ref, p_appointment_time,
                    p_correlation_id, p_actor, p_now);
            v_consumed := v_consumed
                || json_build_object('entitlement_id', v_lot.id, 'amount', v_take);
            v_first := coalesce(v_first, v_lot.id);
            v_left := v_left - v_take;
        END LOOP;

        -- The booking named by external_ref (service.py _record_booking): recorded, or updated
        -- if it is this contact's.
        IF p_external_ref IS NOT NULL THEN
            SELECT id, contact_id INTO v_appointment FROM appointments
            WHERE location_id = p_location_id AND external_ref = p_external_ref;
            IF NOT FOUND THEN
                v_calendar := p_calendar_id;
                IF v_calendar IS NULL AND cardinality(v_configs) = 1 THEN
                    SELECT CASE WHEN count(*) = 1 THEN min(value) END INTO v_calendar
                    FROM product_config_links
                    WHERE location_id = p_location_id AND product_config_id = v_configs[1]
                      AND kind = 'calendar';
                END IF;
                INSERT INTO appointments
                    (id, location_id, contact_id, external_ref, calendar_id, appointment_time,
                     status, credits_deducted, credits_restored, created_at, updated_at)
                VALUES (p_appointment_id, p_location_id, v_contact, p_external_ref, v_calendar,
                        p_appointment_time, 'booked', p_amount, 0, p_now, p_now);
            ELSIF v_appointment.contact_id = v_contact THEN
                UPDATE appointments
                SET credits_deducted = credits_deducted + p_amount, status = 'booked',
                    refusal = NULL, updated_at = p_now,
                    appointment_time = coalesce(p_appointment_time, appointment_time),
                    calendar_id = coalesce(p_calendar_id, calendar_id)
                WHERE id = v_appointment.id;
            END IF;
        END IF;

        v_body := json_build_object(
            'ok', true, 'reason_code', 'deducted', 'correlation_id', p_correlation_id,
            'balance_after', v_available - p_amount, 'entitlement_id', v_first,
            'consumed', array_to_json(v_consumed));
    END IF;

    UPDATE idempotency_records
    SET state = 'completed', status_code = 200, response = v_body, completed_at = p_now
    WHERE id = p_record_id;
    RETURN json_build_object('k', 'done', 'body', v_body);
END
$$
"""

CHECK = """
CREATE FUNCTION kotally_check(
    p_location_id text, p_suspended boolean, p_contact_field text, p_contact_value text,
    p_config_id text, p_calendar_id text, p_amount integer, p_now timestamptz,
    p_correlation_id text, p_messages json
) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_refusal text;
    v_available bigint;
BEGIN
    IF p_suspended THEN
        RETURN kotally_refusal('BILLING_SUSPENDED', p_correlation_id, p_messages);
    END IF;
    SELECT s.refusal, s.available INTO v_refusal, v_available
    FROM kotally_select(p_location_id, p_contact_field, p_contact_value, p_config_id,
                        p_calendar_id, p_amount, p_now, false) AS s;
    IF v_refusal IS NOT NULL THEN
        RETURN kotally_refusal(v_refusal, p_correlation_id, p_messages,
            CASE WHEN v_refusal = 'INSUFFICIENT_CREDITS' THEN v_available END);
    END IF;
    RETURN json_build_object('ok', true, 'reason_code', 'eligible',
                             'correlation_id', p_correlation_id,
                             'balance_after', v_available - p_amount);
END
$$
"""

GATE = """
CREATE FUNCTION kotally_gate(
    p_client_id uuid, p_token_hash text, p_scope text, p_admitted boolean, p_location_id text
) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v record;
BEGIN
    SELECT c.active, c.token_hash, c.scopes, c.rate_limit_per_second,
           l.id AS location_id, l.billing_status, l.cancellation_window_hours
    INTO v
    FROM api_clients c JOIN locations l ON l.id = c.location_id
    WHERE c.id = p_client_id;
    IF NOT FOUND OR NOT v.active OR v.token_hash IS DISTINCT FROM p_token_hash THEN
        RETURN json_build_object('k', 'unauthorized');
    END IF;
    IF p_admitted AND p_location_id IS NOT NULL AND v.location_id = p_location_id
       AND p_scope = ANY (string_to_array(v.scopes, ',')) THEN
        RETURN json_build_object('k', 'pass', 'billing_status', v.billing_status);
    END IF;
    RETURN json_build_object(
        'k', 'principal', 'scopes', v.scopes, 'rate', v.rate_limit_per_second,
        'location_id', v.location_id, 'billing_status', v.billing_status,
        'window', v.cancellation_window_hours);
END
$$
"""

API_CHECK = """
CREATE FUNCTION kotally_api_check(
    p_client_id uuid, p_token_hash text, p_admitted boolean,
    p_location_id text, p_contact_field text, p_contact_value text,
    p_config_id text, p_calendar_id text, p_amount integer, p_now timestamptz,
    p_correlation_id text, p_messages json
) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_gate json := kotally_gate(p_client_id, p_token_hash, 'check', p_admitted, p_location_id);
BEGIN
    IF v_gate ->> 'k' <> 'pass' THEN
        RETURN v_gate;
    END IF;
    RETURN json_build_object('k', 'done', 'body', kotally_check(
        p_location_id, v_gate ->> 'billing_status' = 'suspended', p_contact_field,
        p_contact_value, p_config_id, p_calendar_id, p_amount, p_now, p_correlation_id,
        p_messages));
END
$$
"""

API_DEDUCT = """
CREATE FUNCTION kotally_api_deduct(
    p_client_id uuid, p_token_hash text, p_admitted boolean,
    p_location_id text, p_request_id text, p_fingerprint text,
    p_payload json, p_record_id uuid, p_appointment_id uuid,
    p_contact_field text, p_contact_value text, p_config_id text, p_calendar_id text,
    p_amount integer, p_external_ref text, p_appointment_time timestamptz,
    p_now timestamptz, p_correlation_id text, p_actor text, p_messages json
) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v_gate json := kotally_gate(p_client_id, p_token_hash, 'deduct', p_admitted, p_location_id);
BEGIN
    IF v_gate ->> 'k' <> 'pass' THEN
        RETURN v_gate;
    END IF;
    RETURN kotally_deduct(
        p_location_id, v_gate ->> 'billing_status' = 'suspended', p_request_id, p_fingerprint,
        p_payload, p_record_id, p_appointment_id, p_contact_field, p_contact_value, p_config_id,
        p_calendar_id, p_amount, p_external_ref, p_appointment_time, p_now, p_correlation_id,
        p_actor, p_messages);
END
$$
"""

SIGNATURES = (
    "kotally_api_deduct(uuid, text, boolean, text, text, text, json, uuid, uuid, text, text, "
    "text, text, integer, text, timestamptz, timestamptz, text, text, json)",
    "kotally_api_check(uuid, text, boolean, text, text, text, text, text, integer, timestamptz, "
    "text, json)",
    "kotally_gate(uuid, text, text, boolean, text)",
    "kotally_check(text, boolean, text, text, text, text, integer, timestamptz, text, json)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in (SELECT, DEDUCT, CHECK, GATE, API_CHECK, API_DEDUCT):
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
    # kotally_deduct goes back to 0008's, which selects on its own.
    from importlib import import_module

    previous = import_module("kotally.db.migrations.versions.0008_pg_deduct_function")
    op.execute(previous.DEDUCT.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(
        "DROP FUNCTION kotally_select(text, text, text, text, text, integer, timestamptz, boolean)"
    )
