"""POST /webhooks/ghl and POST /webhooks/stripe/{location_id} (webhooks.md §1).

No API token: a delivery is authenticated by its signature over the raw body, checked before
anything is parsed or stored. Then the body must be a JSON object (400), and the inbox stores
and processes it in one transaction (503 when the database is unreachable).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from kotally.api.body import parse_json_object, read_raw
from kotally.api.envelope import json_response
from kotally.api.runtime import Runtime, correlation_id, in_thread, runtime
from kotally.db.models import Location
from kotally.errors import InvalidJson, SignatureInvalid
from kotally.observability import WEBHOOK_SIGNATURE_FAILURES
from kotally.webhooks import inbox
from kotally.webhooks import stripe as stripe_hooks
from kotally.webhooks.ghl import events as ghl_events
from kotally.webhooks.ghl import signature as ghl_signature
from kotally.webhooks.ghl.fields import is_identifier
from kotally.webhooks.ghl.handler import PROVIDER as GHL

# Kept out of /openapi.json, which describes the machine API clients code against (and which the
# fuzz scenario drives); the provider-facing endpoints are described in docs/webhooks.md.
router = APIRouter(prefix="/webhooks", include_in_schema=False)
STRIPE = inbox.Provider(name="stripe", handler=stripe_hooks.handle)
PROVIDERS = {"ghl": GHL, "stripe": STRIPE}


def provider_of(name: str) -> inbox.Provider:
    return PROVIDERS[name]


def _answer(request: Request, body: dict[str, object]) -> Response:
    request.state.reason_code = body["reason_code"]
    return json_response(200, body)


@router.post("/ghl")
async def ghl(request: Request) -> Response:
    rt = runtime(request)
    raw = await read_raw(request, rt.settings.webhook_body_bytes_max)
    keys = ghl_signature.keys(
        rt.settings.ghl_webhook_ed25519_public_key, rt.settings.ghl_webhook_rsa_public_key
    )
    try:
        ghl_signature.verify(
            raw,
            request.headers.get(ghl_signature.ED25519_HEADER),
            request.headers.get(ghl_signature.RSA_HEADER),
            keys,
        )
    except ghl_signature.SignatureError as exc:
        WEBHOOK_SIGNATURE_FAILURES.labels("ghl").inc()
        raise SignatureInvalid(f"Signature invalid: {exc}.") from None
    payload = parse_json_object(raw)
    incoming = ghl_events.incoming(payload, raw, correlation_id(request))
    body = await in_thread(inbox.receive, rt.db, rt.clock, rt.settings, GHL, incoming)
    return _answer(request, body)


def _stripe_secret(rt: Runtime, location_id: str) -> str | None:
    with rt.db.unit_of_work(write=False) as session:
        return _secret_of(session, location_id)


def _secret_of(session: Session, location_id: str) -> str | None:
    location = session.get(Location, location_id)
    return None if location is None else location.stripe_webhook_secret


@router.post("/stripe/{location_id}")
async def stripe(request: Request, location_id: str) -> Response:
    rt = runtime(request)
    raw = await read_raw(request, rt.settings.webhook_body_bytes_max)
    secret = None
    if is_identifier(location_id):
        secret = await in_thread(_stripe_secret, rt, location_id)
    if not secret:
        WEBHOOK_SIGNATURE_FAILURES.labels("stripe").inc()
        raise SignatureInvalid("No Stripe endpoint secret is set for this location.")
    try:
        stripe_hooks.verify(
            raw,
            request.headers.get("stripe-signature"),
            secret,
            int(rt.clock.now().timestamp()),
        )
    except stripe_hooks.SignatureError as exc:
        WEBHOOK_SIGNATURE_FAILURES.labels("stripe").inc()
        raise SignatureInvalid(f"Signature invalid: {exc}.") from None
    payload = parse_json_object(raw)
    try:
        event_key = stripe_hooks.event_key(payload)
    except stripe_hooks.PayloadError as exc:
        raise InvalidJson(f"The event's {exc.field} {exc.message}.") from None
    incoming = inbox.Incoming(
        event_key=event_key,
        event_type=stripe_hooks.event_type(payload),
        location_id=location_id,
        payload=payload,
        correlation_id=correlation_id(request),
    )
    body = await in_thread(inbox.receive, rt.db, rt.clock, rt.settings, STRIPE, incoming)
    return _answer(request, body)
