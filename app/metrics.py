"""Prometheus metrics of this process, and the hooks other parts call to record them.

The API records presigns, saves and request latency itself (count_mutations, ObserveMiddleware);
the worker calls `observe_version_job`, `observe_scan` and `observe_queue_lag`. The gauges of the
virus scan (files waiting, scanner up) are set just before each scrape (`endpoint(refresh)`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import FieldNode, GraphQLError, get_operation_ast
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from app.errors import AppError, InternalError
from app.logs import accept_request_id, request_id

REGISTRY = CollectorRegistry()

PRESIGNS = Counter(
    "uploads_presigns",
    "Presign mutations answered, by mutation and outcome (ok or error code).",
    ["mutation", "outcome"],
    registry=REGISTRY,
)
SAVES = Counter(
    "uploads_saves",
    "Record mutations answered, by operation and outcome (ok or error code).",
    ["operation", "outcome"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time from request start to response end, by route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
VERSION_JOB_SECONDS = Histogram(
    "uploads_version_job_duration_seconds",
    "Time to build every version of one upload.",
    ["outcome"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
VERSION_JOB_FAILURES = Counter(
    "uploads_version_job_failures",
    "Version jobs that failed, by reason (retried or final).",
    ["reason", "final"],
    registry=REGISTRY,
)
QUEUE_LAG_SECONDS = Histogram(
    "uploads_queue_lag_seconds",
    "Time a version job waited in the queue before a worker took it.",
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0),
)
SCANS = Counter(
    "uploads_scans",
    "Virus scans by outcome: clean, infected, failed (clamd cannot scan it, or the file changed), unavailable"
    " (the scanner or storage could not be reached: retried), error (a bug or the database: retried).",
    ["outcome"],
    registry=REGISTRY,
)
SCAN_SECONDS = Histogram(
    "uploads_scan_duration_seconds",
    "Time to stream one file from storage to clamd and get its verdict, by verdict.",
    ["outcome"],
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
SCANNED_BYTES = Counter(
    "uploads_scanned_bytes", "Bytes streamed to clamd by scans that got a verdict.", registry=REGISTRY
)
SCANS_PENDING = Gauge(
    "uploads_scans_pending",
    "Saved files waiting for their virus scan (unserved), counted at this scrape.",
    registry=REGISTRY,
)
SCANNER_UP = Gauge(
    "uploads_scanner_up",
    "1 when clamd answered PING at this scrape; 0 when it did not, or when no scanner is configured.",
    registry=REGISTRY,
)
_SCAN_OUTCOMES = frozenset({"clean", "infected", "failed", "unavailable", "error"})
_VERDICTS = frozenset({"clean", "infected", "failed"})

LIVE_CONNECTIONS = Gauge("uploads_live_connections", "Open GraphQL WebSocket connections.", registry=REGISTRY)
LIVE_FOLLOWERS = Gauge("uploads_live_followers", "Subscriptions following an upload's status.", registry=REGISTRY)
LIVE_CLOSES = Counter(
    "uploads_live_closes",
    "WebSocket connections the server closed, by close code (4400 bad message, 4403 refused token, "
    "4408 timeout, 4429 flood, 1000 idle, 1009 message too big).",
    ["code"],
    registry=REGISTRY,
)
LIVE_NOTIFICATIONS = Counter(
    "uploads_live_notifications",
    "Change notifications received, by origin (this process, or another through PostgreSQL).",
    ["origin"],
    registry=REGISTRY,
)

GC_FULL_PASSES = Counter(
    "uploads_gc_full_passes",
    "Full garbage collections over every object, once memory grew by GC_REFREEZE_GROWTH: each one a pause.",
    registry=REGISTRY,
)

PRESIGN_MUTATIONS = frozenset({"attachment_presign_url", "image_presign_url", "property_upload_presigned_url"})
SAVE_MUTATIONS = frozenset({"record_create", "record_update", "record_delete"})
# Known paths only, so a scan of random URLs cannot create unbounded label values.
ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})


# -- hooks for the worker ------------------------------------------------------------------------
def observe_version_job(seconds: float, *, ok: bool, reason: str | None = None, final: bool = False) -> None:
    """One version job finished (`ok`) or failed with `reason` (`final`: no retry left)."""
    VERSION_JOB_SECONDS.labels("ok" if ok else "error").observe(seconds)
    if not ok:
        VERSION_JOB_FAILURES.labels(reason or "unknown", "true" if final else "false").inc()


def observe_scan(outcome: str, seconds: float, size: int = 0) -> None:
    """One scan job ended with `outcome` (app.scanning.ScanOutcome); jobs that did not scan (skipped,
    busy, a promotion retried) are not counted."""
    if outcome in _SCAN_OUTCOMES:
        SCANS.labels(outcome).inc()
    if outcome in _VERDICTS:
        SCAN_SECONDS.labels(outcome).observe(seconds)
        SCANNED_BYTES.inc(size)


def set_scanner_up(up: bool) -> None:
    SCANNER_UP.set(1 if up else 0)


def set_scans_pending(count: int) -> None:
    SCANS_PENDING.set(count)


def observe_queue_lag(seconds: float) -> None:
    """A job was received `seconds` after it was queued."""
    QUEUE_LAG_SECONDS.observe(max(seconds, 0.0))


# -- GraphQL -------------------------------------------------------------------------------------
def _outcome(error: GraphQLError) -> str:
    original = error.original_error
    return original.code if isinstance(original, AppError) else InternalError.code


def count_mutations(ctx: ExecutionContext) -> None:
    """Counts presign and save mutations by their outcome, from the executed result (called after
    execution by app/graphql/pipeline.py)."""
    if ctx.operation_type is not OperationType.MUTATION or ctx.result is None:
        return
    failed: dict[str, str] = {}
    for error in ctx.result.errors or []:
        if error.path:
            failed.setdefault(str(error.path[0]), _outcome(error))
    for name in (ctx.result.data or {}).keys() | failed.keys():
        field = _field_name(ctx, name)
        outcome = failed.get(name, "ok")
        if field in PRESIGN_MUTATIONS:
            PRESIGNS.labels(field, outcome).inc()
        elif field in SAVE_MUTATIONS:
            SAVES.labels(field.removeprefix("record_"), outcome).inc()


def _field_name(ctx: Any, response_key: str) -> str:
    """The mutation's real name behind an alias."""
    operation = get_operation_ast(ctx.graphql_document, ctx.operation_name) if ctx.graphql_document else None
    for selection in operation.selection_set.selections if operation else ():
        if isinstance(selection, FieldNode) and (selection.alias or selection.name).value == response_key:
            return selection.name.value
    return response_key


# -- HTTP ----------------------------------------------------------------------------------------
class ObserveMiddleware:
    """Gives each request an id (X-Request-ID honoured if sane), returns it in the response header,
    times the request and logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.access = logging.getLogger("app.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = accept_request_id(raw.decode("latin-1") if raw is not None else None)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope["path"]
            REQUEST_SECONDS.labels(scope["method"], path if path in ROUTES else "other", str(status)).observe(elapsed)
            if self.access.isEnabledFor(logging.INFO):
                self.access.info(
                    "%s %s %s %.1fms",
                    scope["method"],
                    path,
                    status,
                    elapsed * 1000,
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id.reset(token)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def endpoint(refresh: Callable[[], Awaitable[None]]) -> Callable[[Request], Awaitable[Response]]:
    """`/metrics` that first runs `refresh` (which sets gauges from the database or the scanner); a
    failing refresh leaves the gauges as they were and the scrape still answers."""

    async def scrape(request: Request) -> Response:
        try:
            await refresh()
        except Exception:  # the database is down (/readyz says so): the metrics still answer
            logging.getLogger(__name__).warning("metrics: could not refresh the scan gauges", exc_info=True)
        return await metrics_endpoint(request)

    return scrape
