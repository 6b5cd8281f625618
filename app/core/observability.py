"""Structured logs with a request id, and Prometheus metrics."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Counter, Histogram

if TYPE_CHECKING:  # the command line logs too, without the web framework
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "stratum_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "stratum_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
EVENTS_INGESTED = Counter("stratum_events_ingested_total", "Events stored", ["source"])
EVENTS_DUPLICATE = Counter(
    "stratum_events_duplicate_total", "Events received again and not stored twice", ["source"]
)
CLASSIFICATIONS = Counter("stratum_classifications_total", "Customers classified", ["path"])


def configure_logging(level: str, *, json: bool) -> None:
    # Plain tracebacks: a pretty-printed one (with locals, highlighted) takes the event
    # loop long enough to starve requests when a database outage logs many of them.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("stratum")


class RequestContextMiddleware:
    """Request id, access log line and metrics for every HTTP request (pure ASGI, cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            counter, histogram = _series(scope["method"], path, status)
            counter.inc()
            histogram.observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                route=path,
                status=status,
                ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()


_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram of one label set, looked up once: a
    `labels()` call takes a lock and builds a key on every request."""
    key = (method, route, status)
    series = _SERIES.get(key)
    if series is None:
        series = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        if len(_SERIES) < 10_000:
            _SERIES[key] = series
    return series


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = str(value.decode("latin-1"))
            # Echo only ids that are safe in a log line and a header.
            if 0 < len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text):
                return text
    return None
