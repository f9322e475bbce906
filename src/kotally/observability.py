"""JSON logs with the correlation id on every line, and Prometheus metrics.

With several worker processes the metrics live in PROMETHEUS_MULTIPROC_DIR (set by `kotally serve`)
and /metrics aggregates them.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

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
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Kotally writes its own access line (with correlation id and reason code).
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
