"""`make run`: migrate, start embedded storage (and queue) when none is configured, serve the API
with the version worker beside it.

Embedded storage is SeaweedFS (`weed mini`, app/embedded/seaweedfs.py), or with STORAGE_BACKEND=azure
Azurite (app/embedded/azurite.py), with its data, and the SQLite database of the records, under
`var/embedded/<STORAGE_PORT>/` (EMBEDDED_DIR): files, records and versions survive a restart, and two
instances run side by side given different PORT and STORAGE_PORT. The embedded queue is moto's SQS on a
free port; it keeps nothing across a restart, and the worker's reconciler sends the jobs of versions
still pending again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from app import db
from app.embedded import azurite, seaweedfs
from app.embedded import clamd as embedded_clamd
from app.embedded import process as processes
from app.embedded.process import EmbeddedError, EmbeddedProcess
from app.logs import configure_logging
from app.settings import ROOT, Secret, Settings, SettingsError
from app.tables import TableDef

log = logging.getLogger("app.run")


def embedded_dir(settings: Settings) -> Path:
    """Where the embedded storage keeps its data (and, by default, the records): one folder per
    storage port, so instances side by side never share one."""
    base = settings.embedded_dir if settings.embedded_dir.is_absolute() else ROOT / settings.embedded_dir
    return base / str(settings.storage_port)


@dataclass
class Embedded:
    """The servers `make run` started itself."""

    storage: seaweedfs.SeaweedFS | EmbeddedProcess
    name: str  # SeaweedFS | Azurite
    queue: EmbeddedProcess | None = None

    def stop(self) -> None:
        if self.queue is not None:
            self.queue.stop()
        self.storage.stop()


def _moto_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
    except (urllib.error.URLError, OSError):
        return False
    return True


def start_embedded_queue(host: str = "127.0.0.1", avoid: tuple[int, ...] = ()) -> EmbeddedProcess:
    """moto's server for its SQS, on a free port; returns once it answers. `avoid`: ports that are free
    now but promised to others (the API's, bound only once the queue is up)."""
    port = processes.free_port(host)
    while port in avoid:
        port = processes.free_port(host)
    url = f"http://{host}:{port}"
    return processes.start(
        "embedded queue (moto SQS)",
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        url=url,
        ready=lambda: _moto_answers(url),
    )


def wants_embedded(settings: Settings) -> bool:
    """No storage configured: for S3 neither an endpoint nor a bucket of its own (real AWS needs a
    bucket); for Azure no account or endpoint."""
    if settings.storage_backend == "azure":
        return not settings.azure_configured
    return not {"S3_ENDPOINT_URL", "S3_BUCKET"} & settings.given


def with_local_scanner(settings: Settings) -> tuple[Settings, embedded_clamd.EmbeddedClamd | None]:
    """A local clamd (EICAR's test signature and whatever official databases the host has) is part of
    the embedded run only: a deployment names its scanner with CLAMD_ADDRESS, or its scanned files
    stay pending and the start-up says so."""
    if not wants_embedded(settings):
        return settings, None
    return embedded_clamd.for_make_run(settings)


def with_embedded_storage(settings: Settings) -> tuple[Settings, Embedded]:
    """Start the embedded storage and fill in what it implies where nothing is configured."""
    folder = embedded_dir(settings)
    changes: dict[str, object] = {"embedded_storage": True}
    if settings.storage_backend == "azure":
        process = azurite.start(
            "127.0.0.1",
            settings.storage_port,
            folder / "azurite",
            setting="STORAGE_PORT (or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY to use Azure itself)",
        )
        embedded = Embedded(process, "Azurite")
        changes |= {
            "azure_storage_account": azurite.ACCOUNT,
            "azure_storage_key": azurite.KEY,
            "azure_blob_endpoint": process.url,
            "azure_container": settings.azure_container or "uploads",
            "azure_public_container": settings.azure_public_container or "uploads-public",
        }
        # Records of one backend's files only: S3's and Azure's embedded runs keep databases apart.
        database = folder / "uploads-azure.sqlite3"
    else:
        storage = seaweedfs.start(folder / "seaweedfs", port=settings.storage_port)
        embedded = Embedded(storage, "SeaweedFS")
        changes |= {
            "s3_endpoint_url": storage.url,
            "s3_public_read": "policy",  # SeaweedFS does not enforce object ACLs
            "s3_access_key_id": storage.credentials.access_key_id,
            "s3_secret_access_key": Secret(storage.credentials.secret_access_key),
        }
        database = folder / "uploads.sqlite3"
    # The version worker runs beside the API unless RUN_WORKER says otherwise.
    if "RUN_WORKER" not in settings.given:
        changes["run_worker"] = True
    # A local demo on storage of its own: without auth, its page lists the documents it uploaded too
    # (the start-up log says which access rules this leaves unenforced).
    if "ANONYMOUS_READS" not in settings.given and not settings.auth_enabled:
        changes["anonymous_reads"] = "all"
    if "DATABASE_URL" not in settings.given:
        changes["database_url"] = f"sqlite://{database}"
    return settings.with_changes(**changes), embedded


def page_origins(settings: Settings) -> tuple[str, ...]:
    """Origins the demo page is served from, which upload straight to the bucket: the configured
    host, and its loopback aliases since a browser may open either name."""
    hosts = [settings.host]
    if settings.host in ("127.0.0.1", "localhost", "0.0.0.0"):
        hosts += ["127.0.0.1", "localhost"]
    return tuple(dict.fromkeys(f"http://{h}:{settings.port}" for h in hosts))


async def prepare_storage(settings: Settings) -> None:
    """The bucket, its CORS rules for the demo page's origins and the configured ones, and (SeaweedFS)
    the bucket policy that makes public files readable; on Azurite the private container and the
    public one (anonymous reads of blobs), and the account's CORS rules."""
    from app.services import storage_for

    storage = storage_for(settings)
    await storage.start()
    try:
        await storage.ensure_bucket((*page_origins(settings), *settings.cors_origins))
    finally:
        await storage.close()


def prepare_queue(settings: Settings, embedded: Embedded) -> Settings:
    """Without QUEUE_URL, moto's SQS is the queue (with a dead-letter queue)."""
    if settings.queue_url:
        return settings
    from app.queue import create_queue

    if settings.s3_access_key_id is None:
        # Azure storage brings no AWS credentials; moto's SQS takes any, but botocore must sign.
        settings = settings.with_changes(s3_access_key_id="embedded", s3_secret_access_key=Secret("embedded"))
    embedded.queue = start_embedded_queue(avoid=(settings.port,))
    url = asyncio.run(create_queue(settings, embedded.queue.url, "versions"))
    return settings.with_changes(queue_url=url)


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    configure_logging(settings.log_format, settings.log_level)
    embedded = None
    settings, scanner = with_local_scanner(settings)
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
            log.warning(
                "QUEUE_URL is not set: image versions and virus scans stay pending until a queue and a worker"
                " are configured"
            )
        serve(settings, embedded)
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn has shut down gracefully and re-raises it; the embedded servers stop below
    except EmbeddedError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        if embedded is not None:
            embedded.stop()
        if scanner is not None:
            scanner.stop()


def scanner_line(settings: Settings, tables: Mapping[str, TableDef]) -> str | None:
    """The banner's word on virus scanning; None when no property scans."""
    from app.scanner import describe
    from app.scanning import scanned_properties

    names = ", ".join(scanned_properties(tables))
    if not names:
        return None
    if settings.clamd_address is None:
        return f"none: files saved into {names} stay pending, never served, until CLAMD_ADDRESS names a clamd"
    where = f"clamd at {describe(settings.clamd_address)}"
    if not settings.queue_url:
        return f"{where}; files saved into {names} stay pending: no queue (QUEUE_URL) carries their scans"
    if not settings.run_worker:
        return f"{where}; a standalone worker (make worker) scans files saved into {names}"
    return f"{where}; the worker beside the API scans files saved into {names}"


def describe_storage(settings: Settings, embedded: Embedded | None) -> str:
    """Where files go, for the start-up banner."""
    if embedded is not None:
        folder = embedded_dir(settings)
        where = f"embedded ({embedded.name}) at {embedded.storage.url}, data in {_shown(folder)}"
    elif settings.storage_backend == "azure":
        where = settings.azure_blob_endpoint or f"Azure account {settings.azure_storage_account}"
    else:
        where = settings.s3_endpoint_url or "AWS S3"
    if settings.storage_backend == "azure":
        public = f", public files in {settings.azure_public_container}" if settings.azure_public_container else ""
        return f"{where}, container {settings.azure_container}{public}"
    return f"{where}, bucket {settings.s3_bucket}"


def _shown(folder: Path) -> Path:
    return folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder


def serve(settings: Settings, embedded: Embedded | None) -> None:
    import uvicorn

    from app.main import create_app
    from app.tables import SchemaError

    try:
        app = create_app(settings)
    except SchemaError as exc:
        raise SystemExit(f"schema error: {exc}") from None
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    base = f"http://{settings.host}:{settings.port}"
    scanning = scanner_line(settings, app.state.services.tables)
    scanner = f"  Virus scanner:            {scanning}\n" if scanning else ""
    storage = describe_storage(settings, embedded)
    print(
        f"\n  Demo upload page:         {base}/\n"
        f"  GraphQL API and GraphiQL: {base}/graphql\n"
        f"  Health:                   {base}/healthz  {base}/readyz\n  Storage:                  {storage}\n"
        f"  Version queue:            {settings.queue_url or 'none'}"
        f"{', worker running beside the API' if settings.queue_url and settings.run_worker else ''}\n{scanner}",
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
