"""The S3 adapter (AWS S3, SeaweedFS, MinIO, R2, moto): `S3Storage` implements `app.storage.base.Storage`.

Everything S3-specific lives here: POST policy fields and conditions, canned ACLs, x-amz headers, and
the URL forms of a bucket. botocore's errors become ours (`StorageUnavailable`, `PreconditionFailed`,
`MultipartRejected`). Nothing here knows GraphQL or the database. One long-lived aiobotocore client
per process, plus plain aiohttp requests signed by the fast signer (app/sigv4.py) for the HEAD and the
ranged GET of every save: botocore's request pipeline costs more CPU than the rest of a save.

How public files become readable (`S3Config.public_read`):
- `acl`: each object the server writes carries the canned ACL `public-read` or `private` (AWS S3 with
  ACLs enabled, moto);
- `policy`: each such object is also tagged `access=public|private`, and `ensure_bucket` installs a
  bucket policy that lets anonymous callers read every object but quarantined ones and ones tagged
  private (SeaweedFS stores object ACLs without enforcing them).
Quarantined objects are always private: presigns sign `acl=private`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aioboto3
import aiohttp
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from yarl import URL

from app.errors import StorageUnavailable
from app.keys import QUARANTINE
from app.settings import Secret, Settings
from app.sigv4 import PresignedGetSigner
from app.storage.base import (
    FILENAME_VAR,
    Capabilities,
    MultipartRejected,
    ObjectHead,
    ObjectHeaders,
    PreconditionFailed,
    PresignedRequest,
    StoredPart,
    UploadGrant,
)

log = logging.getLogger(__name__)

MIB = 1024**2
GIB = 1024**3
# Response headers the bucket's CORS rules let browsers read: ETag for multipart parts and Uppy,
# Location for form POSTs.
CORS_EXPOSE_HEADERS = ("ETag", "Location")
# The tag that says who may read an object the server wrote (public_read "policy").
ACCESS_TAG = "access"
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_REFUSED_PRECONDITION = {"412", "PreconditionFailed"}
# What botocore's "standard" retry mode retries (once, with max_attempts=2) for a HEAD or a GET.
_RETRY_STATUSES = {429, 500, 502, 503, 504}
# A presigned URL for the server's own HEAD or ranged GET, sent at once and never shown to anyone: its
# lifetime only has to cover a clock difference with storage, as the 15 minutes S3 allows header auth.
_DIRECT_EXPIRES_IN = 900
# Part copies of one large promotion in flight at once.
_COPY_CONCURRENCY = 4
S3_CAPABILITIES = Capabilities(
    form_post=True, max_single_upload=5 * GIB, max_parts=10_000, min_part_size=5 * MIB, max_part_size=5 * GIB
)


@dataclass(frozen=True)
class S3Config:
    """What the adapter needs to know about one bucket, and nothing else of the settings."""

    bucket: str
    region: str = "us-east-1"
    endpoint_url: str | None = None  # custom S3-compatible endpoint; None: AWS itself
    public_url: str | None = None  # the endpoint as browsers reach it, when it differs
    addressing_style: str = "auto"  # auto | path | virtual
    access_key_id: str | None = None
    secret_access_key: Secret = field(default_factory=lambda: Secret(""))
    session_token: Secret = field(default_factory=lambda: Secret(""))
    public_read: str = "acl"  # acl | policy (see the module docstring)
    # "storage": S3's x-amz-copy-source-if-match holds a copy to an ETag; "head": storage ignores it
    # (moto), so a HEAD checks the ETag just before the copy.
    conditional_copy: str = "storage"
    max_copy_size: int = 5 * GIB  # CopyObject's limit; bigger objects are copied part by part
    copy_part_size: int = 512 * MIB

    @classmethod
    def of(cls, settings: Settings) -> S3Config:
        return cls(
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            public_url=settings.s3_public_url,
            addressing_style=settings.s3_addressing_style,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            session_token=settings.s3_session_token,
            public_read=settings.s3_public_read,
            conditional_copy=settings.s3_conditional_copy,
        )

    @property
    def style(self) -> str:
        if self.addressing_style == "auto" and self.endpoint_url:
            return "path"  # custom endpoints (SeaweedFS, MinIO, moto) rarely have wildcard DNS for virtual hosts
        return self.addressing_style


def session_of(config: S3Config) -> aioboto3.Session:
    return aioboto3.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key.value or None,
        aws_session_token=config.session_token.value or None,
        region_name=config.region,
    )


def aws_session(settings: Settings) -> aioboto3.Session:
    """The AWS session every adapter (S3, SQS) builds its client from: one place for credentials."""
    return session_of(S3Config.of(settings))


def _host_port(scheme: str, netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1].lower()
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host


@dataclass(frozen=True)
class S3Urls:
    """Where objects of one bucket live, in every URL form storage answers or a client may hand back."""

    bucket: str
    region: str
    endpoint_url: str | None
    public_url: str | None = None

    def storage_base(self) -> str:
        """Base URL (no trailing slash) of the bucket as browsers reach it."""
        if self.public_url:
            return f"{self.public_url}/{self.bucket}"
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com"

    def object_url(self, key: str) -> str:
        return f"{self.storage_base()}/{quote(key, safe='/~')}"

    def _prefixes(self) -> list[tuple[str, str]]:
        """(host[:port], path prefix) pairs under which a key follows."""
        out: list[tuple[str, str]] = []
        if self.public_url:
            parts = urlsplit(f"{self.public_url}/{self.bucket}")
            out.append((_host_port(parts.scheme, parts.netloc), parts.path.rstrip("/") + "/"))
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            host = _host_port(parts.scheme, parts.netloc)
            path = parts.path.rstrip("/")
            out += [(host, f"{path}/{self.bucket}/"), (f"{self.bucket}.{host}", f"{path}/")]
        else:
            b, r = self.bucket, self.region
            for host in (f"s3.{r}.amazonaws.com", "s3.amazonaws.com", f"s3-{r}.amazonaws.com"):
                out += [(host, f"/{b}/"), (f"{b}.{host}", "/")]
        return out

    def key_from_url(self, value: str) -> str | None:
        """The key of an http(s) URL into this bucket (path-style, virtual-hosted, percent-encoded or
        not; query and fragment ignored); None for any other URL."""
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        host = _host_port(parts.scheme, parts.netloc)
        matched = [p for h, p in self._prefixes() if h == host and parts.path.startswith(p)]
        if not matched:
            return None
        try:
            key = unquote(parts.path[len(max(matched, key=len)) :], errors="strict")
        except UnicodeDecodeError:
            return None
        return key or None


def _head_from(headers: Any, size: int) -> ObjectHead:
    """An ObjectHead from the headers of a HEAD or GET answer (`size`: the whole object's)."""
    modified = parsedate_to_datetime(headers["Last-Modified"])
    return ObjectHead(
        size=size,
        content_type=headers.get("Content-Type") or "binary/octet-stream",
        content_disposition=headers.get("Content-Disposition"),
        etag=headers.get("ETag", "").strip('"'),
        last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
        cache_control=headers.get("Cache-Control"),
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _client_error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _translate(exc: Exception, action: str) -> StorageUnavailable:
    log.warning("storage %s failed: %r", action, exc)
    return StorageUnavailable(f"object storage is unavailable ({action}); try again shortly")


# Answers of a ranged GET that are not a slice of an object (see S3Storage.probe).
_EMPTY = object()

_IO_ERRORS = (TimeoutError, BotoCoreError, OSError)


class StorageHTTPError(Exception):
    """Storage answered a direct request (see S3Storage.head) with an unexpected status."""

    def __init__(self, action: str, status: int) -> None:
        super().__init__(f"{action}: HTTP {status}")
        self.status = status


def bucket_policy(bucket: str) -> dict[str, Any]:
    """The bucket policy of public_read "policy": anyone may read an object the server wrote unless it
    is tagged private; nobody but an authenticated caller (the server) reads quarantined objects.

    Anonymous callers are told apart by having no `aws:username`; a statement's Resource applies to
    each object, and an object's tags are known once storage has looked it up."""
    objects = f"arn:aws:s3:::{bucket}/*"
    anonymous = {"Null": {"aws:username": "true"}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects},
            {
                "Sid": "QuarantineIsPrivate",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/{QUARANTINE}*",
                "Condition": anonymous,
            },
            {
                "Sid": "PrivateIsPrivate",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": objects,
                "Condition": {**anonymous, "StringEquals": {f"s3:ExistingObjectTag/{ACCESS_TAG}": "private"}},
            },
        ],
    }


