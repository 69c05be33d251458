"""Saving files into a record: verify each, promote it, attach it inside the record's transaction,
and after the commit clear the quarantine and queue the versions.

    async with uploads.saving(caller, tdef, files, record_id) as verified:
        async with in_transaction():
            ...                                   # the record's own writes
            view = await uploads.attach(verified[name], record_id)

A file of a property with `scan: true` is only claimed, not promoted: it is attached with its promotion
and its scan `pending`, stays in quarantine (never served), and after the commit its scan is queued
(app/scanning.py promotes it once clamd finds it clean).

A save that fails anywhere (a check, a copy, the transaction) lets go of the uploads it held and saves
nothing; a promoted copy it leaves behind is the same verified object a retry would write, and the
sweep removes it with the upload if nobody saves it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from app.errors import UploadAlreadyAttached
from app.keys import quarantine_key
from app.models import Upload, UploadVersion
from app.tables import PropertyDef, TableDef
from app.uploads.catalog import Catalog
from app.uploads.promoting import Promoting
from app.uploads.status import Promotion, ScanState, UploadStatus
from app.uploads.values import Caller, UploadView, Verified, version_key
from app.uploads.verifying import Verifying
from app.version_spec import VersionSpec

log = logging.getLogger(__name__)


def versions_for(pdef: PropertyDef, content_type: str | None) -> tuple[VersionSpec, ...]:
    """Versions apply to raster images only (never SVG: it is not rasterised)."""
    if not pdef.is_upload or not content_type or not content_type.startswith("image/"):
        return ()
    if content_type == "image/svg+xml":
        return ()
    return pdef.upload_options().versions


class Saving:
    def __init__(
        self,
        catalog: Catalog,
        verifying: Verifying,
        promoting: Promoting,
        clock: Callable[[], datetime],
        on_quarantined: Callable[[Sequence[int]], Awaitable[None]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.verifying = verifying
        self.promoting = promoting
        self.clock = clock
        # Hands uploads saved into quarantine to the scan queue (app/services.py).
        self.on_quarantined = on_quarantined

    @asynccontextmanager
    async def saving(
        self, caller: Caller, tdef: TableDef, files: Mapping[str, str], record_id: int | None
    ) -> AsyncIterator[dict[str, Verified]]:
        """Verify and promote the files to save (property name -> URL or key) into `record_id` (None:
        a new record); the body attaches them inside its transaction. See the module docstring."""
        verified: dict[str, Verified] = {}
        try:
            for name, value in files.items():
                verified[name] = await self.verifying.verify(caller, tdef.name, tdef.properties[name], value, record_id)
            tokens = [v.upload.token for v in verified.values()]
            if len(set(tokens)) != len(tokens):
                raise UploadAlreadyAttached("the same file cannot be saved into two properties")
            for item in verified.values():
                if item.head is None:
                    continue
                if self._scanned(item):
                    await self.promoting.claim(item)  # promoted by its scan, once found clean
                else:
                    await self.promoting.promote_verified(item)
            yield verified
        except BaseException:
            await self.promoting.release(verified.values())
            raise
        fresh = [item for item in verified.values() if item.head is not None]
        promoted = [item for item in fresh if not self._scanned(item)]
        await self.promoting.delete_quietly([quarantine_key(item.key) for item in promoted])
        await self.promoting.promoted([item.upload.id for item in promoted if self._versions(item)])
        await self._quarantined([item.upload.id for item in fresh if self._scanned(item)])

    def _scanned(self, item: Verified) -> bool:
        pdef = self.catalog.property_of(item.upload.table, item.upload.property_name)
        return pdef is not None and pdef.scanned

    async def _quarantined(self, upload_ids: list[int]) -> None:
        """Queue the scans of uploads saved into quarantine; a failure here is recovered by the
        reconciler, so the save still succeeds."""
        if not upload_ids or self.on_quarantined is None:
            return
        try:
            await self.on_quarantined(upload_ids)
        except Exception:
            log.exception("could not queue scans of uploads %s; the reconciler will retry", upload_ids)

    def _versions(self, item: Verified) -> tuple[VersionSpec, ...]:
        pdef = self.catalog.property_of(item.upload.table, item.upload.property_name)
        return versions_for(pdef, item.content_type) if pdef is not None else ()

    async def attach(self, item: Verified, record_id: int) -> UploadView | None:
        """Inside the record's transaction: the upload becomes the record's file, with the size and type
        that were verified, and its versions are declared (pending). A file of a property with `scan:
        true` stays in quarantine: promotion and scan `pending`. The condition on the ETag the save
        holds makes a concurrent save of the same upload lose cleanly. None when the file was already
        this record's (saving the same value again)."""
        if item.head is None:
            return None
        scanned = self._scanned(item)
        changes = {
            "status": UploadStatus.ATTACHED,
            "record_id": record_id,
            "key": item.key,
            "size": item.head.size,
            "content_type": item.content_type,
            "file_name": item.file_name,
            "attached_at": self.clock(),
            "etag": item.etag,
            "promotion": Promotion.PENDING if scanned else Promotion.PROMOTED,
            "scan_status": ScanState.PENDING if scanned else None,
            "scan_result": None,
        }
        count = await Upload.filter(id=item.upload.id, status=UploadStatus.ISSUED, etag=item.etag).update(**changes)
        if count != 1:
            raise UploadAlreadyAttached("this file was just saved by another request")
        for field_name, value in changes.items():
            setattr(item.upload, field_name, value)
        versions = [
            UploadVersion(upload_id=item.upload.id, name=s.name, key=version_key(item.key, s))
            for s in self._versions(item)
        ]
        if versions:
            await UploadVersion.bulk_create(versions)
        return UploadView(item.upload, versions)
