"""`make run`: migrate, start embedded storage (and queue) when none is configured, serve the API
with the version worker beside it.

Embedded storage is a moto server (S3 over HTTP) in a child process, answering form POSTs with S3's
headers (app/embedded_storage.py). It keeps objects in memory, so with the default database the
embedded run starts from a fresh SQLite file each time: records never point at files that vanished
with the previous run.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import urllib.error
import urllib.request

from app import db
from app.embedded import process as processes
from app.embedded.process import EmbeddedProcess
from app.logs import configure_logging
from app.settings import ROOT, Secret, Settings, SettingsError

log = logging.getLogger("app.run")

EMBEDDED_DB = "sqlite://var/embedded.sqlite3"


def _moto_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
    except (urllib.error.URLError, OSError):
        return False
    return True


def start_embedded_storage(host: str = "127.0.0.1", port: int = 9000) -> EmbeddedProcess:
    """A moto server in server mode; returns once it answers."""
    url = f"http://{host}:{port}"
    try:
        return processes.start(
            "embedded storage",
            [sys.executable, "-m", "app.embedded_storage", "-H", host, "-p", str(port)],
            url=url,
            ready=lambda: _moto_answers(url),
            ports=[(host, port, "STORAGE_PORT (or S3_ENDPOINT_URL to use a storage that is already running)")],
        )
    except processes.EmbeddedError as exc:
        raise SystemExit(str(exc)) from None


def wants_embedded(settings: Settings) -> bool:
    """No storage configured: neither an endpoint nor a bucket of its own (real AWS needs a bucket)."""
    return not {"S3_ENDPOINT_URL", "S3_BUCKET"} & settings.given


def with_embedded_storage(settings: Settings) -> tuple[Settings, EmbeddedProcess]:
    """Start the embedded storage and fill in what it implies where nothing is configured."""
    storage = start_embedded_storage(port=settings.storage_port)
    changes: dict[str, object] = {"s3_endpoint_url": storage.url, "embedded_storage": True}
    if "AWS_ACCESS_KEY_ID" not in settings.given:
        changes["s3_access_key_id"] = "testing"
    if "AWS_SECRET_ACCESS_KEY" not in settings.given:
        changes["s3_secret_access_key"] = Secret("testing")
    # The version worker runs beside the API unless RUN_WORKER says otherwise.
    if "RUN_WORKER" not in settings.given:
        changes["run_worker"] = True
    if "DATABASE_URL" not in settings.given:
        path = ROOT / "var" / "embedded.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        changes["database_url"] = EMBEDDED_DB
    return settings.with_changes(**changes), storage


def page_origins(settings: Settings) -> tuple[str, ...]:
    """Origins the demo page is served from, which upload straight to the bucket: the configured
    host, and its loopback aliases since a browser may open either name."""
    hosts = [settings.host]
    if settings.host in ("127.0.0.1", "localhost", "0.0.0.0"):
        hosts += ["127.0.0.1", "localhost"]
    return tuple(dict.fromkeys(f"http://{h}:{settings.port}" for h in hosts))


async def prepare_storage(settings: Settings) -> None:
    from app.keys import StorageUrls
    from app.storage import Storage

    storage = Storage(settings, StorageUrls(settings.s3_bucket, settings.s3_region, settings.s3_endpoint_url))
    await storage.start()
    try:
        origins = (*page_origins(settings), *settings.cors_origins)
        await storage.ensure_bucket(origins)
    finally:
        await storage.close()


def prepare_queue(settings: Settings, embedded: EmbeddedProcess) -> Settings:
    """Without QUEUE_URL, the embedded moto server is the queue too (SQS over HTTP, with a DLQ)."""
    if settings.queue_url:
        return settings
    from app.queue import create_queue

    url = asyncio.run(create_queue(settings, embedded.url, "versions"))
    return settings.with_changes(queue_url=url)


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    configure_logging(settings.log_format, settings.log_level)
    embedded = None
    try:
        if wants_embedded(settings):
            settings, embedded = with_embedded_storage(settings)
        applied = asyncio.run(db.migrate(settings.database_url))
        log.info(
            "database %s: %s", settings.database_url.split("://")[0], f"applied {applied}" if applied else "up to date"
        )
        if embedded is not None:
            asyncio.run(prepare_storage(settings))
            settings = prepare_queue(settings, embedded)
        elif not settings.queue_url:
            log.warning("QUEUE_URL is not set: image versions stay pending until a queue and a worker are configured")
        serve(settings, embedded)
    finally:
        if embedded is not None:
            embedded.stop()


def serve(settings: Settings, embedded: EmbeddedProcess | None) -> None:
    import uvicorn

    from app.main import create_app
    from app.tables import SchemaError

    try:
        app = create_app(settings)
    except SchemaError as exc:
        raise SystemExit(f"schema error: {exc}") from None
    base = f"http://{settings.host}:{settings.port}"
    storage = f"embedded (moto) at {embedded.url}, in memory" if embedded else settings.s3_endpoint_url or "AWS S3"
    print(
        f"\n  Demo upload page:         {base}/\n"
        f"  GraphQL API and GraphiQL: {base}/graphql\n"
        f"  Health:                   {base}/healthz  {base}/readyz\n  Storage:                  {storage}, "
        f"bucket {settings.s3_bucket}\n  Version queue:            {settings.queue_url or 'none'}"
        f"{', worker running beside the API' if settings.queue_url and settings.run_worker else ''}\n",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=settings.keep_alive_seconds,
        # WebSockets (GraphQL subscriptions, app/graphql/ws.py): a message is held whole before the app
        # sees it, so the same bound as a request body; no compression (messages are small JSON, and
        # a deflate context costs ~45 KB per connection); keep-alive is the protocol's own ping
        # (LIVE_KEEPALIVE), so no second, transport-level one.
        ws_max_size=settings.max_body_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        log_level="info",
        access_log=False,  # ObserveMiddleware logs each request with its id
        log_config=None,  # keep the handlers configure_logging installed
    )
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()


if __name__ == "__main__":
    main()
