"""The container of one process's long-lived parts: database, storage, queue, virus scanner and the use
cases built on them. The API (app/main.py), the standalone worker (app/worker.py) and the sweep (app/sweep.py)
each build one, `open()` it before work and `close()` it after; nothing else constructs adapters."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType

from tortoise.context import TortoiseContext

from app import db
from app.auth import Authenticator
from app.events import Events
from app.jobs import scan_message, versions_message
from app.live import LiveUploads
from app.models import Upload
from app.pdf import HtmlToPdf
from app.queue import Queue
from app.records import Records
from app.remote_fetch import RemoteFetcher
from app.scanner import Clamd
from app.scanning import Scans
from app.settings import Settings, SettingsError
from app.storage.base import Storage
from app.storage.s3 import S3Config, S3Storage
from app.tables import PropertyDef, TableDef, load_tables
from app.uploads import Uploads
from app.versions import Versions

log = logging.getLogger(__name__)


def storage_for(settings: Settings, tables: Mapping[str, TableDef] | None = None) -> Storage:
    """The storage adapter STORAGE_BACKEND names. On Azure, public files need a container of their own
    (AZURE_PUBLIC_CONTAINER): with `tables`, a table that has public upload properties and no such
    container stops the start-up here, rather than a public file being unreadable (or a private one
    readable) later."""
    if settings.storage_backend != "azure":
        return S3Storage(S3Config.of(settings))
    from app.storage.azure import AzureConfig, AzureStorage

    config = AzureConfig.from_settings(settings)
    public = [f"{t.name}.{p.name}" for t in (tables or {}).values() for p in t.properties.values() if _public(p)]
    if public and config.public_container is None:
        raise SettingsError(
            f"STORAGE_BACKEND=azure: {', '.join(public[:5])} keep(s) public files, and Azure has no per-file "
            "access: set AZURE_PUBLIC_CONTAINER to a container that allows anonymous reads of blobs (public files "
            "and their versions go there; AZURE_CONTAINER stays private), or make those properties private"
        )
    return AzureStorage(config)


def _public(pdef: PropertyDef) -> bool:
    return pdef.is_upload and pdef.upload_options().acl == "public"


class Services:
    """Built once per process from the settings and the tables; cheap to build, `open()` connects."""

    def __init__(self, settings: Settings, tables: dict[str, TableDef] | None = None) -> None:
        self.settings = settings
        self.tables = tables if tables is not None else load_tables(settings.schema_dir)
        self.storage: Storage = storage_for(settings, self.tables)
        self.queue = Queue(settings, settings.queue_url) if settings.queue_url else None
        self.events = Events(settings.database_url)
        self.uploads = Uploads(
            settings,
            self.tables,
            self.storage,
            on_promoted=self.queue_versions,
            on_quarantined=self.queue_scans,
            remote=RemoteFetcher.of(settings),
            pdf=HtmlToPdf(settings.value_upload_pdf_timeout),
        )
        self.records = Records(self.uploads, publish=self.events.publish)
        self.versions = Versions(settings, self.tables, self.storage, publish=self.events.publish)
        self.scanner = (
            Clamd(settings.clamd_address, timeout=settings.clamd_timeout, scan_timeout=settings.clamd_scan_timeout)
            if settings.clamd_address is not None
            else None
        )
        self.scans = Scans(settings, self.uploads, self.storage, self.scanner, on_scanned=self.scanned)
        # Started by the API only (app/main.py): the worker and the sweep follow nothing.
        self.live = LiveUploads(self.records, self.events, settings.live_resync_seconds)
        self.auth = Authenticator(settings)
        self._orm: TortoiseContext | None = None

    async def scanned(self, upload: Upload) -> None:
        """A scan's outcome is committed (promoted, infected or failed): live subscribers re-read it."""
        if upload.record_id is not None:
            self.events.publish(upload.record_id, upload.property_name)

    async def queue_versions(self, upload_ids: Sequence[int]) -> None:
        if self.queue is not None:
            await self.queue.send([versions_message(i) for i in upload_ids])

    async def queue_scans(self, upload_ids: Sequence[int]) -> None:
        if self.queue is not None:
            await self.queue.send([scan_message(i) for i in upload_ids])

    async def open(self) -> None:
        """Connect the database, change notifications, storage and queue; on a failure, what was
        opened is closed again."""
        self._orm = await db.connect(self.settings.database_url)
        try:
            await self.events.open()
            await self.storage.start()
            if self.queue is not None:
                await self.queue.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.close()
        await self.storage.close()
        await self.events.close()
        if self._orm is not None:
            await db.disconnect(self._orm)
            self._orm = None

    async def __aenter__(self) -> Services:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
