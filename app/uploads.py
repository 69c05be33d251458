"""Use cases of files: presign, verify what landed in storage, resolve URLs, discard.

Transport layers call these; these call the storage adapter and the models. Every failure is an
`AppError` with its code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.errors import (
    AppError,
    BadUserInput,
    ContentMismatch,
    ContentTypeNotAllowed,
    Forbidden,
    ForeignUpload,
    PropertyNotFound,
    PropertyTypeMismatch,
    TableNotFound,
    UploadAlreadyAttached,
    UploadExpired,
    UploadNotFound,
    UploadTooLarge,
    UploadTooSmall,
)
from app.keys import FILENAME_VAR, StorageUrls, extension_of, key_prefix, new_token, parse_key, sanitize_file_name
from app.limits import PresignQuota
from app.models import Upload, UploadVersion
from app.policy import (
    ClientOptions,
    UploadLimits,
    check_declared_size,
    checked_checksum_sha256,
    disposition_header,
    narrow,
    normalize_media_type,
    post_fields_and_conditions,
    put_headers,
)
from app.settings import Settings
from app.sniff import SNIFF_BYTES, content_matches
from app.storage import ObjectHead, Storage
from app.tables import SINGLE_UPLOAD_MAX, PropertyDef, TableDef, is_active_content
from app.version_spec import VersionSpec

log = logging.getLogger(__name__)

MAX_GET_EXPIRES_IN = 604800
DEFAULT_GET_EXPIRES_IN = 900
# Storage clocks and ours may differ a little; an object written this late after expiry was not
# written under a valid policy.
CLOCK_SKEW = timedelta(seconds=60)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Caller:
    """Who is asking: `subject` from a verified token, or None in anonymous mode."""

    subject: str | None = None
    # Where an anonymous caller comes from: the presign rate limit's key when there is no subject.
    address: str | None = field(default=None, compare=False)

    @property
    def rate_key(self) -> str:
        return f"sub:{self.subject}" if self.subject is not None else f"addr:{self.address}"


ANONYMOUS = Caller()


@dataclass(frozen=True)
class PresignedUpload:
    upload_url: str
    payload: dict[str, str]
    method: str
    key: str
    url: str | None
    expires_at: datetime
    max_size: int
    content_types: list[str]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExactUpload:
    """A file the client describes up front (presigned PUT, multipart): name, exact type and size."""

    file_name: str
    content_type: str
    size: int
    checksum_sha256: str | None = None


@dataclass(frozen=True)
class IssuedExact:
    """The server-side half of an exact upload: its key, limits and the headers the object gets."""

    token: str
    key: str
    file_name: str
    limits: UploadLimits
    headers: dict[str, str]


@dataclass(frozen=True)
class Verified:
    """An upload whose object storage has confirmed, ready to attach."""

    upload: Upload
    key: str
    head: ObjectHead | None  # None: already attached to this very record property (idempotent)
    file_name: str | None


@dataclass
class UploadView:
    upload: Upload
    versions: list[UploadVersion]


def version_key(original_key: str, spec: VersionSpec) -> str:
    """Deterministic: the same original and transformation always land on the same key."""
    prefix = original_key.rsplit("/", 1)[0]
    return f"{prefix}/versions/{spec.name}-{spec.digest()}.{spec.extension}"


class Uploads:
    def __init__(
        self,
        settings: Settings,
        tables: dict[str, TableDef],
        storage: Storage,
        urls: StorageUrls,
        *,
        on_attached: Callable[[Sequence[int]], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.storage = storage
        self.urls = urls
        self.on_attached = on_attached
        self.clock = clock
        self.confirm_grace = timedelta(seconds=settings.presign_expires_in)
        self.quota = PresignQuota(
            settings.presign_rate_per_minute, settings.max_pending_uploads, clock, store=settings.presign_rate_store
        )

    # -- lookups -------------------------------------------------------------------------------
    def table(self, name: str) -> TableDef:
        table = self.tables.get(name)
        if table is None:
            raise TableNotFound(f"table {name[:100]!r} does not exist; known tables: {', '.join(sorted(self.tables))}")
        return table

    def upload_property(self, table: str, prop: str, accepts: Iterable[str]) -> PropertyDef:
        pdef = self.table(table).properties.get(prop)
        if pdef is None:
            raise PropertyNotFound(f"table {table!r} has no property {prop[:100]!r}")
        allowed = tuple(accepts)
        if pdef.type not in allowed:
            raise PropertyTypeMismatch(
                f"property {table}.{prop} is of type {pdef.type}; this operation accepts {' or '.join(allowed)}"
            )
        return pdef

    # -- presign -------------------------------------------------------------------------------
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
        pdef = self.upload_property(table, prop, accepts)
        await self.quota.take(caller.rate_key)
        options = pdef.upload_options()
        if pdef.type == "image" and client.content_type and not client.content_type.lower().startswith("image/"):
            raise ContentTypeNotAllowed(
                f"{table}.{prop} is an image property; {client.content_type[:100]} is not an image"
            )
        limits = narrow(options, client)
        if file_name is not None and (not file_name.strip() or len(file_name) > 1024):
            raise BadUserInput("file_name must be a non-empty name of at most 1024 characters (or left out)")
        safe_name = sanitize_file_name(file_name) if file_name else None
        token = new_token()
        prefix = key_prefix(table, prop, token)
        key = prefix + (safe_name or FILENAME_VAR)
        expires_in = self.settings.presign_expires_in
        expires_at = self.clock().replace(microsecond=0) + timedelta(seconds=expires_in)
        fields, conditions = post_fields_and_conditions(limits, safe_name, include_content_type=include_content_type)
        upload_url, payload = await self.storage.presign_post(key, fields, conditions, expires_in)
        # Signing is local computation: nothing happened yet if the pending cap refuses the row.
        await self._record_issue(caller, table, prop, token, "post", safe_name and key, limits, expires_at, safe_name)
        return PresignedUpload(
            upload_url=upload_url,
            payload=payload,
            method="POST",
            key=key,
            url=self.urls.public_object_url(key) if safe_name else None,
            expires_at=expires_at,
            max_size=limits.max_size,
            content_types=[limits.declared_content_type]
            if limits.declared_content_type
            else list(limits.content_types),
        )

    def prepare_exact(
        self,
        table: str,
        prop: str,
        accepts: Iterable[str],
        client: ClientOptions,
        exact: ExactUpload,
        *,
        max_allowed: int = SINGLE_UPLOAD_MAX,
    ) -> IssuedExact:
        """Checks shared by presigned PUT and multipart: the property, its limits narrowed by the
        client, the declared type (exact) and size (inside the limits), and a server-made key."""
        pdef = self.upload_property(table, prop, accepts)
        if not exact.file_name.strip() or len(exact.file_name) > 1024:
            raise BadUserInput("file_name must be a non-empty name of at most 1024 characters")
        if exact.size < 0:
            raise BadUserInput(f"size must be the file's length in bytes, got {exact.size}")
        if client.content_type and normalize_media_type(client.content_type) != normalize_media_type(
            exact.content_type
        ):
            raise BadUserInput("presign_url.content_type must be the file's content_type when both are given")
        if pdef.type == "image" and not exact.content_type.lower().startswith("image/"):
            raise ContentTypeNotAllowed(
                f"{table}.{prop} is an image property; {exact.content_type[:100]} is not an image"
            )
        limits = narrow(
            pdef.upload_options(), replace(client, content_type=exact.content_type), max_allowed=max_allowed
        )
        check_declared_size(limits, exact.size)
        checksum = checked_checksum_sha256(exact.checksum_sha256)
        safe_name = sanitize_file_name(exact.file_name)
        token = new_token()
        key = key_prefix(table, prop, token) + safe_name
        return IssuedExact(token, key, safe_name, limits, put_headers(limits, safe_name, exact.size, checksum))

    async def presign_put(
        self, caller: Caller, table: str, prop: str, accepts: Iterable[str], client: ClientOptions, put: ExactUpload
    ) -> PresignedUpload:
        """A presigned PUT: exact key, type and length (and checksum) are signed, so storage
        refuses any other file; the same limits and verified save as a POST apply."""
        issued = self.prepare_exact(table, prop, accepts, client, put)
        await self.quota.take(caller.rate_key)
        expires_in = self.settings.presign_expires_in
        expires_at = self.clock().replace(microsecond=0) + timedelta(seconds=expires_in)
        upload_url = await self.storage.presign_put(issued.key, issued.headers, expires_in)
        await self._record_issue(
            caller,
            table,
            prop,
            issued.token,
            "put",
            issued.key,
            issued.limits,
            expires_at,
            issued.file_name,
            declared_size=put.size,
            checksum_sha256=issued.headers.get("x-amz-checksum-sha256"),
        )
        return PresignedUpload(
            upload_url=upload_url,
            payload={},
            method="PUT",
            key=issued.key,
            url=self.urls.public_object_url(issued.key),
            expires_at=expires_at,
            max_size=issued.limits.max_size,
            content_types=[put.content_type.split(";", 1)[0].strip().lower()],
            headers=issued.headers,
        )

    async def _record_issue(
        self,
        caller: Caller,
        table: str,
        prop: str,
        token: str,
        method: str,
        key: str | None,
        limits: UploadLimits,
        expires_at: datetime,
        file_name: str | None,
        **extra: Any,
    ) -> int:
        """Write an issued upload (POST, PUT or multipart), under the caller's pending cap; returns its id."""
        return await self.quota.issue(
            {
                "token": token,
                "table": table,
                "property_name": prop,
                "owner": caller.subject,
                "method": method,
                "key": key or None,
                "min_size": limits.min_size,
                "max_size": limits.max_size,
                "content_types": list(limits.content_types),
                "declared_content_type": limits.declared_content_type,
                "acl": limits.acl,
                "content_disposition": limits.disposition,
                "cache_control": limits.cache_control,
                "file_name": file_name,
                "expires_at": expires_at,
                **extra,
            }
        )

    # -- verify --------------------------------------------------------------------------------
    async def verify(
        self, caller: Caller, table: str, pdef: PropertyDef, value: str, record_id: int | None
    ) -> Verified:
        """Everything SPEC §3 asks before a file may be saved into `table.pdef` of `record_id`.

        Objects that fail a content check are deleted; objects that are not provably this
        caller's pending upload are never touched.
        """
        # Two readings only when a URL holds a `+` (S3's Location writes a space so); they differ in
        # the file name alone, so table, property and token are the same.
        candidates = self.urls.key_candidates(value)
        key = candidates[0]
        parsed = parse_key(key)
        if (parsed.table, parsed.prop) != (table, pdef.name):
            raise ForeignUpload(
                f"this file was presigned for {parsed.table}.{parsed.prop}, not {table}.{pdef.name}; "
                "presign it for this property"
            )
        upload = await Upload.get_or_none(token=parsed.token)
        if upload is None or (upload.table, upload.property_name) != (table, pdef.name):
            raise ForeignUpload("no upload with this key was issued by this server")
        if upload.key is not None and upload.key in candidates:
            key = upload.key
        if upload.key is not None and upload.key != key and upload.status == "issued":
            raise ForeignUpload("the key does not match the one issued with this upload")
        if upload.owner is not None and upload.owner != caller.subject:
            raise Forbidden("this upload was presigned for another user")
        if upload.status == "attached":
            if upload.record_id is not None and upload.record_id == record_id and upload.key == key:
                return Verified(upload, key, None, upload.file_name)
            raise UploadAlreadyAttached("this file is already saved in another record; upload it again to reuse it")
        if upload.status != "issued":
            raise UploadExpired("this upload is no longer available; presign and upload the file again")
        now = self.clock()
        if now > upload.expires_at + self.confirm_grace:
            raise UploadExpired(f"the upload expired at {upload.expires_at.isoformat()}; presign and upload again")
        # One request where it can be: the object's head and the first bytes for sniffing together.
        probed = await self.storage.probe(key, SNIFF_BYTES, checksum=upload.checksum_sha256 is not None)
        for other in candidates[1:] if probed is None and upload.key is None else ():
            probed = await self.storage.probe(other, SNIFF_BYTES, checksum=upload.checksum_sha256 is not None)
            if probed is not None:
                key, parsed = other, parse_key(other)
                break
        if probed is None:
            raise UploadNotFound("no file was found in storage at this key; upload it before saving")
        head, first = probed
        try:
            self._check_object(upload, pdef, head, first)
        except AppError:
            await self._delete_quietly([key])
            raise
        file_name = upload.file_name or sanitize_file_name(parsed.file_name)
        return Verified(upload, key, head, file_name)

    def _check_object(self, upload: Upload, pdef: PropertyDef, head: ObjectHead, first: bytes) -> None:
        """The stored object against what was issued; `first`: its first SNIFF_BYTES bytes."""
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
        content_type = head.content_type.split(";", 1)[0].strip().lower()
        limits = UploadLimits(
            upload.min_size,
            upload.max_size,
            tuple(upload.content_types),
            upload.declared_content_type,
            "",
            upload.acl,
            upload.content_disposition,
            upload.cache_control,
        )
        if not limits.allows(content_type) or (pdef.type == "image" and not content_type.startswith("image/")):
            allowed = upload.declared_content_type or ", ".join(upload.content_types) or "any"
            raise ContentTypeNotAllowed(f"storage holds this file as {content_type}; allowed: {allowed}")
        inline = not (head.content_disposition or "").lower().startswith("attachment")
        if inline and is_active_content(content_type):
            raise ContentMismatch(f"{content_type} must be stored with Content-Disposition: attachment")
        if head.size > 0 and not content_matches(content_type, first, inline=inline):
            raise ContentMismatch(f"the file's bytes are not {content_type}; upload the real file")

    # -- after the record transaction ---------------------------------------------------------
    def versions_for(self, pdef: PropertyDef, content_type: str | None) -> tuple[VersionSpec, ...]:
        """Versions apply to raster images only (never SVG: it is not rasterised)."""
        if not pdef.is_upload or not content_type or not content_type.startswith("image/"):
            return ()
        if content_type == "image/svg+xml":
            return ()
        return pdef.upload_options().versions

    async def attached(self, upload_ids: Sequence[int]) -> None:
        """Hand freshly attached uploads to the version queue; a failure here is recovered by the
        reconciler, so the save still succeeds."""
        if not upload_ids or self.on_attached is None:
            return
        try:
            await self.on_attached(upload_ids)
        except Exception:
            log.exception("could not queue versions for uploads %s; the reconciler will retry", list(upload_ids))

    async def discard(self, upload_ids: Sequence[int]) -> None:
        """Remove replaced or deleted uploads (and their versions) from storage after commit.
        If storage is down they stay `discarded` and the sweep retries."""
        if not upload_ids:
            return
        uploads = await Upload.filter(id__in=list(upload_ids), status="discarded")
        versions = await UploadVersion.filter(upload_id__in=list(upload_ids)).values_list("key", flat=True)
        keys = [u.key for u in uploads if u.key] + [str(k) for k in versions]
        try:
            await self.storage.delete(keys)
        except AppError:
            log.warning("could not delete %d object(s) now; the sweep will retry", len(keys))
            return
        await Upload.filter(id__in=[u.id for u in uploads]).update(status="deleted")

    async def _delete_quietly(self, keys: list[str]) -> None:
        try:
            await self.storage.delete(keys)
        except AppError:
            log.warning("could not delete rejected object(s) %s; the sweep will remove them", keys)

    # -- URLs ----------------------------------------------------------------------------------
    def check_expires_in(self, expires_in: int | None) -> int:
        if expires_in is None:
            return DEFAULT_GET_EXPIRES_IN
        if not 1 <= expires_in <= MAX_GET_EXPIRES_IN:
            raise BadUserInput(f"expires_in must be between 1 and {MAX_GET_EXPIRES_IN} seconds, got {expires_in}")
        return expires_in

    def resolve_url(
        self, upload: Upload, key: str, *, content_type: str | None, expires_in: int, readable: bool
    ) -> str | Awaitable[str] | None:
        """Public: the CDN or storage URL. Private: a short-lived signed GET, or None for callers
        who may not read it. A private file never gets a permanent URL.

        The URL itself whenever it can be computed without I/O (always with the fast signer), so a
        resolver of a page of 100 files needs no task per URL; otherwise an awaitable of it."""
        if upload.acl == "public":
            return self.urls.public_object_url(key)
        if not readable:
            return None
        disposition = disposition_header(upload.content_disposition, upload.file_name)
        url = self.storage.presign_get_now(key, expires_in, content_disposition=disposition, content_type=content_type)
        if url is not None:
            return url
        return self.storage.presign_get(key, expires_in, content_disposition=disposition, content_type=content_type)

    async def url_for(
        self, upload: Upload, key: str, *, content_type: str | None, expires_in: int, readable: bool
    ) -> str | None:
        url = self.resolve_url(upload, key, content_type=content_type, expires_in=expires_in, readable=readable)
        return url if url is None or isinstance(url, str) else await url

    @staticmethod
    def extension(upload: Upload) -> str | None:
        return extension_of(upload.file_name or (upload.key or "").rsplit("/", 1)[-1])
