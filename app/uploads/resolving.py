"""Resolving URLs both ways: the value a client saves (a URL in any form storage or the CDN answers,
or a bare key) to its key, and a saved upload to the URL a caller may use."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable
from urllib.parse import quote, unquote, urlsplit

from app.errors import BadUserInput, ForeignUpload
from app.keys import extension_of, parse_key
from app.models import Upload
from app.policy import disposition_header, served_disposition
from app.storage.base import Storage
from app.uploads.status import is_served
from app.uploads.values import DEFAULT_GET_EXPIRES_IN, MAX_GET_EXPIRES_IN


class Resolving:
    def __init__(self, storage: Storage, cdn_base_url: str | None = None) -> None:
        self.storage = storage
        self.cdn_base_url = cdn_base_url.rstrip("/") if cdn_base_url else None

    # -- value -> key ------------------------------------------------------------------------------
    def key_from_value(self, value: str) -> str:
        """The key of an upload value: a URL of our storage or CDN (path-style, virtual-hosted,
        percent-encoded or not) or a bare key, in its quarantine or permanent form. A URL elsewhere
        is FOREIGN_UPLOAD."""
        value = value.strip()
        if not value:
            raise BadUserInput("the upload value is empty: pass the uploaded file's URL or key")
        if len(value) > 4096:
            raise BadUserInput("the upload value is longer than 4096 characters")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise BadUserInput("the upload value contains control characters")
        if "://" not in value:
            key = value
        else:
            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 (a malformed port raises here, as a malformed host does above)
            except ValueError:
                raise BadUserInput("the upload value is not a valid URL: pass the uploaded file's URL or key") from None
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ForeignUpload("only http(s) URLs of this server's storage are accepted")
            found = self._cdn_key(value) or self.storage.key_from_url(value)
            if found is None:
                raise ForeignUpload(
                    f"{parts.netloc.rsplit('@', 1)[-1][:100]} is not this server's storage or CDN; "
                    "upload through a presigned URL first"
                )
            key = found
        parse_key(key)
        return key

    def _cdn_key(self, value: str) -> str | None:
        if self.cdn_base_url is None:
            return None
        base = urlsplit(self.cdn_base_url)
        parts = urlsplit(value)
        prefix = base.path.rstrip("/") + "/"
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            return None
        if not parts.path.startswith(prefix):
            return None
        try:
            return unquote(parts.path[len(prefix) :], errors="strict") or None
        except UnicodeDecodeError:
            return None

    # -- upload -> URL -----------------------------------------------------------------------------
    def public_url(self, key: str) -> str:
        """Where a public object is served: the CDN when there is one, else storage."""
        if self.cdn_base_url:
            return f"{self.cdn_base_url}/{quote(key, safe='/~')}"
        return self.storage.public_url(key)

    @staticmethod
    def check_expires_in(expires_in: int | None) -> int:
        if expires_in is None:
            return DEFAULT_GET_EXPIRES_IN
        if not 1 <= expires_in <= MAX_GET_EXPIRES_IN:
            raise BadUserInput(f"expires_in must be between 1 and {MAX_GET_EXPIRES_IN} seconds, got {expires_in}")
        return expires_in

    def resolve_url(
        self, upload: Upload, key: str, *, content_type: str | None, expires_in: int, readable: bool
    ) -> str | Awaitable[str] | None:
        """Public: the CDN or storage URL. Private: a short-lived signed GET, or None for callers who
        may not read it. A private file never gets a permanent URL, and a file that is not promoted
        yet (still in quarantine, waiting for its virus scan) or refused by the scan gets none at all.

        The URL itself whenever it can be computed without I/O (always with the fast signer), so a
        resolver of a page of 100 files needs no task per URL; otherwise an awaitable of it."""
        if not is_served(upload.promotion, upload.scan_status) or not key:
            return None
        if upload.acl == "public":
            return self.public_url(key)
        if not readable:
            return None
        disposition = disposition_header(
            served_disposition(upload.content_disposition, upload.content_type), upload.file_name
        )
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