class S3Storage:
    """S3-compatible storage for one bucket."""

    capabilities = S3_CAPABILITIES

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.bucket = config.bucket
        self.urls = S3Urls(config.bucket, config.region, config.endpoint_url, config.public_url)
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._style = config.style
        self._config = Config(
            signature_version="s3v4",
            s3={"addressing_style": self._style},
            connect_timeout=3,
            read_timeout=20,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self._signer: PresignedGetSigner | None = None
        # Plain HTTP for the HEAD and the ranged GET of every save, signed by the fast signer.
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        c = self.config
        self._client = await self._stack.enter_async_context(
            session_of(c).client("s3", endpoint_url=c.endpoint_url, config=self._config)
        )
        if c.access_key_id and c.secret_access_key:
            try:
                self._signer = PresignedGetSigner(
                    access_key=c.access_key_id,
                    secret_key=c.secret_access_key.value,
                    session_token=c.session_token.value or None,
                    region=c.region,
                    endpoint_url=c.endpoint_url,
                    bucket=self.bucket,
                    addressing_style=self._style,
                )
            except ValueError as exc:  # a combination the fast signer does not cover: botocore signs
                log.info("fast signer disabled: %s", exc)
        if self._signer is not None:
            # Timeouts and pool size as the botocore client's (connect 3 s, read 20 s, 10 connections).
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=10),
                timeout=aiohttp.ClientTimeout(sock_connect=3, sock_read=20),
                auto_decompress=False,
            )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Storage.start() was not awaited")
        return self._client

    async def ping(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, *_IO_ERRORS) as exc:
            raise _translate(exc, "ping") from exc

    async def ensure_bucket(self, cors_origins: Sequence[str]) -> None:
        """Create the bucket with CORS rules for browser uploads (embedded storage and tests), and the
        bucket policy of public_read "policy"."""
        try:
            try:
                await self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if self.config.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
                await self.client.create_bucket(**kwargs)
            rule = {
                "AllowedOrigins": list(cors_origins) or ["*"],
                "AllowedMethods": ["GET", "HEAD", "POST", "PUT"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": list(CORS_EXPOSE_HEADERS),
                "MaxAgeSeconds": 3600,
            }
            await self.client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration={"CORSRules": [rule]})
            if self.config.public_read == "policy":
                policy = json.dumps(bucket_policy(self.bucket))
                await self.client.put_bucket_policy(Bucket=self.bucket, Policy=policy)
        except (ClientError, *_IO_ERRORS) as exc:
            raise _translate(exc, "bucket set-up") from exc

    # -- URLs --------------------------------------------------------------------------------------
    def public_url(self, key: str) -> str:
        return self.urls.object_url(key)

    def key_from_url(self, value: str) -> str | None:
        return self.urls.key_from_url(value)

    def _public(self, url: str) -> str:
        """Rewrite the SDK's endpoint to the one browsers reach, when they differ."""
        c = self.config
        if c.public_url and c.endpoint_url and url.startswith(c.endpoint_url):
            return c.public_url + url[len(c.endpoint_url) :]
        return url

    async def presign_post(self, grant: UploadGrant) -> PresignedRequest:
        """A SigV4 POST policy that allows exactly `grant`, always as a private object. Local
        computation only: no request reaches storage."""
        fields: dict[str, str] = {"acl": "private", "success_action_status": "201"}
        conditions: list[Any] = [{"acl": "private"}, {"success_action_status": "201"}]
        if grant.content_disposition:
            fields["Content-Disposition"] = grant.content_disposition
            conditions.append({"Content-Disposition": grant.content_disposition})
        if grant.cache_control:
            fields["Cache-Control"] = grant.cache_control
            conditions.append({"Cache-Control": grant.cache_control})
        conditions.append(["content-length-range", grant.min_size, grant.max_size])
        if grant.content_type:
            fields["Content-Type"] = grant.content_type
            conditions.append({"Content-Type": grant.content_type})
        elif grant.client_sets_content_type:
            fields["Content-Type"] = ""
            conditions.append(["starts-with", "$Content-Type", grant.content_type_prefix])
        if self._signer is not None:
            # botocore's generate_presigned_post runs its whole request pipeline (~1.7 ms, most of a
            # presign's CPU); the fast signer gives the same fields in ~20 us (tests/test_sigv4_post.py).
            url, payload = self._signer.presign_post(grant.key, fields, conditions, grant.expires_in)
            return PresignedRequest("POST", self._public(url), fields=payload)
        try:
            result = await self.client.generate_presigned_post(
                Bucket=self.bucket, Key=grant.key, Fields=fields, Conditions=conditions, ExpiresIn=grant.expires_in
            )
        except BotoCoreError as exc:
            raise _translate(exc, "presign") from exc
        return PresignedRequest("POST", self._public(result["url"]), fields=dict(result["fields"]))

    async def presign_put(self, grant: UploadGrant) -> PresignedRequest:
        """A presigned PUT whose signature covers the exact type and length (and checksum), so storage
        refuses any other file; always a private object."""
        if grant.content_type is None or grant.size is None:
            raise ValueError("a presigned PUT needs an exact content_type and size")
        headers = {"Content-Type": grant.content_type, "Content-Length": str(grant.size), "x-amz-acl": "private"}
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": grant.key,
            "ContentType": grant.content_type,
            "ContentLength": grant.size,
            "ACL": "private",
        }
        if grant.content_disposition:
            headers["Content-Disposition"] = params["ContentDisposition"] = grant.content_disposition
        if grant.cache_control:
            headers["Cache-Control"] = params["CacheControl"] = grant.cache_control
        if grant.checksum_sha256:
            headers["x-amz-checksum-sha256"] = params["ChecksumSHA256"] = grant.checksum_sha256
        try:
            url = await self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=grant.expires_in)
        except BotoCoreError as exc:
            raise _translate(exc, "presign") from exc
        return PresignedRequest("PUT", self._public(url), headers=headers)

    def presign_get_now(
        self, key: str, expires_in: int, *, content_disposition: str | None = None, content_type: str | None = None
    ) -> str | None:
        """A presigned GET computed right here by the fast signer, or None when it does not cover this
        configuration (then `presign_get` asks botocore). Lets GraphQL resolve a page of URLs without
        scheduling a coroutine per URL."""
        if self._signer is None:
            return None
        url = self._signer.presign_get(
            key, expires_in, response_content_disposition=content_disposition, response_content_type=content_type
        )
        return self._public(url)

    async def presign_get(
        self, key: str, expires_in: int, *, content_disposition: str | None = None, content_type: str | None = None
    ) -> str:
        url = self.presign_get_now(key, expires_in, content_disposition=content_disposition, content_type=content_type)
        if url is not None:
            return url
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if content_disposition:
            params["ResponseContentDisposition"] = content_disposition
        if content_type:
            params["ResponseContentType"] = content_type
        try:
            url = await self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        except BotoCoreError as exc:
            raise _translate(exc, "presign") from exc
        return self._public(url)

    # -- reads -------------------------------------------------------------------------------------
    async def head(self, key: str, *, checksum: bool = False) -> ObjectHead | None:
        """The object's size and type as storage knows them; None when there is no such object.
        With `checksum`, storage is asked for the SHA-256 it stored with the object (if any)."""
        if self._http is not None and not checksum:
            # (The checksum needs a signed x-amz-checksum-mode header, which presigned URLs here lack.)
            return await self._direct_head(key)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if checksum:
            kwargs["ChecksumMode"] = "ENABLED"
        try:
            r = await self.client.head_object(**kwargs)
        except ClientError as exc:
            if _client_error_code(exc) in _MISSING:
                return None
            raise _translate(exc, "head") from exc
        except _IO_ERRORS as exc:
            raise _translate(exc, "head") from exc
        return ObjectHead(
            size=int(r["ContentLength"]),
            content_type=str(r.get("ContentType") or "binary/octet-stream"),
            content_disposition=r.get("ContentDisposition"),
            etag=str(r.get("ETag", "")).strip('"'),
            last_modified=_aware(r["LastModified"]),
            checksum_sha256=r.get("ChecksumSHA256") or None,
            cache_control=r.get("CacheControl"),
        )

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes from `start` (fewer at the end of the object)."""
        byte_range = f"bytes={start}-{start + max(length, 1) - 1}"
        if self._http is not None and self._signer is not None:
            url = self._signer.presign_get(key, _DIRECT_EXPIRES_IN)
            return await self._direct("GET", url, "get", {"Range": byte_range}, self._read_body)  # type: ignore[no-any-return]
        return await self._get(key, byte_range)

    async def probe(self, key: str, length: int, *, checksum: bool = False) -> tuple[ObjectHead, bytes] | None:
        """What a save checks: the object's head (as `head` gives it) and its first `length` bytes
        (b"" when it is empty); None when there is no such object.

        On the direct path this is one ranged GET, whose answer carries everything a HEAD does (the
        whole size in Content-Range): one storage round trip per saved file instead of two. An empty
        object has no first byte to range over (416): then a HEAD tells its headers. A server that
        ignores the range (200, the whole object) is read no further than `length` bytes."""
        if self._http is None or self._signer is None or checksum:
            head = await self.head(key, checksum=checksum)
            if head is None:
                return None
            return head, (await self.read_range(key, 0, length) if head.size > 0 else b"")
        url = self._signer.presign_get(key, _DIRECT_EXPIRES_IN)
        headers = {"Range": f"bytes=0-{max(length - 1, 0)}"}
        reader = functools.partial(self._parse_probe, length)
        probed = await self._direct("GET", url, "get", headers, reader, answered=(404, 416))
        if probed is _EMPTY:
            head = await self._direct_head(key)
            return None if head is None else (head, b"")
        return probed  # type: ignore[no-any-return]

    async def get(self, key: str) -> bytes:
        return await self._get(key, None)

    async def stream(
        self, key: str, chunk_size: int = 1024 * 1024, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        """The object in chunks of at most `chunk_size` bytes, never held whole in memory. With
        `if_match`, only the object with that ETag (S3's If-Match, and the answer's ETag checked for a
        server that ignores it): another or a missing object is PreconditionFailed."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        etag = if_match.strip('"') if if_match is not None else None
        if etag is not None:
            params["IfMatch"] = f'"{etag}"'
        try:
            r = await self.client.get_object(**params)
            body = r["Body"]
            async with body:
                if etag is not None and str(r.get("ETag", "")).strip('"') != etag:
                    raise PreconditionFailed(f"{key} is not (or no longer) the object with ETag {etag}")
                while chunk := await body.read(chunk_size):
                    yield chunk
        except ClientError as exc:
            code, status = _client_error_code(exc), _client_error_status(exc)
            if etag is not None and (code in _REFUSED_PRECONDITION or status == 412 or code in _MISSING):
                raise PreconditionFailed(f"{key} changed or is gone: {code or status}") from exc
            raise _translate(exc, "get") from exc
        except _IO_ERRORS as exc:
            raise _translate(exc, "get") from exc

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (one upload's prefix, never the whole bucket)."""
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", [])]
        except (ClientError, *_IO_ERRORS) as exc:
            raise _translate(exc, "list") from exc
        return keys

    async def _get(self, key: str, byte_range: str | None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            r = await self.client.get_object(**kwargs)
            async with r["Body"] as body:
                data: bytes = await body.read()
        except (ClientError, *_IO_ERRORS) as exc:
            raise _translate(exc, "get") from exc
        return data

    async def _direct_head(self, key: str) -> ObjectHead | None:
        assert self._signer is not None
        url = self._signer.presign_head(key, _DIRECT_EXPIRES_IN)
        return await self._direct("HEAD", url, "head", {}, self._parse_head, answered=(404,))  # type: ignore[no-any-return]

    @staticmethod
    async def _read_body(response: aiohttp.ClientResponse) -> bytes:
        return await response.read()

    @staticmethod
    async def _parse_head(response: aiohttp.ClientResponse) -> ObjectHead | None:
        if response.status == 404:
            return None
        return _head_from(response.headers, int(response.headers["Content-Length"]))

    @staticmethod
    async def _parse_probe(length: int, response: aiohttp.ClientResponse) -> Any:
        if response.status == 404:
            return None
        if response.status == 416:  # no byte 0: the object is empty
            return _EMPTY
        h = response.headers
        if response.status == 206:
            # "bytes 0-511/12345": the whole object's size after the slash.
            size = int(h["Content-Range"].rsplit("/", 1)[1])
        else:
            size = int(h["Content-Length"])
        chunks: list[bytes] = []
        wanted = min(length, size)
        while wanted > 0 and (chunk := await response.content.read(wanted)):
            chunks.append(chunk)
            wanted -= len(chunk)
        return _head_from(h, size), b"".join(chunks)

    async def _direct(
        self, method: str, url: str, action: str, headers: dict[str, str], read: Any, answered: tuple[int, ...] = ()
    ) -> Any:
        """Send a presigned request; `read` turns a 200 or 206 (or a status in `answered`) into the
        result. Other answers become what the botocore path raises: StorageUnavailable, after one
        retry of what botocore retries."""
        assert self._http is not None
        for attempt in (1, 2):
            try:
                # encoded=True: the URL is sent exactly as signed (yarl would otherwise re-quote it).
                async with self._http.request(
                    method, URL(url, encoded=True), headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    if status in (200, 206) or status in answered:
                        return await read(response)
                    await response.read()
                    error: Exception = StorageHTTPError(action, status)
                    if status not in _RETRY_STATUSES:
                        raise _translate(error, action) from error
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
                # (ValueError, TypeError, KeyError, IndexError: an answer without the headers every S3
                # HEAD or ranged GET carries.)
                error = exc
            if attempt == 1:
                await asyncio.sleep(random.random())  # botocore's standard mode: jittered, base 1 s
        raise _translate(error, action) from error

    # -- writes by the server ----------------------------------------------------------------------
    def _object_params(self, headers: ObjectHeaders) -> dict[str, Any]:
        params: dict[str, Any] = {
            "ContentType": headers.content_type,
            "ACL": "public-read" if headers.public else "private",
        }
        if headers.content_disposition:
            params["ContentDisposition"] = headers.content_disposition
        if headers.cache_control:
            params["CacheControl"] = headers.cache_control
        if self.config.public_read == "policy":
            params["Tagging"] = f"{ACCESS_TAG}={'public' if headers.public else 'private'}"
        return params

    async def put(self, key: str, data: bytes, headers: ObjectHeaders) -> None:
        try:
            await self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **self._object_params(headers))
        except (ClientError, *_IO_ERRORS) as exc:
            raise _translate(exc, "put") from exc

    async def copy(
        self, source: str, destination: str, *, if_match: str, headers: ObjectHeaders, size: int | None = None
    ) -> ObjectHead:
        """Server-side copy while `source` still has the ETag `if_match` (S3's
        x-amz-copy-source-if-match), with `headers` instead of the source's. Above `max_copy_size`
        (CopyObject's 5 GiB) the copy is a multipart upload of UploadPartCopy parts, each conditional
        on the same ETag. Without `size` (or when storage ignores the condition), a HEAD first."""
        etag = if_match.strip('"')
        if size is None or self.config.conditional_copy == "head":
            head = await self.head(source)
            if head is None or head.etag != etag:
                raise PreconditionFailed(f"{source} is not (or no longer) the object with ETag {etag}")
            size = head.size
        if size > self.config.max_copy_size:
            copied_etag = await self._copy_in_parts(source, destination, etag, headers, size)
            modified = datetime.now(UTC)
        else:
            params = self._object_params(headers)
            if "Tagging" in params:
                params["TaggingDirective"] = "REPLACE"
            try:
                r = await self.client.copy_object(
                    Bucket=self.bucket,
                    Key=destination,
                    CopySource={"Bucket": self.bucket, "Key": source},
                    CopySourceIfMatch=f'"{etag}"',
                    MetadataDirective="REPLACE",
                    **params,
                )
            except ClientError as exc:
                raise self._copy_error(exc, source) from exc
            except _IO_ERRORS as exc:
                raise _translate(exc, "copy") from exc
            result = r.get("CopyObjectResult", {})
            copied_etag = str(result.get("ETag", "")).strip('"')
            modified = _aware(result["LastModified"]) if result.get("LastModified") else datetime.now(UTC)
        return ObjectHead(
            size=size,
            content_type=headers.content_type,
            content_disposition=headers.content_disposition,
            etag=copied_etag,
            last_modified=modified,
            cache_control=headers.cache_control,
        )

    def _copy_error(self, exc: ClientError, source: str) -> Exception:
        code, status = _client_error_code(exc), _client_error_status(exc)
        if code in _REFUSED_PRECONDITION or status == 412 or code in _MISSING:
            return PreconditionFailed(f"{source} changed or is gone: {code or status}")
        return _translate(exc, "copy")

    async def _copy_in_parts(self, source: str, destination: str, etag: str, headers: ObjectHeaders, size: int) -> str:
        part_size = max(self.config.copy_part_size, math.ceil(size / self.capabilities.max_parts))
        upload_id = await self.create_multipart_upload(destination, headers)
        copy_source = {"Bucket": self.bucket, "Key": source}
        gate = asyncio.Semaphore(_COPY_CONCURRENCY)

        async def part(number: int, start: int) -> tuple[int, str]:
            end = min(start + part_size, size) - 1
            async with gate:
                try:
                    r = await self.client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=destination,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=copy_source,
                        CopySourceRange=f"bytes={start}-{end}",
                        CopySourceIfMatch=f'"{etag}"',
                    )
                except ClientError as exc:
                    raise self._copy_error(exc, source) from exc
                except _IO_ERRORS as exc:
                    raise _translate(exc, "copy part") from exc
            return number, str(r["CopyPartResult"]["ETag"]).strip('"')

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(part(n, s)) for n, s in enumerate(range(0, size, part_size), start=1)]
            parts = [t.result() for t in tasks]
            try:
                await self.complete_multipart_upload(destination, upload_id, parts)
            except MultipartRejected as exc:
                raise StorageUnavailable(f"storage refused to assemble a copy ({exc.code}): {exc.message}") from exc
        except BaseException as exc:
            try:
                await self.abort_multipart_upload(destination, upload_id)
            except StorageUnavailable:
                log.warning("could not abort the partial copy to %s; the sweep removes it", destination)
            if isinstance(exc, BaseExceptionGroup):
                # One part's failure says it all (the others were cancelled or failed alike).
                raise exc.exceptions[0] from None
            raise
        head = await self.head(destination)
        return head.etag if head is not None else ""

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete objects (missing ones are fine), 1,000 per request. Raises StorageUnavailable if any
        could not go."""
        keys = list(dict.fromkeys(keys))
        if len(keys) == 1:  # (one object, the usual case: a plain DELETE is the cheaper request)
            try:
                await self.client.delete_object(Bucket=self.bucket, Key=keys[0])
            except ClientError as exc:
                if _client_error_code(exc) not in _MISSING:
                    raise _translate(exc, "delete") from exc
            except _IO_ERRORS as exc:
                raise _translate(exc, "delete") from exc
            return
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                r = await self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except (ClientError, *_IO_ERRORS) as exc:
                raise _translate(exc, "delete") from exc
            failed = [e for e in r.get("Errors", []) if e.get("Code") not in _MISSING]
            if failed:
                raise StorageUnavailable(f"storage refused to delete {len(failed)} object(s): {failed[0]}")

    # -- multipart ---------------------------------------------------------------------------------
    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        try:
            r = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **self._object_params(headers))
        except (ClientError, *_IO_ERRORS) as exc:
            raise _translate(exc, "create multipart upload") from exc
        return str(r["UploadId"])

    async def presign_upload_part(self, key: str, upload_id: str, part_number: int, expires_in: int) -> str:
        """A PUT URL for one part. Local computation only."""
        params = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number}
        try:
            url = await self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_in)
        except BotoCoreError as exc:
            raise _translate(exc, "presign") from exc
        return self._public(url)

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """Every part stored so far (all pages); None when the multipart upload does not exist."""
        parts: list[StoredPart] = []
        marker = 0
        try:
            while True:
                r = await self.client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=1000, PartNumberMarker=marker
                )
                page = r.get("Parts", [])
                parts += [StoredPart(int(p["PartNumber"]), str(p["ETag"]).strip('"'), int(p["Size"])) for p in page]
                if not r.get("IsTruncated") or not page:
                    break
                marker = int(r.get("NextPartNumberMarker") or page[-1]["PartNumber"])
        except ClientError as exc:
            if _client_error_code(exc) in _MISSING:
                return None
            raise _translate(exc, "list parts") from exc
        except _IO_ERRORS as exc:
            raise _translate(exc, "list parts") from exc
        return parts

    async def complete_multipart_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        """Assemble the parts. A refusal by storage (missing upload, wrong ETag, part too small) is
        MultipartRejected with S3's code; the use case decides what the client is told."""
        body = {"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in parts]}
        try:
            await self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload=body
            )
        except ClientError as exc:
            code = _client_error_code(exc)
            if 400 <= _client_error_status(exc) < 500 and code:
                raise MultipartRejected(code, str(exc.response.get("Error", {}).get("Message", code))) from exc
            raise _translate(exc, "complete multipart upload") from exc
        except _IO_ERRORS as exc:
            raise _translate(exc, "complete multipart upload") from exc

    async def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort and free the parts; False when storage says there was no such upload."""
        try:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _client_error_code(exc) in _MISSING:
                return False
            raise _translate(exc, "abort multipart upload") from exc
        except _IO_ERRORS as exc:
            raise _translate(exc, "abort multipart upload") from exc
        return True


__all__ = ["CORS_EXPOSE_HEADERS", "FILENAME_VAR", "S3Config", "S3Storage", "S3Urls", "aws_session"]
