"""The S3 adapter: presign, head, ranged read, get, put, delete. SDK errors become our own.

Nothing here knows GraphQL or the database. One long-lived aiobotocore client per process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from contextlib import AsyncExitStack
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aioboto3
import aiohttp
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from yarl import URL

from app.embedded_storage import CORS_EXPOSE_HEADERS
from app.errors import StorageUnavailable
from app.keys import StorageUrls
from app.settings import Settings
from app.sigv4 import PresignedGetSigner
from app.storage.base import MultipartRejected, ObjectHead, StoredPart

log = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
# What botocore's "standard" retry mode retries (once, with max_attempts=2) for a HEAD or a GET.
_RETRY_STATUSES = {429, 500, 502, 503, 504}
# A presigned URL for the server's own HEAD or ranged GET, sent at once and never shown to anyone: its
# lifetime only has to cover a clock difference with storage, as the 15 minutes S3 allows header auth.
_DIRECT_EXPIRES_IN = 900


class StorageHTTPError(Exception):
    """Storage answered a direct request (see Storage.head) with an unexpected status."""

    def __init__(self, action: str, status: int) -> None:
        super().__init__(f"{action}: HTTP {status}")
        self.status = status


# What Storage._parse_probe answers for an empty object (a ranged GET of it is refused with 416).
_EMPTY = object()


def _head_from(headers: Any, size: int) -> ObjectHead:
    """An ObjectHead from the headers of a HEAD or GET answer (`size`: the whole object's)."""
    modified = parsedate_to_datetime(headers["Last-Modified"])
    return ObjectHead(
        size=size,
        content_type=headers.get("Content-Type") or "binary/octet-stream",
        content_disposition=headers.get("Content-Disposition"),
        etag=headers.get("ETag", "").strip('"'),
        last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
    )


def aws_session(settings: Settings) -> aioboto3.Session:
    """The AWS session every adapter (S3, SQS) builds its client from: one place for credentials."""
    return aioboto3.Session(
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key.value or None,
        aws_session_token=settings.s3_session_token.value or None,
        region_name=settings.s3_region,
    )


def _client_error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, action: str) -> StorageUnavailable:
    log.warning("storage %s failed: %r", action, exc)
    return StorageUnavailable(f"object storage is unavailable ({action}); try again shortly")


