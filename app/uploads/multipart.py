"""Use cases of multipart uploads (files of 5 MiB to 5 TiB): create, sign parts, list, complete, abort.

The browser sends parts straight to storage with presigned part URLs; the server fixes the key and
the object's headers at create, and re-checks limits and ownership at complete. The completed object
is then saved with record_create through the same verified path as any other upload, which checks
it once more from what storage reports and promotes it. Parts and the assembled object live under
the upload's quarantine key, like every upload a client writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.errors import (
    AppError,
    BadUserInput,
    Forbidden,
    ForeignUpload,
    StorageUnavailable,
    UploadAlreadyAttached,
    UploadExpired,
    UploadTooLarge,
    UploadTooSmall,
)
from app.keys import parse_key, quarantine_key, quarantine_prefix
from app.models import Upload
from app.policy import QUARANTINE_DISPOSITION, ClientOptions
from app.storage.base import MultipartRejected, ObjectHeaders, Storage, StoredPart
from app.tables import MULTIPART_MAX, UPLOAD_TYPES
from app.uploads.issuing import Issuing
from app.uploads.status import UploadStatus
from app.uploads.values import Caller, ExactUpload

MIB = 1024**2
# S3's minimum for every part but the last; the part size on every backend (Azure has no minimum, but
# fewer, larger blocks mean fewer requests).
MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10_000  # S3's; a backend's own comes from its capabilities (Azure: 50,000 blocks)
# Signing is CPU work on the event loop (~0.33 ms per part URL with botocore): 100 per request
# keeps one call under ~35 ms. Uppy signs one part per call anyway.
MAX_PARTS_PER_REQUEST = 100
# A day: big files over slow links take hours, and a client may resume on another device. Part URLs
# themselves stay short-lived (PRESIGN_EXPIRES_IN) and can be signed again until then.
MULTIPART_EXPIRES_IN = 24 * 3600


def part_plan(size: int, max_parts: int = MAX_PARTS) -> tuple[int, int]:
    """(part_size, part_count) for a file of `size` bytes: the smallest whole-MiB part size of at
    least 5 MiB that needs no more than `max_parts` parts. Deterministic, so any device agrees."""
    part_size = max(MIN_PART_SIZE, math.ceil(size / max_parts / MIB) * MIB)
    return part_size, max(1, math.ceil(size / part_size))


@dataclass(frozen=True)
class MultipartStarted:
    upload_id: str
    key: str
    part_size: int
    part_count: int
    expires_at: datetime


@dataclass(frozen=True)
class SignedPartUrl:
    part_number: int
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class CompletedObject:
    key: str
    url: str
    size: int


class Multipart:
    def __init__(self, issuing: Issuing, storage: Storage) -> None:
        self.issuing = issuing
        self.storage = storage
        self.clock = issuing.clock
        self.max_parts = storage.capabilities.max_parts

    def plan(self, size: int) -> tuple[int, int]:
        return part_plan(size, self.max_parts)

    async def create(self, caller: Caller, table: str, prop: str, exact: ExactUpload) -> MultipartStarted:
        if exact.size < MIN_PART_SIZE:
            raise BadUserInput(
                f"multipart uploads are for files of 5 MiB ({MIN_PART_SIZE} bytes) or more; "
                "use property_upload_presigned_url for smaller files"
            )
        if exact.size > MULTIPART_MAX:
            raise UploadTooLarge(f"the file is {exact.size} bytes; storage accepts at most {MULTIPART_MAX} bytes")
        issued = self.issuing.prepare_exact(
            table, prop, UPLOAD_TYPES, ClientOptions(), exact, max_allowed=MULTIPART_MAX
        )
        await self.issuing.take_quota(caller)
        part_size, part_count = self.plan(exact.size)
        expires_at = self.issuing.expiry(MULTIPART_EXPIRES_IN)
        # The row comes first: if storage fails after creating the upload, the sweep still knows
        # the prefix and aborts or deletes whatever is there.
        row_id = await self.issuing.record(
            caller,
            table,
            prop,
            issued.token,
            "multipart",
            issued.key,
            issued.limits,
            expires_at,
            issued.file_name,
            declared_size=exact.size,
        )
        # A quarantined object, private whatever the property: promotion gives it its real headers.
        assert issued.limits.declared_content_type is not None, "prepare_exact narrows to the exact type"
        headers = ObjectHeaders(issued.limits.declared_content_type, QUARANTINE_DISPOSITION)
        upload_id = await self.storage.create_multipart_upload(issued.quarantine_key, headers)
        await Upload.filter(id=row_id).update(multipart_upload_id=upload_id)
        return MultipartStarted(upload_id, issued.quarantine_key, part_size, part_count, expires_at)

    async def sign_parts(
        self, caller: Caller, upload_id: str, key: str, part_numbers: Sequence[int]
    ) -> list[SignedPartUrl]:
        """Part URLs, valid for PRESIGN_EXPIRES_IN (never past the upload's expiry); sign again
        whenever one has expired."""
        upload = await self._open(caller, upload_id, key)
        _, part_count = self.plan(upload.declared_size or 0)
        if not part_numbers:
            raise BadUserInput("part_numbers is empty: name the parts to sign (1 to part_count)")
        if len(part_numbers) > MAX_PARTS_PER_REQUEST:
            raise BadUserInput(f"sign at most {MAX_PARTS_PER_REQUEST} parts per request")
        for n in part_numbers:
            self._check_part_number(n, part_count)
        now = self.clock().replace(microsecond=0)
        expires_in = max(1, min(self.issuing.expires_in, int((upload.expires_at - now).total_seconds())))
        expires_at = now + timedelta(seconds=expires_in)
        signed: list[SignedPartUrl] = []
        for n in dict.fromkeys(part_numbers):
            url = await self.storage.presign_upload_part(key, upload_id, n, expires_in)
            signed.append(SignedPartUrl(n, url, expires_at))
        return signed

    async def list_parts(self, caller: Caller, upload_id: str, key: str) -> list[StoredPart]:
        """The parts storage holds so far, so a client can resume after a reload or elsewhere."""
        await self._open(caller, upload_id, key)
        parts = await self.storage.list_parts(key, upload_id)
        if parts is None:
            raise UploadExpired("this multipart upload is no longer open in storage (completed or aborted)")
        return parts

    async def complete(
        self, caller: Caller, upload_id: str, key: str, parts: Sequence[tuple[int, str]]
    ) -> CompletedObject:
        upload = await self._open(caller, upload_id, key)
        declared = upload.declared_size or 0
        _, part_count = self.plan(declared)
        wanted = self._checked_parts(parts, part_count)
        stored = await self.storage.list_parts(key, upload_id)
        if stored is None:
            # Completed by an earlier call whose answer was lost: answer the same again.
            head = await self.storage.head(key)
            if head is not None:
                return CompletedObject(key, self.storage.public_url(key), head.size)
            raise UploadExpired("this multipart upload is no longer open in storage (aborted or expired)")
        by_number = {p.part_number: p for p in stored}
        total = 0
        for i, (number, etag) in enumerate(wanted):
            part = by_number.get(number)
            if part is None:
                raise BadUserInput(
                    f"part {number} was not uploaded; upload it (multipart_upload_list_parts shows what is)"
                )
            if not etag:
                # A client that cannot read the ETag (Azure's Put Block answers none): the stored part.
                wanted[i] = (number, part.etag)
            elif part.etag != etag:
                raise BadUserInput(
                    f"part {number}'s ETag {etag[:80]!r} is not the stored one; send the ETag storage returned for it"
                )
            total += part.size
        # Limits again, from what storage holds: the declared size was only a promise.
        if total > upload.max_size:
            raise UploadTooLarge(f"the parts add up to {total} bytes; the limit is {upload.max_size} bytes")
        if total != declared:
            error = UploadTooLarge if total > declared else UploadTooSmall
            raise error(f"the parts add up to {total} bytes; the upload declared {declared} bytes")
        try:
            await self.storage.complete_multipart_upload(key, upload_id, wanted)
        except MultipartRejected as exc:
            raise _rejection(exc) from exc
        head = await self.storage.head(key)
        if head is None:
            raise StorageUnavailable("storage completed the upload but does not show the object yet; try again")
        return CompletedObject(key, self.storage.public_url(key), head.size)

    async def abort(self, caller: Caller, upload_id: str, key: str) -> bool:
        """Abort in storage and delete anything already under the upload's prefix."""
        upload = await self._open(caller, upload_id, key, allow_expired=True)
        await self.storage.abort_multipart_upload(key, upload_id)
        await self.storage.delete(
            await self.storage.list_keys(quarantine_prefix(upload.table, upload.property_name, upload.token))
        )
        await Upload.filter(id=upload.id, status=UploadStatus.ISSUED).update(status=UploadStatus.EXPIRED)
        return True

    # -- checks --------------------------------------------------------------------------------
    async def _open(self, caller: Caller, upload_id: str, key: str, *, allow_expired: bool = False) -> Upload:
        """The caller's own multipart upload, still open."""
        if not upload_id or len(upload_id) > 1024:
            raise BadUserInput("upload_id must be the id multipart_upload_create returned")
        parsed = parse_key(key)
        upload = await Upload.get_or_none(token=parsed.token)
        if (
            upload is None
            or upload.method != "multipart"
            or not parsed.quarantined
            or upload.key is None
            or quarantine_key(upload.key) != key
            or upload.multipart_upload_id != upload_id
        ):
            raise ForeignUpload("no multipart upload with this upload_id and key was issued by this server")
        if upload.owner is not None and upload.owner != caller.subject:
            raise Forbidden("this multipart upload belongs to another user")
        if upload.status == UploadStatus.ATTACHED:
            raise UploadAlreadyAttached("this upload is already saved in a record")
        if upload.status != UploadStatus.ISSUED:
            raise UploadExpired("this multipart upload was aborted or has expired; start a new one")
        if not allow_expired and self.clock() > upload.expires_at:
            raise UploadExpired(f"this multipart upload expired at {upload.expires_at.isoformat()}; start a new one")
        return upload

    @staticmethod
    def _check_part_number(number: int, part_count: int) -> None:
        if not 1 <= number <= part_count:
            raise BadUserInput(f"part number {number} is out of range: this upload has parts 1 to {part_count}")

    def _checked_parts(self, parts: Sequence[tuple[int, str]], part_count: int) -> list[tuple[int, str]]:
        if not parts:
            raise BadUserInput(
                "parts is empty: list every part with the ETag storage returned for it (or an empty etag for "
                "the part storage holds)"
            )
        seen: set[int] = set()
        out: list[tuple[int, str]] = []
        for number, etag in parts:
            self._check_part_number(number, part_count)
            if number in seen:
                raise BadUserInput(f"part {number} is listed twice")
            seen.add(number)
            # An empty ETag stands for the part storage holds (see `complete`).
            cleaned = etag.strip().strip('"')
            if len(cleaned) > 256:
                raise BadUserInput(f"part {number} has no valid ETag")
            out.append((number, cleaned))
        return sorted(out)


def _rejection(exc: MultipartRejected) -> AppError:
    if exc.code == "EntityTooSmall":
        return UploadTooSmall(
            f"every part but the last must be at least {MIN_PART_SIZE} bytes (5 MiB); upload the parts "
            "with part_size bytes each"
        )
    if exc.code == "NoSuchUpload":
        return UploadExpired("this multipart upload is no longer open in storage (aborted or expired)")
    if exc.code in ("InvalidPart", "InvalidPartOrder"):
        return BadUserInput(f"storage refused the part list: {exc.message}")
    return BadUserInput(f"storage refused to complete the upload ({exc.code}): {exc.message}")
