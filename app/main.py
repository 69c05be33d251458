"""create_app(settings): wires the services (app/services.py) to the transports. Nothing else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app import db
from app.body_limit import BodySizeLimit
from app.errors import AppError
from app.graphiql import graphiql_html
from app.graphql.context import Context
from app.graphql.http import GraphQLView
from app.graphql.schema import build_schema
from app.graphql.ws import Connections, LiveWebSocket, LiveWSHandler
from app.http_errors import exception_handlers
from app.metrics import ObserveMiddleware, count_mutations
from app.metrics import endpoint as metrics_endpoint
from app.rest import RestApi
from app.runtime import long_lived_objects_frozen
from app.scanning import notice as scanning_notice
from app.services import Services
from app.settings import ROOT, Settings
from app.sweep import housekeeping
from app.tables import TableDef, load_tables
from app.worker import Worker, scan_gauges, stop_gracefully

log = logging.getLogger("app")

# The demo upload page: plain files, no build step.
STATIC_DIR = ROOT / "app" / "static"


class GraphQLApp(GraphQLView[Context, None]):
    # Subscriptions: graphql-transport-ws only, through the hardened handler (app/graphql/ws.py).
    graphql_transport_ws_handler_class = LiveWSHandler
    websocket_adapter_class = LiveWebSocket  # type: ignore[assignment]

    def __init__(self, services: Services, **kwargs: Any) -> None:
        s = services.settings
        kwargs.setdefault("graphql_ide", "graphiql" if s.graphiql else None)
        super().__init__(
            build_schema(settings=s, observers=(count_mutations,)),
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=s.live_init_timeout),
            max_subscriptions_per_connection=None,  # LiveWSHandler applies ours, with a code
            allowed_origins=s.cors_origins,  # browsers on other origins, as for HTTP (CORS)
            **kwargs,
        )
        self.services = services
        self.debug = s.debug
        self.connections = Connections(s, services.auth)

    @property
    def graphql_ide_html(self) -> str:
        return graphiql_html()

    async def get_context(self, request: Request | WebSocket, response: Response | None) -> Context:  # type: ignore[override]
        s = self.services
        context = Context(
            request=request,
            response=None if isinstance(request, WebSocket) else response,
            uploads=s.uploads,
            records=s.records,
            caller=s.auth.anonymous(request),
            auth_required=s.auth.enabled,
            live=s.live,
        )
        try:
            context.caller = s.auth.authenticate(request)
        except AppError as exc:
            context.auth_error = exc
        return context


def create_app(settings: Settings, *, tables: dict[str, TableDef] | None = None) -> Starlette:
    tables = tables if tables is not None else load_tables(settings.schema_dir)
    services = Services(settings, tables)
    (log.info if services.auth.enabled else log.warning)("%s", services.auth.describe())
    log.info("%s", services.records.access.summary())
    for note in services.records.access.notes():
        log.warning("%s", note)
    if said := scanning_notice(settings, tables):
        log.log(*said)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with services:
            await services.records.ensure_indexes()
            await services.live.start()
            worker = None
            if services.queue is not None:
                worker = Worker(
                    settings, services.versions, services.queue, scans=services.scans, periodic=housekeeping(services)
                )
            task = asyncio.create_task(worker.run()) if worker and settings.run_worker else None
            try:
                growth = settings.gc_refreeze_growth if settings.gc_freeze_survivors else None
                with long_lived_objects_frozen(growth) as app.state.gc_freezer:
                    yield
            finally:
                if worker is not None and task is not None:
                    await stop_gracefully(worker, task)
                await services.live.close()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def demo_page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await db.ping()
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            await services.storage.ping()
            checks["storage"] = "ok"
        except AppError as exc:
            checks["storage"] = f"unavailable: {exc.message}"
        ready = all(v == "ok" for v in checks.values())
        # Shown, not required: without clamd the API still saves files (they wait, unserved, for their
        # scan), so a scanner outage must not take every API instance out of its load balancer.
        scanner = await services.scans.probe()
        if scanner is not None:
            checks["scanner"] = scanner
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    graphql = GraphQLApp(services)
    # Outermost, so the request id and the latency cover CORS answers too.
    middleware = [Middleware(ObserveMiddleware)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    # Inside CORS, so a browser can read the 413 of a cross-origin request.
    middleware.append(Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes))
    app = Starlette(
        routes=[
            # Every method: the view answers those it does not serve with a GraphQL-shaped 405.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *RestApi(services.uploads, services.records, services.auth).routes(),
            Route("/", demo_page),
            # GraphiQL's vendored bundle is 3.5 MB; gzip takes it to about 1 MB over the wire.
            Mount("/static", GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=1024), name="static"),
            Route("/metrics", metrics_endpoint(scan_gauges(services.scans))),
        ],
        middleware=middleware,
        # Error responses, GraphQL-shaped on /graphql and REST-shaped elsewhere (app/http_errors.py).
        exception_handlers=exception_handlers(debug=settings.debug, graphql_paths=frozenset({"/graphql"})),
        lifespan=lifespan,
    )
    app.state.services = services
    return app
