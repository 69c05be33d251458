"""The container of one process's long-lived parts: database, storage, queue and the use cases built
on them. The API (app/main.py), the standalone worker (app/worker.py) and the sweep (app/sweep.py)
each build one, `open()` it before work and `close()` it after; nothing else constructs adapters."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType

from tortoise.context import TortoiseContext

from app import db
from app.auth import Authenticator
from app.events import Events
from app.keys import StorageUrls
from app.live import LiveUploads
from app.queue import Queue
from app.records import Records
from app.settings import Settings
from app.storage import Storage
from app.tables import TableDef, load_tables
from app.uploads import Uploads
from app.versions import Versions

log = logging.getLogger(__name__)


class Services:
    """Built once per process from the settings and the tables; cheap to build, `open()` connects."""

    def __init__(self, settings: Settings, tables: dict[str, TableDef] | None = None) -> None:
        self.settings = settings
        self.tables = tables if tables is not None else load_tables(settings.schema_dir)
        self.urls = StorageUrls(
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            public_url=settings.s3_public_url,
            cdn_base_url=settings.cdn_base_url,
        )
        self.storage = Storage(settings, self.urls)
        self.queue = Queue(settings, settings.queue_url) if settings.queue_url else None
        self.events = Events(settings.database_url)
        self.uploads = Uploads(settings, self.tables, self.storage, self.urls, on_attached=self.queue_versions)
        self.records = Records(self.uploads, publish=self.events.publish)
        self.versions = Versions(settings, self.tables, self.storage, publish=self.events.publish)
        # Started by the API only (app/main.py): the worker and the sweep follow nothing.
        self.live = LiveUploads(self.records, self.events, settings.live_resync_seconds)
        self.auth = Authenticator(settings)
        self._orm: TortoiseContext | None = None

    async def queue_versions(self, upload_ids: Sequence[int]) -> None:
        if self.queue is not None:
            await self.queue.send([str(i) for i in upload_ids])

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
