"""Discarding files a record let go of (replaced, cleared, or the record deleted): after the commit,
every object of the upload goes: the permanent one, its versions, and whatever is left in quarantine.
If storage is down the upload stays `discarded` and the sweep finishes it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.errors import StorageUnavailable
from app.keys import quarantine_prefix
from app.models import Upload, UploadVersion
from app.storage.base import Storage
from app.uploads.status import Promotion, UploadStatus

log = logging.getLogger(__name__)


async def object_keys(storage: Storage, upload: Upload, versions: Sequence[str] = ()) -> list[str]:
    """Every object of a discarded upload: its permanent key, its versions and, unless the sweep
    already emptied it, its quarantine prefix (a listing: clients may have written there)."""
    keys = [upload.key] if upload.key else []
    keys += versions
    if upload.promotion != Promotion.SETTLED:
        keys += await storage.list_keys(quarantine_prefix(upload.table, upload.property_name, upload.token))
    return keys


class Discarding:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def discard(self, upload_ids: Sequence[int]) -> None:
        if not upload_ids:
            return
        uploads = await Upload.filter(id__in=list(upload_ids), status=UploadStatus.DISCARDED)
        versions: dict[int, list[str]] = {}
        for upload_id, key in await UploadVersion.filter(upload_id__in=list(upload_ids)).values_list(
            "upload_id", "key"
        ):
            versions.setdefault(int(str(upload_id)), []).append(str(key))
        try:
            keys = [k for u in uploads for k in await object_keys(self.storage, u, versions.get(u.id, []))]
            await self.storage.delete(keys)
        except StorageUnavailable:
            log.warning("could not delete the objects of %d discarded upload(s) now; the sweep will", len(uploads))
            return
        await Upload.filter(id__in=[u.id for u in uploads], status=UploadStatus.DISCARDED).update(
            status=UploadStatus.DELETED
        )
