"""Sign-in and sign-out (admin.md §1)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin import sessions
from kotally.admin.web import COOKIE, AnyForm, read_form, render, see_other
from kotally.api.runtime import in_thread, runtime

router = APIRouter(prefix="/admin", include_in_schema=False)
FIELD_CHARS_MAX = 1024


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html", email="", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    rt = runtime(request)
    form = await read_form(request, max_fields=10)
    email = form.get("email")
    password = form.get("password")
    email = email[:FIELD_CHARS_MAX] if isinstance(email, str) else ""
    password = password if isinstance(password, str) else ""
    address = request.client.host if request.client else "unknown"

    def attempt() -> sessions.SignedIn | str:
        # A failure is committed too: the rate limit counts it.
        with rt.db.unit_of_work() as session:
            try:
                return sessions.sign_in(
                    session,
                    rt.clock,
                    rt.settings,
                    email=email,
                    password=password,
                    address=address[:64],
                    previous_token=request.cookies.get(COOKIE),
                )
            except sessions.SignInLimited as exc:
                minutes = max(1, exc.retry_after_seconds // 60)
                return (
                    "Too many failed sign-ins from this account or address. "
                    f"Try again in {minutes} minutes."
                )
            except sessions.SignInRefused:
                return "That email and password do not match an active account."

    result = await in_thread(attempt)
    if isinstance(result, str):
        status = 429 if result.startswith("Too many") else 401
        response = render(request, "login.html", status, email=email, error=result)
        response.delete_cookie(COOKIE, path="/admin")
        return response
    redirect = see_other("/admin")
    redirect.set_cookie(
        COOKIE,
        result.token,
        max_age=rt.settings.admin_session_lifetime_seconds,
        path="/admin",
        httponly=True,
        samesite="lax",
        secure=rt.settings.env == "production",
    )
    return redirect


@router.post("/logout")
def logout(request: Request, _: AnyForm) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work() as session:
        sessions.sign_out(session, rt.clock, rt.settings, request.cookies.get(COOKIE))
    response = see_other("/admin/login")
    response.delete_cookie(COOKIE, path="/admin")
    return response
