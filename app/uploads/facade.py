"""`Uploads`: the upload use cases of one process, each role in its own module, behind one object
that the transports (GraphQL, REST), the records use cases, the worker and the sweep are given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

from app.models import Upload
from app.policy import ClientOptions
from app.settings import Settings
from app.storage.base import Storage
from app.tables import PropertyDef, TableDef
from app.uploads.catalog import Catalog
from app.uploads.creating import Creating, PdfRenderer, RemoteFiles
from app.uploads.discarding import Discarding
from app.uploads.issuing import Issuing
from app.uploads.multipart import Multipart
from app.uploads.promoting import Promoting, PromotionResult
from app.uploads.resolving import Resolving
from app.uploads.saving import Saving, versions_for
from app.uploads.values import Caller, ExactUpload, PresignedUpload, UploadView, Verified, utcnow
from app.uploads.verifying import Verifying
from app.value_upload import ValueUpload
from app.version_spec import VersionSpec


class Uploads:
    def __init__(
        self,
        settings: Settings,
        tables: Mapping[str, TableDef],
        storage: Storage,
        *,
        on_promoted: Callable[[Sequence[int]], Awaitable[None]] | None = None,
        on_quarantined: Callable[[Sequence[int]], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
        remote: RemoteFiles,
        pdf: PdfRenderer,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.storage = storage
        self.clock = clock
        # A save may come this long after the presign expired (a slow upload finishing at the end).
        self.confirm_grace = timedelta(seconds=settings.presign_expires_in)
        self.catalog = Catalog(tables)
        self.issuing = Issuing(settings, self.catalog, storage, clock)
        self.resolving = Resolving(storage, settings.cdn_base_url)
        self.verifying = Verifying(storage, self.resolving, clock, self.confirm_grace)
        self.promoting = Promoting(storage, on_promoted)
        self.saver = Saving(self.catalog, self.verifying, self.promoting, clock, on_quarantined)
        self.discarding = Discarding(storage)
        self.multipart = Multipart(self.issuing, storage)
        self.creator = Creating(self.issuing, storage, remote, pdf)

    # -- lookups -----------------------------------------------------------------------------------
    def table(self, name: str) -> TableDef:
        return self.catalog.table(name)

    def upload_property(self, table: str, prop: str, accepts: Iterable[str]) -> PropertyDef:
        return self.catalog.upload_property(table, prop, accepts)

    # -- issuing -----------------------------------------------------------------------------------
    async def presign_post(
        self,
        caller: Caller,
        table: str,
        prop: str,
        accepts: Iterable[str],
        client: ClientOptions,
        file_name: str | None = None,
        *,
        include_content_type: bool = True,
    ) -> PresignedUpload:
        return await self.issuing.presign_post(
            caller, table, prop, accepts, client, file_name, include_content_type=include_content_type
        )

    async def presign_put(
        self, caller: Caller, table: str, prop: str, accepts: Iterable[str], client: ClientOptions, put: ExactUpload
    ) -> PresignedUpload:
        return await self.issuing.presign_put(caller, table, prop, accepts, client, put)

    # -- creating (value_upload) -------------------------------------------------------------------
    def creating(
        self, caller: Caller, tdef: TableDef, specs: Mapping[str, ValueUpload]
    ) -> AbstractAsyncContextManager[dict[str, str]]:
        """Create files server-side for the save around which it is entered (app/uploads/creating.py)."""
        return self.creator.creating(caller, tdef, specs)

    # -- verifying, promoting, saving --------------------------------------------------------------
    async def verify(
        self, caller: Caller, table: str, pdef: PropertyDef, value: str, record_id: int | None
    ) -> Verified:
        return await self.verifying.verify(caller, table, pdef, value, record_id)

    def saving(
        self, caller: Caller, tdef: TableDef, files: Mapping[str, str], record_id: int | None
    ) -> AbstractAsyncContextManager[dict[str, Verified]]:
        """Verify and promote files, for the body to attach them in its transaction (app/uploads/saving.py)."""
        return self.saver.saving(caller, tdef, files, record_id)

    async def attach(self, item: Verified, record_id: int) -> UploadView | None:
        return await self.saver.attach(item, record_id)

    async def promote(self, upload_id: int) -> PromotionResult:
        """Promote a saved upload kept in quarantine (a job's step; see app/uploads/promoting.py)."""
        return await self.promoting.promote(upload_id)

    @staticmethod
    def versions_for(pdef: PropertyDef, content_type: str | None) -> tuple[VersionSpec, ...]:
        return versions_for(pdef, content_type)

    # -- discarding --------------------------------------------------------------------------------
    async def discard(self, upload_ids: Sequence[int]) -> None:
        await self.discarding.discard(upload_ids)

    # -- resolving URLs ----------------------------------------------------------------------------
    def check_expires_in(self, expires_in: int | None) -> int:
        return self.resolving.check_expires_in(expires_in)

    def resolve_url(
        self, upload: Upload, key: str, *, content_type: str | None, expires_in: int, readable: bool
    ) -> str | Awaitable[str] | None:
        return self.resolving.resolve_url(
            upload, key, content_type=content_type, expires_in=expires_in, readable=readable
        )

    async def url_for(
        self, upload: Upload, key: str, *, content_type: str | None, expires_in: int, readable: bool
    ) -> str | None:
        return await self.resolving.url_for(
            upload, key, content_type=content_type, expires_in=expires_in, readable=readable
        )

    @staticmethod
    def extension(upload: Upload) -> str | None:
        return Resolving.extension(upload)
