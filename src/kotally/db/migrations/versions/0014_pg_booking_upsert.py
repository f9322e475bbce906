"""PostgreSQL: a deduct's booking written by its unique key, not found by a lookup first

kotally_deduct_claimed (0012) looked the booking named by `external_ref` up with a SELECT on
(location_id, external_ref), then inserted or updated it. PL/pgSQL caches that SELECT's plan per
connection. A plan made while `appointments` was empty after a VACUUM (a new location, a freshly
seeded database) scans the table whole, and the connection keeps using it as the table grows, until
something invalidates it (an ANALYZE of the table). Measured: with every deduct booking a new
appointment on such a database, PostgreSQL's CPU per deduct was 1.60 ms instead of 0.5 and
throughput 0.36 x limit (a) (bench/RESULTS.md, eighth session).

Now one INSERT ... ON CONFLICT (location_id, external_ref) DO UPDATE ... WHERE the booking is
this contact's: the unique index finds an existing booking whatever the plan. The answers and the
rows written are the same as before: a new booking is recorded with the calendar as before; this
contact's booking gains the credits and is booked again; another contact's booking is left as it
is. Two deducts of different contacts naming the same new booking at once (the same contact's
deducts wait for each other on the contact's row): before, the second waited for the first's
insert and then failed on the unique key; now it waits and leaves the first's booking as it is,
as a deduct that comes later does.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence
from importlib import import_module

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_0011 = import_module("kotally.db.migrations.versions.0011_pg_leaner_functions")
_0012 = import_module("kotally.db.migrations.versions.0012_pg_batch_functions")

# 0012's booking block, from its comment to the answer built after it: a lookup, then a write.
_BOOKING_START = "        -- The booking named by external_ref"
_AFTER_BOOKING = "        v_body := json_build_object("
_BEFORE = _0012.DEDUCT_CLAIMED
_LOOKUP_THEN_WRITE = _BEFORE[_BEFORE.index(_BOOKING_START) : _BEFORE.index(_AFTER_BOOKING)]
assert "SELECT id, contact_id INTO v_appointment FROM appointments" in _LOOKUP_THEN_WRITE

_UPSERT = """\
        -- The booking named by external_ref (service.py _record_booking): recorded, or updated
        -- if it is this contact's; found through its unique key (migration 0014).
        IF p_external_ref IS NOT NULL THEN
            v_calendar := p_calendar_id;
            IF v_calendar IS NULL AND cardinality(v_configs) = 1 THEN
                SELECT CASE WHEN count(*) = 1 THEN min(value) END INTO v_calendar
                FROM product_config_links
                WHERE location_id = p_location_id AND product_config_id = v_configs[1]
                  AND kind = 'calendar';
            END IF;
            INSERT INTO appointments AS a
                (id, location_id, contact_id, external_ref, calendar_id, appointment_time,
                 status, credits_deducted, credits_restored, created_at, updated_at)
            VALUES (p_appointment_id, p_location_id, v_contact, p_external_ref, v_calendar,
                    p_appointment_time, 'booked', p_amount, 0, p_now, p_now)
            ON CONFLICT (location_id, external_ref) DO UPDATE
            SET credits_deducted = a.credits_deducted + p_amount, status = 'booked',
                refusal = NULL, updated_at = p_now,
                appointment_time = coalesce(p_appointment_time, a.appointment_time),
                calendar_id = coalesce(p_calendar_id, a.calendar_id)
            WHERE a.contact_id = v_contact;
        END IF;

"""

_UNUSED = "    v_appointment record;\n"

DEDUCT_CLAIMED = _0011._or_replace(
    _0011._replaced(_0011._replaced(_0012.DEDUCT_CLAIMED, _LOOKUP_THEN_WRITE, _UPSERT), _UNUSED, "")
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(DEDUCT_CLAIMED)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_0011._or_replace(_0012.DEDUCT_CLAIMED))
