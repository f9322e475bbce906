"""The admin UI's routers, static files and error pages, installed on the app by `install`."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from kotally.admin.endpoints import (
    audit,
    auth,
    configs,
    contacts,
    inbox,
    locations,
    overview,
    users,
)
from kotally.admin.web import HANDLERS, HERE

__all__ = ["ROUTERS", "install"]
ROUTERS = tuple(
    m.router for m in (auth, overview, locations, configs, contacts, inbox, audit, users)
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=HERE / "static"), name="admin-static")
    for exc, handler in HANDLERS.items():
        app.add_exception_handler(exc, handler)
