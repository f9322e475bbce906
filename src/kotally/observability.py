"""JSON logs with the correlation id on every line, and Prometheus metrics.

With several worker processes the metrics live in PROMETHEUS_MULTIPROC_DIR (set by `kotally serve`)
and /metrics aggregates them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from kotally.kit import jsontext

REQUESTS = Counter(
    "kotally_http_requests_total",
    "HTTP requests by endpoint, method, status and reason code",
    ["endpoint", "method", "status", "reason_code"],
)
LATENCY = Histogram(
    "kotally_http_request_duration_seconds",
    "HTTP request latency by endpoint and reason code",
    ["endpoint", "method", "reason_code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

WEBHOOK_EVENTS = Counter(
    "kotally_webhook_events_total",
    "Webhook events stored, by provider, event type and inbox status",
    ["provider", "type", "status"],
)
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "kotally_webhook_signature_failures_total",
    "Webhook deliveries refused for their signature (401, nothing stored)",
    ["provider"],
)


def metrics_payload() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def configure_logging(level: str = "INFO") -> None:
    """structlog over the standard library, one JSON object per line on stderr."""
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    structlog.configure(
        # filter_by_level first: a line below the level costs a check, not a rendered timestamp
        # (the access line at INFO is asked for on every request).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    ACCESS_LOG.handler = handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Kotally writes its own access line (with correlation id and reason code).
    logging.getLogger("uvicorn.access").disabled = True


def _dumps(obj: Any, **kwargs: Any) -> str:
    """A log line's JSON (structlog passes its fallback for unknown types as `default`)."""
    return jsontext.dumps(obj, kwargs.get("default")).decode()


class AccessLog:
    """The access line of every request (api/middleware.py), as structlog renders it through the
    handler `configure_logging` installs: the same keys in the same order, the same JSON.

    Handed to structlog, a line cost more than a third of a check's CPU (30-55 us in-process: two
    LogRecords, the caller's frame looked up, the processor chain, a write and flush each); here
    it is one dict and one orjson call, and the lines of one event-loop turn are written together
    under the handler's lock, in writes of at most 1,024 characters (`_chunks`). This applies
    only while that handler is the root logger's one handler and nothing filters; otherwise
    (pytest capturing logs, handlers added by an embedding application) `write` declines and the
    line goes through structlog as every other does."""

    def __init__(self) -> None:
        self.handler: logging.StreamHandler[Any] | None = None
        self._access = logging.getLogger("kotally.access")
        self._pending: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def _direct(self) -> logging.StreamHandler[Any] | None:
        handler, access, root = self.handler, self._access, logging.root
        if (
            handler is None
            or root.handlers != [handler]
            or access.handlers
            or not access.propagate
            or access.filters
            or root.filters
            or handler.filters
        ):
            return None
        return handler

    def write(self, fields: dict[str, Any]) -> bool:
        """Queue the line of `fields` (a request's, logged at INFO); False when it must go
        through structlog instead."""
        if self._direct() is None:
            return False
        line = {**fields, "event": "request"}
        for key, value in structlog.contextvars.get_contextvars().items():
            line.setdefault(key, value)
        line["level"] = "info"
        line["logger"] = "kotally.access"
        line["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._pending.append(_dumps(line))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: at once
            self.flush()
            return True
        if self._flush_on is not loop:  # once per turn of this loop (another loop: again)
            self._flush_on = loop
            loop.call_soon(self.flush)
        return True

    def flush(self) -> None:
        """Write the queued lines (to the handler's stream, as its emit would)."""
        lines, self._pending, self._flush_on = self._pending, [], None
        handler = self._direct() or self.handler
        if not lines or handler is None:
            return
        with handler.lock or contextlib.nullcontext():
            try:
                for chunk in _chunks([line + handler.terminator for line in lines]):
                    handler.stream.write(chunk)
                    handler.flush()
            except (OSError, ValueError):  # the stream is gone (at exit): nowhere to say so
                pass


# Workers share stderr: a write to a pipe of at most PIPE_BUF (4,096 bytes on Linux) bytes is
# never interleaved with another process's, as one line per write was not. A chunk holds at most
# 1,024 characters (4 bytes each at most in UTF-8); a longer line goes alone, as it did.
_CHUNK_CHARS = 1024


def _chunks(lines: list[str]) -> list[str]:
    """The lines joined into as few writes as keep each within _CHUNK_CHARS."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) > _CHUNK_CHARS:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append("".join(current))
    return chunks


ACCESS_LOG = AccessLog()
atexit.register(ACCESS_LOG.flush)  # what the last turn queued, should the loop not run again


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
