"""What every admin page shares: templates, the signed-in user, CSRF and role checks.

Pages are plain synchronous FastAPI handlers (run in the thread pool, as the database work is
blocking). The signed-in user comes from `signed_in`; a state-changing handler takes `writer`
(or `owner_writer`), which also checks the form's CSRF token and the role.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kotally.admin import sessions
from kotally.api.runtime import Runtime, runtime

HERE = Path(__file__).parent
COOKIE = "kotally_admin"
LOGIN_PATH = "/admin/login"
# Scripts and styles from our own static files only; nothing may frame the admin.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
FORM_FIELDS_MAX = 200

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInRequired(Exception):
    """No valid session: every admin page answers with a redirect to the sign-in page."""


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadForm(Exception):
    """A form body that cannot be read (malformed multipart, too many fields): 400, not 500."""


async def read_form(request: Request, max_fields: int = FORM_FIELDS_MAX) -> FormData:
    try:
        return await request.form(max_fields=max_fields, max_files=0)
    except (StarletteHTTPException, ValueError) as exc:
        raise BadForm() from exc


class NotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Mutation:
    """A checked state-changing request: who sends it and its form fields."""

    who: sessions.Current
    form: Mapping[str, str]

    def get(self, name: str) -> str:
        return self.form.get(name, "").strip()

    def all(self, name: str) -> list[str]:
        values = self.form.get(f"{name}[]")
        return [] if values is None else json.loads(values)


def signed_in(request: Request) -> sessions.Current:
    rt = runtime(request)
    token = request.cookies.get(COOKIE)
    with rt.db.unit_of_work(write=False) as session:
        who, due = sessions.current(session, rt.clock, rt.settings, token)
    if who is None:
        raise SignInRequired()
    if due:
        with rt.db.unit_of_work() as session:
            sessions.touch(session, rt.clock, rt.settings, who.session_id)
    request.state.admin = who
    return who


SignedIn = Annotated[sessions.Current, Depends(signed_in)]


def owner(who: SignedIn) -> sessions.Current:
    if not who.is_owner:
        raise Forbidden("Only owners manage admin users.")
    return who


async def _checked_form(request: Request, who: sessions.Current, *, write: bool = True) -> Mutation:
    form = await read_form(request)
    fields: dict[str, str] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        fields[key] = values[-1] if values else ""
        fields[f"{key}[]"] = json.dumps(values)
    sent = fields.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    if not hmac.compare_digest(sent.encode(), who.csrf_token.encode()):
        raise Forbidden("The form's security token is missing or stale. Reload the page and retry.")
    if write and not who.can_write:
        raise Forbidden("Viewers can look but not change anything.")
    return Mutation(who, fields)


Owner = Annotated[sessions.Current, Depends(owner)]


async def writer(request: Request, who: SignedIn) -> Mutation:
    return await _checked_form(request, who)


async def csrf_only(request: Request, who: SignedIn) -> Mutation:
    """A form any signed-in user may send (sign-out): the CSRF token, but no write role."""
    return await _checked_form(request, who, write=False)


async def owner_writer(request: Request, who: Owner) -> Mutation:
    return await _checked_form(request, who)


Write = Annotated[Mutation, Depends(writer)]
OwnerWrite = Annotated[Mutation, Depends(owner_writer)]
AnyForm = Annotated[Mutation, Depends(csrf_only)]


def tz_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _parse(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def relative(at: datetime, now: datetime) -> str:
    seconds = int((now - at).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


def when_factory(now: datetime) -> Any:
    def when(value: datetime | str | None, tz: str | None = "UTC", empty: str = "—") -> Markup:
        at = _parse(value)
        if at is None:
            return Markup('<span class="muted">{}</span>').format(empty)
        zone = tz_of(tz)
        local = at.astimezone(zone)
        shown = local.strftime("%b %-d, %Y %H:%M")
        hover = f"{relative(at, now)} · {local.strftime('%Y-%m-%d %H:%M:%S')} {zone.key}"
        return Markup('<time datetime="{}" title="{}">{}</time>').format(
            at.astimezone(UTC).isoformat(), hover, shown
        )

    return when


def num(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def shown(value: object) -> str:
    """An audit value as a person reads it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def signed(value: int) -> Markup:
    css = "pos" if value > 0 else "neg"
    return Markup('<span class="{}">{}</span>').format(css, f"{value:+,}".replace("-", "\u2212"))


BADGES = {
    "active": "green",
    "processed": "green",
    "set": "green",
    "not set": "amber",
    "ignored": "grey",
    "owner": "accent",
    "booked": "accent",
    "exhausted": "grey",
    "inactive": "grey",
    "viewer": "grey",
    "admin": "accent",
    "completed": "grey",
    "expired": "amber",
    "paused": "amber",
    "trialing": "amber",
    "unmatched": "amber",
    "cancelled": "grey",
    "voided": "red",
    "refused": "red",
    "failed": "red",
    "suspended": "red",
}


def badge(status: str) -> Markup:
    return Markup('<span class="badge badge-{}">{}</span>').format(
        BADGES.get(status, "grey"), status
    )


env.filters["num"] = num
env.globals.update(badge=badge, signed=signed, shown=shown)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    rt: Runtime = runtime(request)
    who = getattr(request.state, "admin", None)
    html = env.get_template(template).render(
        request=request,
        who=who,
        csrf_token=who.csrf_token if who else "",
        when=when_factory(rt.clock.now()),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def base_url(request: Request) -> str:
    configured = runtime(request).settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    return see_other(LOGIN_PATH)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return render(request, "error.html", 403, title="Not allowed", message=exc.message)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    return render(request, "error.html", 404, title="Not found", message=exc.message)


async def _bad_form(request: Request, exc: Exception) -> Response:
    message = "The form could not be read. Reload the page and submit it again."
    return render(request, "error.html", 400, title="Bad form", message=message)


HANDLERS = {
    SignInRequired: _sign_in_required,
    Forbidden: _forbidden,
    NotFound: _not_found,
    BadForm: _bad_form,
}
