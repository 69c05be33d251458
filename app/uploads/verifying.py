"""Verifying what a client stored before it may be saved (SPEC §3): the key is ours and this caller's,
the upload is still open, and the object storage holds (never what the client claims) fits the limits,
with bytes of the type it is saved as. A file that fails a content check is deleted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from app.errors import (
    AppError,
    ContentMismatch,
    ContentTypeNotAllowed,
    Forbidden,
    ForeignUpload,
    StorageUnavailable,
    UploadAlreadyAttached,
    UploadExpired,
    UploadNotFound,
    UploadTooLarge,
    UploadTooSmall,
)
from app.keys import ParsedKey, parse_key, sanitize_file_name
from app.models import Upload
from app.policy import UploadLimits, served_disposition
from app.sniff import GENERIC_TYPES, SNIFF_BYTES, content_matches, detect
from app.storage.base import ObjectHead, Storage
from app.tables import PropertyDef
from app.uploads.resolving import Resolving
from app.uploads.status import UploadStatus
from app.uploads.values import CLOCK_SKEW, Caller, Verified

log = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
# Chunks of a stored file hashed for a declared SHA-256 that storage keeps no record of.
HASH_CHUNK = 4 * 1024 * 1024


def media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def limits_of(upload: Upload) -> UploadLimits:
    return UploadLimits(
        upload.min_size,
        upload.max_size,
        tuple(upload.content_types),
        upload.declared_content_type,
        "",
        upload.acl,
        upload.content_disposition,
        upload.cache_control,
    )


def verified_type(upload: Upload, pdef: PropertyDef, head: ObjectHead, first: bytes, file_name: str | None) -> str:
    """The type the file is saved (and promoted) as, or the error that refuses it.

    A type storage recorded is checked against the allowlist and the bytes. A file stored without
    one (a form posted with no Content-Type field, as platformOS clients do) takes the type its bytes
    show; a file whose bytes show nothing known stays application/octet-stream."""
    limits = limits_of(upload)
    allowed = upload.declared_content_type or ", ".join(upload.content_types) or "any"
    stored = media_type(head.content_type)
    if stored in GENERIC_TYPES:
        found = detect(first, file_name) if head.size > 0 else None
        content_type = found or OCTET_STREAM
        where = f"the file's bytes are {content_type}" if found else "the file's type is unknown"
    else:
        content_type = stored
        where = f"storage holds this file as {content_type}"
    if not limits.allows(content_type) or (pdef.type == "image" and not content_type.startswith("image/")):
        raise ContentTypeNotAllowed(f"{where}; allowed: {allowed}")
    # A type storage recorded must show in the bytes (a detected one does by definition).
    inline = served_disposition(upload.content_disposition, content_type) == "inline"
    if stored not in GENERIC_TYPES and head.size > 0 and not content_matches(content_type, first, inline=inline):
        raise ContentMismatch(f"the file's bytes are not {content_type}; upload the real file")
    return content_type


class Verifying:
    def __init__(
        self, storage: Storage, resolving: Resolving, clock: Callable[[], datetime], confirm_grace: timedelta
    ) -> None:
        self.storage = storage
        self.resolving = resolving
        self.clock = clock
        self.confirm_grace = confirm_grace

    async def verify(
        self, caller: Caller, table: str, pdef: PropertyDef, value: str, record_id: int | None
    ) -> Verified:
        """Everything SPEC §3 asks before a file may be saved into `table.pdef` of `record_id`.

        Objects that fail a content check are deleted; objects that are not provably this caller's
        pending upload are never touched."""
        parsed = parse_key(self.resolving.key_from_value(value))
        if (parsed.table, parsed.prop) != (table, pdef.name):
            raise ForeignUpload(
                f"this file was presigned for {parsed.table}.{parsed.prop}, not {table}.{pdef.name}; "
                "presign it for this property"
            )
        upload = await Upload.get_or_none(token=parsed.token)
        if upload is None or (upload.table, upload.property_name) != (table, pdef.name):
            raise ForeignUpload("no upload with this key was issued by this server")
        if upload.owner is not None and upload.owner != caller.subject:
            raise Forbidden("this upload was presigned for another user")
        if upload.status == UploadStatus.ATTACHED:
            if upload.record_id is not None and upload.record_id == record_id and upload.key == parsed.permanent:
                return Verified(upload, parsed.permanent, None, upload.file_name, upload.content_type)
            raise UploadAlreadyAttached("this file is already saved in another record; upload it again to reuse it")
        if upload.key is not None and upload.key != parsed.permanent:
            raise ForeignUpload("the key does not match the one issued with this upload")
        if upload.status != UploadStatus.ISSUED:
            raise UploadExpired("this upload is no longer available; presign and upload the file again")
        if self.clock() > upload.expires_at + self.confirm_grace:
            raise UploadExpired(f"the upload expired at {upload.expires_at.isoformat()}; presign and upload again")
        parsed, probed = await self._probe(upload, parsed)
        head, first = probed
        file_name = upload.file_name or sanitize_file_name(parsed.file_name)
        try:
            self._check_object(upload, pdef, head)
            await self._check_checksum(upload, parsed.quarantine, head)
            content_type = verified_type(upload, pdef, head, first, file_name)
        except StorageUnavailable:
            raise  # nothing is known against the file: it stays for a retry
        except AppError:
            await self.delete_quietly([parsed.quarantine])
            raise
        return Verified(upload, parsed.permanent, head, file_name, content_type)

    async def _probe(self, upload: Upload, parsed: ParsedKey) -> tuple[ParsedKey, tuple[ObjectHead, bytes]]:
        """The quarantined object's head and first bytes, in one request where storage allows. S3's
        Location spells a space as `+`: when a key with `+` finds nothing, the same with spaces may."""
        checksum = upload.checksum_sha256 is not None
        probed = await self.storage.probe(parsed.quarantine, SNIFF_BYTES, checksum=checksum)
        if probed is None and upload.key is None and "+" in parsed.file_name:
            spaced = ParsedKey(
                parsed.table, parsed.prop, parsed.token, parsed.file_name.replace("+", " "), parsed.quarantined
            )
            probed = await self.storage.probe(spaced.quarantine, SNIFF_BYTES, checksum=checksum)
            parsed = spaced if probed is not None else parsed
        if probed is None:
            raise UploadNotFound("no file was found in storage at this key; upload it before saving")
        return parsed, probed

    def _check_object(self, upload: Upload, pdef: PropertyDef, head: ObjectHead) -> None:
        """The stored object's size, age and checksum against what was issued."""
        if head.last_modified > upload.expires_at + CLOCK_SKEW:
            raise UploadExpired("the file was stored after its upload had expired; presign and upload again")
        if head.size > upload.max_size:
            raise UploadTooLarge(f"the file is {head.size} bytes; the limit is {upload.max_size} bytes")
        # PUT and multipart uploads declared their exact size and checksum: what storage holds
        # must be that very file (moto, unlike S3, does not enforce the signed headers).
        if upload.declared_size is not None and head.size != upload.declared_size:
            error = UploadTooLarge if head.size > upload.declared_size else UploadTooSmall
            raise error(f"the file is {head.size} bytes; the upload declared {upload.declared_size} bytes")
        if upload.checksum_sha256 and head.checksum_sha256 and head.checksum_sha256 != upload.checksum_sha256:
            raise ContentMismatch("the file's SHA-256 is not the declared checksum_sha256; upload the right file")
        if head.size < max(upload.min_size, 1 if pdef.type == "image" else 0):
            raise UploadTooSmall(f"the file is {head.size} bytes; the minimum is {upload.min_size} bytes")

    async def _check_checksum(self, upload: Upload, key: str, head: ObjectHead) -> None:
        """A declared SHA-256 that storage neither enforced nor recorded (Azure keeps none): the server
        hashes the stored bytes itself. They are the verified object's only if its ETag is still the
        one verified once they are read (every write gives a blob a new ETag)."""
        if not upload.checksum_sha256 or head.checksum_sha256:
            return
        digest = hashlib.sha256()
        async for chunk in self.storage.stream(key, HASH_CHUNK):
            await asyncio.to_thread(digest.update, chunk)  # hashlib lets go of the GIL for big chunks
        if base64.b64encode(digest.digest()).decode() != upload.checksum_sha256:
            raise ContentMismatch("the file's SHA-256 is not the declared checksum_sha256; upload the right file")
        now = await self.storage.head(key)
        if now is None or now.etag != head.etag:
            raise ContentMismatch("the file changed in storage while it was checked; upload it again")

    async def delete_quietly(self, keys: list[str]) -> None:
        try:
            await self.storage.delete(keys)
        except StorageUnavailable:
            log.warning("could not delete rejected object(s) %s; the sweep will remove them", keys)
