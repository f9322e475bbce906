"""Product configs of a location: list, create, edit, deactivate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin import schemas
from kotally.admin.endpoints.common import field_of, location_or_404
from kotally.admin.web import Mutation, NotFound, SignedIn, Write, render, see_other
from kotally.api.runtime import runtime
from kotally.audit import tracked
from kotally.configs import repository as config_repo
from kotally.configs import service as configs
from kotally.configs.service import CONFIG_TYPES
from kotally.db.models import ProductConfig
from kotally.errors import OperatorError

router = APIRouter(prefix="/admin/locations/{location_id}/configs", include_in_schema=False)
NOTICES = {
    "created": "Product config created.",
    "saved": "Changes saved. Lots already granted keep their credits and expiry.",
    "deactivated": "Product config deactivated: it grants nothing more and its lots stop counting.",
    "activated": "Product config active again.",
}


def _as_form(c: ProductConfig) -> dict[str, str]:
    return {
        "config_id": c.config_id,
        "name": c.name,
        "type": c.type,
        "credits": str(c.credits),
        "expiry_days": "" if c.expiry_days is None else str(c.expiry_days),
        "calendars": ", ".join(c.linked("calendar")),
        "ghl_products": ", ".join(c.linked("ghl_product")),
        "stripe_prices": ", ".join(c.linked("stripe_price")),
    }


@router.get("")
def list_page(request: Request, location_id: str, who: SignedIn) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        loc = location_or_404(session, location_id)
        rows = list(configs.list_all(session, location_id))
        for row in rows:
            row.linked("calendar")  # links are loaded while the session is open
    return render(
        request,
        "configs.html",
        location=loc,
        rows=rows,
        tab="configs",
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


def _form_page(
    request: Request,
    location_id: str,
    *,
    config: ProductConfig | None,
    form: Any,
    errors: Any,
    status: int = 200,
) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        loc = location_or_404(session, location_id)
    return render(
        request,
        "config_form.html",
        status,
        location=loc,
        config=config,
        form=form,
        errors=errors,
        types=CONFIG_TYPES,
        tab="configs",
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


@router.get("/new")
def new_page(request: Request, location_id: str, who: SignedIn) -> Response:
    if not who.can_write:
        return see_other(f"/admin/locations/{location_id}/configs")
    form = {"type": "package"}
    return _form_page(request, location_id, config=None, form=form, errors={})


@router.post("")
def create(request: Request, location_id: str, m: Write) -> Response:
    rt = runtime(request)
    parsed = schemas.config(m.form, new=True)
    if parsed.ok:
        try:
            with rt.db.unit_of_work() as session:
                location_or_404(session, location_id)
                tracked.create_config(
                    session, rt.clock, m.who.actor, location_id=location_id, **parsed.values
                )
            return see_other(f"/admin/locations/{location_id}/configs?notice=created")
        except OperatorError as exc:
            parsed.errors[field_of(str(exc))] = str(exc).capitalize() + "."
    return _form_page(
        request, location_id, config=None, form=m.form, errors=parsed.errors, status=422
    )


def _config(request: Request, location_id: str, config_id: str) -> ProductConfig:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        location_or_404(session, location_id)
        config = config_repo.get(session, location_id, config_id)
        if config is None:
            raise NotFound(f"There is no product config {config_id!r} in {location_id!r}.")
        config.linked("calendar")  # links are loaded while the session is open
        return config


@router.get("/{config_id}")
def edit_page(request: Request, location_id: str, config_id: str, who: SignedIn) -> Response:
    config = _config(request, location_id, config_id)
    return _form_page(request, location_id, config=config, form=_as_form(config), errors={})


@router.post("/{config_id}")
def update(request: Request, location_id: str, config_id: str, m: Write) -> Response:
    rt = runtime(request)
    config = _config(request, location_id, config_id)
    parsed = schemas.config(m.form, new=False)
    if parsed.ok:
        values = dict(parsed.values)
        values["clear_expiry"] = values["expiry_days"] is None
        try:
            with rt.db.unit_of_work() as session:
                tracked.update_config(
                    session,
                    rt.clock,
                    m.who.actor,
                    location_id=location_id,
                    config_id=config_id,
                    **values,
                )
            return see_other(f"/admin/locations/{location_id}/configs/{config_id}?notice=saved")
        except OperatorError as exc:
            parsed.errors[field_of(str(exc))] = str(exc).capitalize() + "."
    form = {**m.form, "config_id": config_id}
    return _form_page(
        request, location_id, config=config, form=form, errors=parsed.errors, status=422
    )


def _set_active(
    request: Request, location_id: str, config_id: str, m: Mutation, active: bool
) -> Response:
    rt = runtime(request)
    _config(request, location_id, config_id)
    with rt.db.unit_of_work() as session:
        tracked.update_config(
            session,
            rt.clock,
            m.who.actor,
            location_id=location_id,
            config_id=config_id,
            action="product_config.activate" if active else "product_config.deactivate",
            active=active,
        )
    notice = "activated" if active else "deactivated"
    return see_other(f"/admin/locations/{location_id}/configs/{config_id}?notice={notice}")


@router.post("/{config_id}/deactivate")
def deactivate(request: Request, location_id: str, config_id: str, m: Write) -> Response:
    return _set_active(request, location_id, config_id, m, False)


@router.post("/{config_id}/activate")
def activate(request: Request, location_id: str, config_id: str, m: Write) -> Response:
    return _set_active(request, location_id, config_id, m, True)
