"""GET /embed (the page GHL frames) and its two static files.

These are the only responses allowed in a frame: they carry `Content-Security-Policy:
frame-ancestors` with KOTALLY_EMBED_FRAME_ANCESTORS and mark the request frameable, so the
middleware leaves out `X-Frame-Options: DENY`, which every other response keeps.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.api.runtime import runtime
from kotally.errors import RouteNotFound

router = APIRouter(prefix="/embed", include_in_schema=False)

# Name -> media type; nothing else under static/ is served.
_STATIC = {
    "embed.js": "text/javascript; charset=utf-8",
    "embed.css": "text/css; charset=utf-8",
}
# The page loads only its own script and style and talks only to this server.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
)


@cache
def _file(name: str) -> bytes:
    return resources.files("kotally.embed").joinpath("static", name).read_bytes()


def _frameable(request: Request, content: bytes, media_type: str) -> Response:
    request.state.frameable = True
    request.state.reason_code = "ok"
    ancestors = runtime(request).settings.embed_frame_ancestors
    headers = {
        "Content-Security-Policy": _CSP.format(ancestors=ancestors),
        # A cross-origin parent may embed this document even if it requires CORP of embeds.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    return Response(content, media_type=media_type, headers=headers)


@router.get("")
async def embed_page(request: Request) -> Response:
    return _frameable(request, _file("embed.html"), "text/html; charset=utf-8")


@router.get("/static/{name}")
async def embed_static(request: Request, name: str) -> Response:
    media_type = _STATIC.get(name)
    if media_type is None:
        raise RouteNotFound()
    return _frameable(request, _file(name), media_type)
