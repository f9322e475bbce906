"""Admin users (owners only): create, change role, deactivate."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin import schemas
from kotally.admin import service as users
from kotally.admin.endpoints.common import field_of
from kotally.admin.web import Owner, OwnerWrite, render, see_other
from kotally.api.runtime import runtime
from kotally.db.models.admin_user import ADMIN_ROLES
from kotally.errors import OperatorError

router = APIRouter(prefix="/admin/users", include_in_schema=False)
NOTICES = {
    "created": "User created. Give them their password through a channel you trust.",
    "role": "Role changed.",
    "deactivated": "User deactivated; their sessions have ended.",
}


def _page(
    request: Request,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        rows = list(users.list_all(session))
    return render(
        request,
        "users.html",
        status,
        rows=rows,
        roles=ADMIN_ROLES,
        form=form or {"role": "viewer"},
        errors=errors or {},
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


@router.get("")
def users_page(request: Request, who: Owner) -> Response:
    return _page(request)


@router.post("")
def create(request: Request, m: OwnerWrite) -> Response:
    rt = runtime(request)
    parsed = schemas.user(m.form)
    if parsed.ok:
        try:
            with rt.db.unit_of_work() as session:
                users.create(session, rt.clock, actor=m.who.actor, **parsed.values)
            return see_other("/admin/users?notice=created")
        except OperatorError as exc:
            parsed.errors[field_of(str(exc), "email")] = str(exc).capitalize() + "."
    form = {k: v for k, v in m.form.items() if k != "password"}
    return _page(request, form=form, errors=parsed.errors, status=422)


@router.post("/{email}/role")
def set_role(request: Request, email: str, m: OwnerWrite) -> Response:
    rt = runtime(request)
    try:
        with rt.db.unit_of_work() as session:
            users.set_role(session, rt.clock, email, m.get("role"), actor=m.who.actor)
    except OperatorError as exc:
        return _page(request, errors={"_table": str(exc).capitalize() + "."}, status=422)
    return see_other("/admin/users?notice=role")


@router.post("/{email}/deactivate")
def deactivate(request: Request, email: str, m: OwnerWrite) -> Response:
    rt = runtime(request)
    try:
        with rt.db.unit_of_work() as session:
            users.deactivate(session, rt.clock, email, actor=m.who.actor)
    except OperatorError as exc:
        return _page(request, errors={"_table": str(exc).capitalize() + "."}, status=422)
    return see_other("/admin/users?notice=deactivated")
