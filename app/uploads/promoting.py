"""Promoting a verified object from quarantine to its permanent key, as Shrine promotes cache to store.

The copy is server-side and conditional on the ETag the save verified, so the bytes served are the
bytes that were checked: if the client wrote to its quarantine key again in between, storage refuses
the copy. The permanent object gets its Content-Type, Content-Disposition, Cache-Control and ACL from
the server, never from what the client sent. The quarantined object is deleted afterwards (what
cannot be deleted now, or is written there later under a still-valid presign, goes with the sweep).

Two callers: a save promotes its files before its record commits (`promote_verified`, with the upload
held for that save by its ETag, see `claim`); a job promotes a saved upload that was kept in quarantine
(`promote`, for properties whose files are checked further before they are served).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import StrEnum

from tortoise.expressions import Q

from app.errors import ContentMismatch, StorageUnavailable, UploadAlreadyAttached
from app.keys import quarantine_key
from app.models import Upload, UploadVersion
from app.policy import disposition_header, served_disposition
from app.storage.base import ObjectHeaders, PreconditionFailed, Storage
from app.uploads.status import Promotion, ScanState, UploadStatus
from app.uploads.values import Verified

log = logging.getLogger(__name__)


class PromotionResult(StrEnum):
    PROMOTED = "promoted"  # the permanent object now holds the verified bytes and is served
    CHANGED = "changed"  # the quarantined object is not the verified one any more: the upload was discarded
    SKIPPED = "skipped"  # nothing to do: already promoted, released or gone


def object_headers(upload: Upload, content_type: str, file_name: str | None) -> ObjectHeaders:
    """What the permanent object (and its versions' ACL) is stored with, decided by the server."""
    disposition = served_disposition(upload.content_disposition, content_type)
    return ObjectHeaders(
        content_type=content_type,
        content_disposition=disposition_header(disposition, file_name),
        cache_control=upload.cache_control,
        public=upload.acl == "public",
    )


class Promoting:
    def __init__(self, storage: Storage, on_promoted: Callable[[Sequence[int]], Awaitable[None]] | None = None) -> None:
        self.storage = storage
        self.on_promoted = on_promoted

    async def claim(self, item: Verified) -> None:
        """Hold an issued upload for the save that verified `item`: the upload's ETag becomes the
        verified one, and only a save that verified that same ETag may attach it (a concurrent save
        with the same bytes is harmless: its copy is identical). A save that fails lets go
        (`release`); one that died is replaced by a retry with the same bytes."""
        count = (
            await Upload.filter(id=item.upload.id, status=UploadStatus.ISSUED)
            .filter(Q(etag=None) | Q(etag=item.etag))
            .update(etag=item.etag)
        )
        if count != 1:
            raise UploadAlreadyAttached(
                "this upload is being saved by another request that checked other bytes; "
                "presign and upload the file again to save it"
            )

    async def release(self, items: Iterable[Verified]) -> None:
        """Let go of uploads a failed save claimed (those another save attached meanwhile stay)."""
        for item in items:
            if item.head is not None:
                await Upload.filter(id=item.upload.id, status=UploadStatus.ISSUED, etag=item.etag).update(etag=None)

    async def promote_verified(self, item: Verified) -> None:
        """At save, before the record commits: claim the upload and copy the verified object to its
        permanent key. A refused copy means the file changed after it was checked: CONTENT_MISMATCH,
        and the client saves again (the claim is released by the save)."""
        assert item.head is not None and item.content_type is not None
        await self.claim(item)
        headers = object_headers(item.upload, item.content_type, item.file_name)
        try:
            await self.storage.copy(
                quarantine_key(item.key), item.key, if_match=item.etag, headers=headers, size=item.head.size
            )
        except PreconditionFailed:
            # Gone or changed: a concurrent save of the same bytes may have won, promoted it and
            # deleted the quarantined object; otherwise the client wrote to it again.
            if await Upload.filter(id=item.upload.id).exclude(status=UploadStatus.ISSUED).exists():
                raise UploadAlreadyAttached("this file was just saved by another request") from None
            raise ContentMismatch(
                "the file changed in storage after it was checked; save it again (it is checked again)"
            ) from None

    async def promote(self, upload_id: int) -> PromotionResult:
        """Promote a saved upload that was kept in quarantine (`promotion` pending); for a job, which
        retries on StorageUnavailable. A scanned upload is promoted only once its scan found it clean.
        Queues its versions once promoted."""
        upload = await Upload.get_or_none(id=upload_id)
        if (
            upload is None
            or upload.status != UploadStatus.ATTACHED
            or upload.promotion != Promotion.PENDING
            or upload.scan_status not in (None, ScanState.CLEAN)
            or not upload.key
            or not upload.etag
        ):
            return PromotionResult.SKIPPED
        headers = object_headers(upload, upload.content_type or "application/octet-stream", upload.file_name)
        try:
            await self.storage.copy(
                quarantine_key(upload.key), upload.key, if_match=upload.etag, headers=headers, size=upload.size
            )
        except PreconditionFailed:
            # The verified bytes are gone from quarantine: nothing of this upload may be served.
            await Upload.filter(id=upload.id, status=UploadStatus.ATTACHED, promotion=Promotion.PENDING).update(
                status=UploadStatus.DISCARDED, record_id=None
            )
            log.warning("upload %s changed in quarantine after its save; discarded", upload.id)
            return PromotionResult.CHANGED
        promoted = await Upload.filter(id=upload.id, status=UploadStatus.ATTACHED, promotion=Promotion.PENDING).update(
            promotion=Promotion.PROMOTED
        )
        if promoted != 1:
            # Released while we copied; its clean-up may have run before our copy landed.
            await self.delete_quietly([upload.key])
            return PromotionResult.SKIPPED
        await self.delete_quietly([quarantine_key(upload.key)])
        if await UploadVersion.filter(upload_id=upload.id).exists():
            await self.promoted([upload.id])
        return PromotionResult.PROMOTED

    async def promoted(self, upload_ids: Sequence[int]) -> None:
        """Hand freshly promoted uploads that have versions to build to the version queue; a failure
        here is recovered by the reconciler, so the save still succeeds."""
        if not upload_ids or self.on_promoted is None:
            return
        try:
            await self.on_promoted(upload_ids)
        except Exception:
            log.exception("could not queue versions for uploads %s; the reconciler will retry", list(upload_ids))

    async def delete_quietly(self, keys: list[str]) -> None:
        try:
            await self.storage.delete(keys)
        except StorageUnavailable:
            log.warning("could not delete %s now; the sweep removes it", keys)
