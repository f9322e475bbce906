"""The admin forms: each parsed into the arguments of a service, or into errors per field.

A form with errors is shown again with what was typed and a message next to each bad field;
nothing is applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kotally.auth.scopes import SCOPES
from kotally.configs.service import CONFIG_TYPES, CREDITS_MAX
from kotally.db.models.location import BILLING_STATUSES
from kotally.kit.fields import AMOUNT_MAX
from kotally.ledger.adjust import REASON_CHARS_MAX

ID_CHARS_MAX = 255
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
WINDOW_HOURS_MAX = 24 * 365
EXPIRY_DAYS_MAX = 3650
LINKS_MAX = 100


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(
    p: Parsed, form: Mapping[str, str], name: str, label: str, *, required: bool = True
) -> str:
    value = form.get(name, "").strip()
    if required and not value:
        p.errors[name] = f"{label} is required."
    elif len(value) > ID_CHARS_MAX:
        p.errors[name] = f"{label} must be at most {ID_CHARS_MAX} characters."
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        p.errors[name] = f"{label} must not contain control characters."
    return value


def _identifier(p: Parsed, form: Mapping[str, str], name: str, label: str) -> str:
    value = _text(p, form, name, label)
    if name not in p.errors and not _ID.match(value):
        p.errors[name] = (
            f"{label} may use letters, digits and _ . : @ - (no spaces), starting with a letter "
            "or digit."
        )
    return value


def _whole(
    p: Parsed,
    form: Mapping[str, str],
    name: str,
    label: str,
    low: int,
    high: int,
    *,
    optional: bool,
) -> int | None:
    raw = form.get(name, "").strip().replace(",", "")
    if not raw:
        if not optional:
            p.errors[name] = f"{label} is required."
        return None
    if not re.fullmatch(r"[+-]?\d{1,9}", raw):
        p.errors[name] = f"{label} must be a whole number."
        return None
    value = int(raw)
    if not low <= value <= high:
        p.errors[name] = f"{label} must be from {low:,} to {high:,}."
        return None
    return value


def _links(p: Parsed, form: Mapping[str, str], name: str, label: str) -> list[str]:
    values = [v.strip() for v in re.split(r"[,\n]", form.get(name, "")) if v.strip()]
    if len(values) > LINKS_MAX:
        p.errors[name] = f"At most {LINKS_MAX} {label}."
    elif any(len(v) > ID_CHARS_MAX or re.search(r"\s", v) for v in values):
        p.errors[name] = f"Each of the {label} is one id without spaces, at most 255 characters."
    return values


def location(form: Mapping[str, str], *, new: bool) -> Parsed:
    p = Parsed()
    if new:
        p.values["location_id"] = _identifier(p, form, "location_id", "Location id")
    p.values["name"] = _text(p, form, "name", "Name")
    tz = form.get("timezone", "").strip() or "UTC"
    try:
        ZoneInfo(tz)
        p.values["timezone"] = tz
    except (ZoneInfoNotFoundError, ValueError):
        p.errors["timezone"] = f"{tz!r} is not an IANA time zone; use a name like Europe/Berlin."
    status = form.get("billing_status", "active")
    if status not in BILLING_STATUSES:
        p.errors["billing_status"] = f"Choose one of {', '.join(BILLING_STATUSES)}."
    p.values["billing_status"] = status
    p.values["cancellation_window_hours"] = _whole(
        p,
        form,
        "cancellation_window_hours",
        "Cancellation window",
        0,
        WINDOW_HOURS_MAX,
        optional=True,
    )
    return p


def client(form: Mapping[str, str], scopes: list[str]) -> Parsed:
    p = Parsed()
    p.values["name"] = _text(p, form, "name", "Name")
    chosen = [s for s in scopes if s in SCOPES]
    if not chosen or len(chosen) != len(scopes):
        p.errors["scopes"] = "Choose at least one scope."
    p.values["scopes"] = chosen
    p.values["rate_limit_per_second"] = _whole(
        p, form, "rate_limit_per_second", "Rate limit", 1, 100_000, optional=True
    )
    return p


def config(form: Mapping[str, str], *, new: bool) -> Parsed:
    p = Parsed()
    if new:
        p.values["config_id"] = _identifier(p, form, "config_id", "Config id")
    p.values["name"] = _text(p, form, "name", "Name")
    type_ = form.get("type", "")
    if type_ not in CONFIG_TYPES:
        p.errors["type"] = "Choose package or membership."
    p.values["type_"] = type_
    p.values["credits"] = _whole(p, form, "credits", "Credits", 1, CREDITS_MAX, optional=False)
    p.values["expiry_days"] = _whole(
        p, form, "expiry_days", "Expiry", 1, EXPIRY_DAYS_MAX, optional=True
    )
    p.values["calendars"] = _links(p, form, "calendars", "calendar ids")
    p.values["ghl_products"] = _links(p, form, "ghl_products", "GHL product ids")
    p.values["stripe_prices"] = _links(p, form, "stripe_prices", "Stripe price ids")
    return p


def _reason(p: Parsed, form: Mapping[str, str]) -> None:
    reason = form.get("reason", "").strip()
    if not reason:
        p.errors["reason"] = "Give a reason; it is kept in the audit log."
    elif len(reason) > REASON_CHARS_MAX:
        p.errors["reason"] = f"At most {REASON_CHARS_MAX} characters."
    elif any(ord(c) < 32 or ord(c) == 127 for c in reason):
        p.errors["reason"] = "The reason must not contain control characters."
    p.values["reason"] = reason


def _request_id(p: Parsed, form: Mapping[str, str]) -> None:
    request_id = form.get("request_id", "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{8,128}", request_id):
        p.errors["request_id"] = "The form is incomplete; reload the page and submit again."
    p.values["request_id"] = request_id


def adjustment(form: Mapping[str, str]) -> Parsed:
    p = Parsed()
    _request_id(p, form)
    p.values["entitlement_id"] = form.get("entitlement_id", "").strip()
    if not p.values["entitlement_id"]:
        p.errors["entitlement_id"] = "Choose a lot."
    direction = form.get("direction", "")
    if direction not in ("add", "remove"):
        p.errors["direction"] = "Choose add or remove."
    amount = _whole(p, form, "amount", "Credits", 1, AMOUNT_MAX, optional=False)
    p.values["amount"] = None if amount is None else (amount if direction == "add" else -amount)
    _reason(p, form)
    return p


def manual_grant(form: Mapping[str, str]) -> Parsed:
    p = Parsed()
    _request_id(p, form)
    p.values["product_config_id"] = form.get("product_config_id", "").strip()
    if not p.values["product_config_id"]:
        p.errors["product_config_id"] = "Choose a product config."
    _reason(p, form)
    return p


def user(form: Mapping[str, str]) -> Parsed:
    p = Parsed()
    p.values["email"] = form.get("email", "").strip()
    if not p.values["email"]:
        p.errors["email"] = "Email is required."
    p.values["role"] = form.get("role", "")
    p.values["password"] = form.get("password", "")
    return p