class Storage:
    """S3-compatible storage for one bucket."""

    def __init__(self, settings: Settings, urls: StorageUrls) -> None:
        self.settings = settings
        self.urls = urls
        self.bucket = settings.s3_bucket
        self._stack = AsyncExitStack()
        self._client: Any = None
        style = settings.s3_addressing_style
        if style == "auto" and settings.s3_endpoint_url:
            style = "path"  # custom endpoints (moto, MinIO) rarely have wildcard DNS for virtual hosts
        self._style = style
        self._config = Config(
            signature_version="s3v4",
            s3={"addressing_style": style},
            connect_timeout=3,
            read_timeout=20,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self._get_signer: PresignedGetSigner | None = None
        # Plain HTTP for the HEAD and the ranged GET of every save, signed by the fast signer: botocore's
        # request pipeline (endpoint rules, event hooks, parsers) cost more CPU than the rest of a save.
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        s = self.settings
        self._client = await self._stack.enter_async_context(
            aws_session(s).client("s3", endpoint_url=s.s3_endpoint_url, config=self._config)
        )
        if s.s3_access_key_id and s.s3_secret_access_key:
            try:
                self._get_signer = PresignedGetSigner(
                    access_key=s.s3_access_key_id,
                    secret_key=s.s3_secret_access_key.value,
                    session_token=s.s3_session_token.value or None,
                    region=s.s3_region,
                    endpoint_url=s.s3_endpoint_url,
                    bucket=self.bucket,
                    addressing_style=self._style,
                )
            except ValueError as exc:  # a combination the fast signer does not cover: botocore signs
                log.info("fast GET signer disabled: %s", exc)
        if self._get_signer is not None:
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
            raise RuntimeError("Storage.start() was not awaited")
        return self._client

    def _public(self, url: str) -> str:
        """Rewrite the SDK's endpoint to the one browsers reach, when they differ."""
        s = self.settings
        if s.s3_public_url and s.s3_endpoint_url and url.startswith(s.s3_endpoint_url):
            return s.s3_public_url + url[len(s.s3_endpoint_url) :]
        return url

    async def presign_post(
        self, key: str, fields: dict[str, str], conditions: list[Any], expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """A SigV4 POST policy. Local computation only: no request reaches storage."""
        if self._get_signer is not None:
            # botocore's generate_presigned_post runs its whole request pipeline (~1.7 ms, most of a
            # presign's CPU); the fast signer gives the same fields in ~20 us (tests/test_sigv4_post.py).
            url, payload = self._get_signer.presign_post(key, fields, conditions, expires_in)
            return self._public(url), payload
        try:
            result = await self.client.generate_presigned_post(
                Bucket=self.bucket,
                Key=key,
                Fields=dict(fields),
                Conditions=list(conditions),  # aiobotocore appends to the list it is given
                ExpiresIn=expires_in,
            )
        except BotoCoreError as exc:
            raise _translate(exc, "presign") from exc
        return self._public(result["url"]), result["fields"]

    async def presign_put(self, key: str, headers: dict[str, str], expires_in: int) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        mapping = {
            "Content-Type": "ContentType",
            "Content-Length": "ContentLength",
            "Content-Disposition": "ContentDisposition",
            "Cache-Control": "CacheControl",
            "x-amz-acl": "ACL",
            "x-amz-checksum-sha256": "ChecksumSHA256",
        }
        for header, value in headers.items():
            params[mapping[header]] = int(value) if header == "Content-Length" else value
        try:
            url = await self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        except BotoCoreError as exc:
            raise _translate(exc, "presign") from exc
        return self._public(url)

    def presign_get_now(
        self, key: str, expires_in: int, *, content_disposition: str | None = None, content_type: str | None = None
    ) -> str | None:
        """A presigned GET computed right here by the fast signer, or None when it does not cover this
        configuration (then `presign_get` asks botocore). Lets GraphQL resolve a page of URLs without
        scheduling a coroutine per URL."""
        if self._get_signer is None:
            return None
        url = self._get_signer.presign_get(
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
        url = await self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return self._public(url)

    async def head(self, key: str, *, checksum: bool = False) -> ObjectHead | None:
        """The object's size and type as storage knows them; None when there is no such object.
        With `checksum`, storage is asked for the SHA-256 it stored with the object (if any)."""
        if self._http is not None and self._get_signer is not None and not checksum:
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
        except (TimeoutError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "head") from exc
        return ObjectHead(
            size=int(r["ContentLength"]),
            content_type=str(r.get("ContentType") or "binary/octet-stream"),
            content_disposition=r.get("ContentDisposition"),
            etag=str(r.get("ETag", "")).strip('"'),
            last_modified=r["LastModified"],
            checksum_sha256=r.get("ChecksumSHA256") or None,
        )

    async def read_range(self, key: str, length: int) -> bytes:
        """The first `length` bytes (a ranged GET), for sniffing the real format."""
        byte_range = f"bytes=0-{max(length - 1, 0)}"
        if self._http is not None and self._get_signer is not None:
            url = self._get_signer.presign_get(key, _DIRECT_EXPIRES_IN)
            return await self._direct("GET", url, "get", {"Range": byte_range}, self._read_body)
        return await self.get(key, byte_range=byte_range)

    async def probe(self, key: str, length: int, *, checksum: bool = False) -> tuple[ObjectHead, bytes] | None:
        """What a save checks: the object's head (as `head` gives it) and its first `length` bytes
        (b"" when it is empty); None when there is no such object.

        On the direct path this is one ranged GET, whose answer carries everything a HEAD does (the
        whole size in Content-Range): one storage round trip per saved file instead of two. An empty
        object has no first byte to range over (416): then a HEAD tells its headers. A server that
        ignores the range (200, the whole object) is read no further than `length` bytes."""
        if self._http is None or self._get_signer is None or checksum:
            head = await self.head(key, checksum=checksum)
            if head is None:
                return None
            return head, (await self.read_range(key, length) if head.size > 0 else b"")
        url = self._get_signer.presign_get(key, _DIRECT_EXPIRES_IN)
        headers = {"Range": f"bytes=0-{max(length - 1, 0)}"}
        reader = functools.partial(self._parse_probe, length)
        probed = await self._direct("GET", url, "get", headers, reader, answered=(404, 416))
        if probed is _EMPTY:
            head = await self._direct_head(key)
            return None if head is None else (head, b"")
        return probed  # type: ignore[no-any-return]

    async def _direct_head(self, key: str) -> ObjectHead | None:
        assert self._get_signer is not None
        url = self._get_signer.presign_head(key, _DIRECT_EXPIRES_IN)
        return await self._direct("HEAD", url, "head", {}, self._parse_head, answered=(404,))

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

    async def get(self, key: str, *, byte_range: str | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            r = await self.client.get_object(**kwargs)
            async with r["Body"] as body:
                data: bytes = await body.read()
        except ClientError as exc:
            raise _translate(exc, "get") from exc
        except (TimeoutError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "get") from exc
        return data

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str | None = None,
        content_disposition: str | None = None,
        acl: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type}
        if cache_control:
            kwargs["CacheControl"] = cache_control
        if content_disposition:
            kwargs["ContentDisposition"] = content_disposition
        if acl:
            kwargs["ACL"] = acl
        try:
            await self.client.put_object(**kwargs)
        except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "put") from exc

    async def delete(self, keys: list[str]) -> None:
        """Delete objects (missing ones are fine). Raises StorageUnavailable if any could not go."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                r = await self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
                raise _translate(exc, "delete") from exc
            failed = [e for e in r.get("Errors", []) if e.get("Code") not in _MISSING]
            if failed:
                raise StorageUnavailable(f"storage refused to delete {len(failed)} object(s): {failed[0]}")

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under one upload's prefix (never the whole bucket)."""
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", [])]
        except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "list") from exc
        return keys

    # -- multipart ---------------------------------------------------------------------------
    async def create_multipart_upload(
        self,
        key: str,
        *,
        content_type: str,
        content_disposition: str,
        cache_control: str | None,
        acl: str,
    ) -> str:
        """Start a multipart upload; the object's headers are fixed here, by the server."""
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentDisposition": content_disposition,
            "ACL": acl,
        }
        if cache_control:
            kwargs["CacheControl"] = cache_control
        try:
            r = await self.client.create_multipart_upload(**kwargs)
        except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
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
        except (TimeoutError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "list parts") from exc
        return parts

    async def complete_multipart_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Assemble the parts. A refusal by storage (missing upload, wrong ETag, part too small)
        is MultipartRejected with S3's code; the use case decides what the client is told."""
        body = {"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in parts]}
        try:
            await self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload=body
            )
        except ClientError as exc:
            code = _client_error_code(exc)
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if 400 <= status < 500 and code:
                raise MultipartRejected(code, str(exc.response.get("Error", {}).get("Message", code))) from exc
            raise _translate(exc, "complete multipart upload") from exc
        except (TimeoutError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "complete multipart upload") from exc

    async def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort and free the parts; False when there was no such upload (already gone)."""
        try:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _client_error_code(exc) in _MISSING:
                return False
            raise _translate(exc, "abort multipart upload") from exc
        except (TimeoutError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "abort multipart upload") from exc
        return True

    async def ping(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "ping") from exc

    async def ensure_bucket(self, cors_origins: tuple[str, ...]) -> None:
        """Create the bucket with CORS rules for browser uploads (embedded storage and tests)."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.settings.s3_region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.s3_region}
            await self.client.create_bucket(**kwargs)
        await self.client.put_bucket_cors(
            Bucket=self.bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": list(cors_origins) or ["*"],
                        "AllowedMethods": ["GET", "HEAD", "POST", "PUT"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": list(CORS_EXPOSE_HEADERS),
                        "MaxAgeSeconds": 3600,
                    }
                ]
            },
        )
