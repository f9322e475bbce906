-- Limit (a): the deduct transaction straight against PostgreSQL, with no HTTP and no Python.
-- Insert the idempotency row, lock the contact's live lots in consumption order, take one credit
-- from the first, append its ledger entry, commit. bench/run.py runs it as
--   pgbench -n -M prepared -c 32 -j 2 -T SECONDS -D ncontacts=N -f bench/pg_deduct.sql URL
-- on the database it seeded (ids are deterministic: see bench/seed.py).
\set c random(1, :ncontacts)
BEGIN;
INSERT INTO idempotency_records
    (id, location_id, request_id, endpoint, fingerprint, payload, state, status_code, response,
     created_at, completed_at)
VALUES (gen_random_uuid(), 'loc_bench', 'pgbench-' || gen_random_uuid(), 'deduct', 'pgbench',
        '{}', 'completed', 200, '{}', now(), now())
ON CONFLICT (location_id, request_id) DO NOTHING
RETURNING id;
SELECT id AS lot_id, credits_remaining AS lot_left
FROM entitlements
WHERE location_id = 'loc_bench'
  AND contact_id = ('00000001-0000-4000-8000-' || lpad(to_hex(CAST(:c AS bigint)), 12, '0'))::uuid
  AND product_config_id = '00000007-0000-4000-8000-000000000001'
  AND status IN ('active', 'exhausted')
  AND effective_at <= now()
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY expires_at ASC NULLS LAST, created_at ASC, id ASC
FOR UPDATE
\gset
UPDATE entitlements
SET credits_remaining = credits_remaining - 1,
    status = CASE WHEN credits_remaining - 1 > 0 THEN 'active' ELSE 'exhausted' END
WHERE id = CAST(:lot_id AS uuid);
INSERT INTO ledger_entries
    (location_id, contact_id, entitlement_id, product_config_id, kind, amount, balance_after,
     request_id, correlation_id, actor, created_at)
VALUES ('loc_bench',
        ('00000001-0000-4000-8000-' || lpad(to_hex(CAST(:c AS bigint)), 12, '0'))::uuid,
        CAST(:lot_id AS uuid), '00000007-0000-4000-8000-000000000001', 'deduct', -1,
        CAST(:lot_left AS integer) - 1, 'pgbench', 'pgbench', 'pgbench', now());
COMMIT;
