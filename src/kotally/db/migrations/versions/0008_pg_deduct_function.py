"""PostgreSQL: the deduct as one SQL function, kotally_deduct

The whole deduct of ledger/service.py (api-v2.md §4.5, §5; ledger.md) in one statement: claim the
request_id, select the configs, lock the contact, take credits from its live lots in consumption
order, write the ledger entries and the booking, and store the answer. One round trip instead of
ten; the Python deduct stays SQLite's. The same tests run the two (docs/ledger.md, "Deduct on
PostgreSQL").

It returns json:
- {"k": "done", "body": {...}}: this call decided; the body is stored unless it is unstored
  (BILLING_SUSPENDED), and the caller answers it;
- {"k": "existing", "endpoint", "fingerprint", "payload", "state", "status_code", "response"}:
  the request_id was claimed before; the caller replays or refuses it (idempotency/service.py);
- {"k": "in_progress"}: another transaction holds the claim past lock_timeout, or it vanished.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = """
CREATE FUNCTION kotally_refusal(p_code text, p_correlation_id text, p_messages json,
                                p_available bigint DEFAULT NULL)
RETURNS json LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_available IS NULL THEN
        json_build_object('ok', false, 'reason_code', p_code, 'correlation_id', p_correlation_id,
                          'message', coalesce(p_messages ->> p_code, p_code))
    ELSE
        json_build_object('ok', false, 'reason_code', p_code, 'correlation_id', p_correlation_id,
                          'message', coalesce(p_messages ->> p_code, p_code),
                          'balance_available', p_available)
    END
$$
"""

DEDUCT = """
CREATE FUNCTION kotally_deduct(
    p_location_id text, p_suspended boolean, p_request_id text, p_fingerprint text,
    p_payload json, p_record_id uuid, p_appointment_id uuid,
    p_contact_field text, p_contact_value text, p_config_id text, p_calendar_id text,
    p_amount integer, p_external_ref text, p_appointment_time timestamptz,
    p_now timestamptz, p_correlation_id text, p_actor text, p_messages json
) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v_claimed uuid;
    v_record record;
    v_config uuid;
    v_configs uuid[];
    v_contact uuid;
    v_count integer;
    v_available bigint;  -- a sum of lots: it may pass what one integer holds
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

    <<decide>>
    BEGIN
        -- The configs (selection.py select_configs).
        IF p_config_id IS NOT NULL THEN
            SELECT id INTO v_config FROM product_configs
            WHERE location_id = p_location_id AND config_id = p_config_id AND active;
            IF v_config IS NULL THEN
                v_body := kotally_refusal('CONFIG_NOT_FOUND', p_correlation_id, p_messages);
                EXIT decide;
            END IF;
            IF p_calendar_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM product_config_links
                WHERE location_id = p_location_id AND product_config_id = v_config
                  AND kind = 'calendar' AND value = p_calendar_id
            ) THEN
                v_body := kotally_refusal('SERVICE_FAMILY_MISMATCH', p_correlation_id,
                                          p_messages);
                EXIT decide;
            END IF;
            v_configs := ARRAY[v_config];
        ELSE
            SELECT array_agg(id ORDER BY config_id) INTO v_configs FROM (
                SELECT DISTINCT c.id, c.config_id
                FROM product_configs c
                JOIN product_config_links l ON l.product_config_id = c.id
                WHERE c.location_id = p_location_id AND l.location_id = p_location_id
                  AND l.kind = 'calendar' AND l.value = p_calendar_id AND c.active
            ) AS linked;
            IF v_configs IS NULL THEN
                v_body := kotally_refusal('CONFIG_NOT_FOUND', p_correlation_id, p_messages);
                EXIT decide;
            END IF;
        END IF;

        -- The contact, locked: its row lock serialises every mutation of the contact
        -- (contacts/repository.py _matching: the one whose id in the sent field matches first).
        SELECT id INTO v_contact FROM contacts
        WHERE location_id = p_location_id
          AND (ghl_contact_id = p_contact_value OR external_contact_id = p_contact_value)
        ORDER BY CASE WHEN (CASE WHEN p_contact_field = 'ghl_contact_id' THEN ghl_contact_id
                                 ELSE external_contact_id END) = p_contact_value
                      THEN 0 ELSE 1 END
        LIMIT 1
        FOR UPDATE;
        IF v_contact IS NULL THEN
            v_body := kotally_refusal('NO_ENTITLEMENT', p_correlation_id, p_messages);
            EXIT decide;
        END IF;

        -- Its live lots (ledger/repository.py live_condition) and their balance.
        SELECT count(*), coalesce(sum(credits_remaining), 0) INTO v_count, v_available
        FROM entitlements
        WHERE location_id = p_location_id AND contact_id = v_contact
          AND product_config_id = ANY (v_configs)
          AND status IN ('active', 'exhausted')
          AND effective_at <= p_now AND (expires_at IS NULL OR expires_at > p_now);
        IF v_count = 0 THEN
            -- By calendar alone, usable credits in another family: the wrong family.
            IF p_config_id IS NULL AND EXISTS (
                SELECT 1 FROM entitlements e
                JOIN product_configs c ON c.id = e.product_config_id
                WHERE e.location_id = p_location_id AND e.contact_id = v_contact
                  AND NOT (e.product_config_id = ANY (v_configs)) AND c.active
                  AND e.credits_remaining > 0
                  AND e.status IN ('active', 'exhausted')
                  AND e.effective_at <= p_now
                  AND (e.expires_at IS NULL OR e.expires_at > p_now)
            ) THEN
                v_body := kotally_refusal('SERVICE_FAMILY_MISMATCH', p_correlation_id,
                                          p_messages);
            ELSE
                v_body := kotally_refusal('NO_ENTITLEMENT', p_correlation_id, p_messages);
            END IF;
            EXIT decide;
        END IF;
        IF v_available < p_amount THEN
            v_body := kotally_refusal('INSUFFICIENT_CREDITS', p_correlation_id, p_messages,
                                      v_available);
            EXIT decide;
        END IF;

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
    END decide;

    UPDATE idempotency_records
    SET state = 'completed', status_code = 200, response = v_body, completed_at = p_now
    WHERE id = p_record_id;
    RETURN json_build_object('k', 'done', 'body', v_body);
END
$$
"""

DEDUCT_ARGUMENTS = (
    "text, boolean, text, text, json, uuid, uuid, text, text, text, text, integer, text, "
    "timestamptz, timestamptz, text, text, json"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(REFUSAL)
    op.execute(DEDUCT)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION kotally_deduct({DEDUCT_ARGUMENTS})")
    op.execute("DROP FUNCTION kotally_refusal(text, text, json, bigint)")
