"""Issuing uploads: presigned form POSTs and PUTs (and the checks multipart shares), always to a
quarantine key, under the caller's presign quota. Signing is local computation.

Storage without form POSTs (Azure Blob Storage: `capabilities.form_post` is false) answers the form
presigns with a PUT of the same limits (`open_put_grant`): the key is exact (a PUT URL names one
object, so the file name is fixed at presign: the client's `file_name`, else `file`), the type is
exact only when the client named one, and the size is bounded only by the save's checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from app.errors import BadUserInput, ContentTypeNotAllowed
from app.keys import key_prefix, new_token, quarantine_key, sanitize_file_name
from app.policy import (
    ClientOptions,
    UploadLimits,
    check_declared_size,
    checked_checksum_sha256,
    form_grant,
    narrow,
    normalize_media_type,
    open_put_grant,
    put_grant,
)
from app.settings import Settings
from app.storage.base import FILENAME_VAR, Storage
from app.tables import SINGLE_UPLOAD_MAX
from app.uploads.catalog import Catalog
from app.uploads.limits import PresignQuota
from app.uploads.values import Caller, ExactUpload, PresignedUpload

# The file name of a PUT presigned without one (a PUT URL names its object up front).
DEFAULT_FILE_NAME = "file"


def _content_types(limits: UploadLimits) -> list[str]:
    return [limits.declared_content_type] if limits.declared_content_type else list(limits.content_types)


@dataclass(frozen=True)
class IssuedExact:
    """The server-side half of an exact upload (PUT, multipart): its keys, limits and checksum."""

    token: str
    key: str  # permanent
    file_name: str
    limits: UploadLimits
    checksum_sha256: str | None = None

    @property
    def quarantine_key(self) -> str:
        return quarantine_key(self.key)


class Issuing:
    def __init__(self, settings: Settings, catalog: Catalog, storage: Storage, clock: Callable[[], datetime]) -> None:
        self.catalog = catalog
        self.storage = storage
        self.clock = clock
        self.expires_in = settings.presign_expires_in
        # What one POST or PUT may carry: the server's limit, or storage's when smaller (Azure's Put Blob).
        self.single_upload_max = min(SINGLE_UPLOAD_MAX, storage.capabilities.max_single_upload)
        self.quota = PresignQuota(
            settings.presign_rate_per_minute, settings.max_pending_uploads, clock, store=settings.presign_rate_store
        )

    async def take_quota(self, caller: Caller) -> None:
        """One presign of the caller's rate, or TOO_MANY_REQUESTS."""
        await self.quota.take(caller.rate_key)

    def expiry(self, seconds: int | None = None) -> datetime:
        return self.clock().replace(microsecond=0) + timedelta(seconds=seconds or self.expires_in)

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
        pdef = self.catalog.upload_property(table, prop, accepts)
        await self.take_quota(caller)
        if pdef.type == "image" and client.content_type and not client.content_type.lower().startswith("image/"):
            raise ContentTypeNotAllowed(
                f"{table}.{prop} is an image property; {client.content_type[:100]} is not an image"
            )
        limits = narrow(pdef.upload_options(), client, max_allowed=self.single_upload_max)
        if file_name is not None and (not file_name.strip() or len(file_name) > 1024):
            raise BadUserInput("file_name must be a non-empty name of at most 1024 characters (or left out)")
        safe_name = sanitize_file_name(file_name) if file_name else None
        token = new_token()
        if not self.storage.capabilities.form_post:
            return await self._put_instead(caller, table, prop, token, limits, safe_name)
        permanent = key_prefix(table, prop, token) + safe_name if safe_name else None
        key = quarantine_key(key_prefix(table, prop, token) + (safe_name or FILENAME_VAR))
        expires_at = self.expiry()
        grant = form_grant(limits, key, self.expires_in, include_content_type=include_content_type)
        request = await self.storage.presign_post(grant)
        # Signing is local computation: nothing happened yet if the pending cap refuses the row.
        await self.record(caller, table, prop, token, "post", permanent, limits, expires_at, safe_name)
        return PresignedUpload(
            upload_url=request.url,
            payload=request.fields,
            method="POST",
            key=key,
            url=self.storage.public_url(key) if safe_name else None,
            expires_at=expires_at,
            max_size=limits.max_size,
            content_types=_content_types(limits),
        )

    async def _put_instead(
        self, caller: Caller, table: str, prop: str, token: str, limits: UploadLimits, safe_name: str | None
    ) -> PresignedUpload:
        """A form presign on storage without form POSTs: a PUT of one exact key within the same limits."""
        file_name = safe_name or DEFAULT_FILE_NAME
        permanent = key_prefix(table, prop, token) + file_name
        key = quarantine_key(permanent)
        expires_at = self.expiry()
        request = await self.storage.presign_put(open_put_grant(limits, key, self.expires_in))
        await self.record(caller, table, prop, token, "put", permanent, limits, expires_at, safe_name)
        return PresignedUpload(
            upload_url=request.url,
            payload={},
            method="PUT",
            key=key,
            url=self.storage.public_url(key),
            expires_at=expires_at,
            max_size=limits.max_size,
            content_types=_content_types(limits),
            headers=request.headers,
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
        client, the declared type (exact) and size (inside the limits), and server-made keys."""
        pdef = self.catalog.upload_property(table, prop, accepts)
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
        return IssuedExact(token, key_prefix(table, prop, token) + safe_name, safe_name, limits, checksum)

    async def presign_put(
        self, caller: Caller, table: str, prop: str, accepts: Iterable[str], client: ClientOptions, put: ExactUpload
    ) -> PresignedUpload:
        """A presigned PUT: exact key, type and length (and checksum) are signed, so storage refuses
        any other file; the same limits and verified save as a POST apply."""
        issued = self.prepare_exact(table, prop, accepts, client, put, max_allowed=self.single_upload_max)
        await self.take_quota(caller)
        expires_at = self.expiry()
        grant = put_grant(issued.limits, issued.quarantine_key, self.expires_in, put.size, issued.checksum_sha256)
        request = await self.storage.presign_put(grant)
        await self.record(
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
            checksum_sha256=issued.checksum_sha256,
        )
        return PresignedUpload(
            upload_url=request.url,
            payload={},
            method="PUT",
            key=issued.quarantine_key,
            url=self.storage.public_url(issued.quarantine_key),
            expires_at=expires_at,
            max_size=issued.limits.max_size,
            content_types=[normalize_media_type(put.content_type)],
            headers=request.headers,
        )

    async def record(
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
        """Write an issued upload (POST, PUT or multipart) under the caller's pending cap; returns its
        id. `key` is the permanent key when it is exact already."""
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
