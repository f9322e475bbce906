"""Limit (b): the least a FastAPI endpoint costs on this machine.

The check-eligibility path answering a constant JSON body, served by uvicorn with the settings
`kotally serve` uses (same worker count, uvloop/httptools when installed, no access log). The
benchmark drives it with the very requests it sends to the real check.

    python -m bench.minimal_app --port 8001 --workers 2
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

from kotally.server import GRACEFUL_SHUTDOWN_SECONDS

BODY = b'{"ok":true,"reason_code":"eligible","correlation_id":"constant","balance_after":9}'

app = FastAPI()


@app.post("/api/v2/entitlements/check-eligibility")
async def check(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(  # the options of kotally.server.serve
        "bench.minimal_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
