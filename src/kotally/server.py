"""`kotally serve`: uvicorn with one or more worker processes sharing the database."""

from __future__ import annotations

import os
import shutil
import tempfile

import uvicorn

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.migrate import upgrade_to_head

# Seconds a stopping server gives in-flight requests to finish.
GRACEFUL_SHUTDOWN_SECONDS = 30


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    settings.check_production()
    db = Database(settings)
    try:
        upgrade_to_head(db.engine)  # once, in the parent, before any worker starts
    finally:
        db.dispose()
    metrics_dir = tempfile.mkdtemp(prefix="kotally-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "kotally.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=settings.keep_alive_seconds,
            server_header=False,
            proxy_headers=False,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
