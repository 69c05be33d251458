"""The Azure Blob Storage adapter: the `Storage` protocol (app/storage/base.py) on two containers.

Server-side calls go through the maintained SDK (azure-storage-blob, its aio client); browsers get
service SAS URLs signed here with the account key, without a request to storage.

What Azure can and cannot enforce, and what stands in for the rest:
- A SAS binds the blob, the permissions and the expiry, nothing else: not the size, not the type,
  not the headers a client sends (request-header binding exists only for user-delegation SAS). So a
  presigned PUT allows create and write of one quarantine blob until expiry, and the save-time checks
  and the promotion (a server-side copy conditional on the verified ETag, with server-set headers)
  are the defence, as on S3.
- Reading is per container: a container either allows anonymous reads of its blobs or not, there is
  no per-blob ACL. So there are two containers. `AzureConfig.container` is private: the quarantine,
  multipart blocks and markers, private files and their versions. `AzureConfig.public_container`
  (anonymous blob reads, or behind a CDN) receives what the server writes with
  `ObjectHeaders.public`: promoted public files and their versions. A key names the same object in
  either; reads of a permanent key look in the public container, then the private one; quarantine
  keys live only in the private one.
- Multipart uploads are Put Block / Put Block List. Azure has no upload session: the server records
  one in a marker blob next to the object (`<key>.multipart`, written only with the account key, so
  no SAS can touch it) holding the upload id and the headers Put Block List applies at completion.
  Uncommitted blocks are invisible to a plain listing and to Delete Blob; this adapter lists them
  and discards them (Put Blob over them, then Delete Blob) wherever it deletes a quarantine key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob import (
    BlobBlock,
    BlobProperties,
    BlobSasPermissions,
    BlockState,
    ContentSettings,
    CorsRule,
    generate_blob_sas,
)
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient, LinearRetry

from app.errors import StorageUnavailable
from app.keys import QUARANTINE
from app.settings import AZURE_ACCOUNT_NAME, AZURE_CONTAINER_NAME, Secret, Settings, SettingsError
from app.storage.base import (
    Capabilities,
    MultipartRejected,
    ObjectHead,
    ObjectHeaders,
    PreconditionFailed,
    PresignedRequest,
    Storage,
    StoredPart,
    UploadGrant,
)

log = logging.getLogger(__name__)

# The REST API version of every server-side call, pinned so that behaviour does not move with SDK
# upgrades; the newest one both the SDK and Azurite (the tests' and `make run`'s emulator) speak.
API_VERSION = "2026-06-06"

MIB = 1024 * 1024
# Azure's block blob limits (API versions 2019-12-12 and later).
MAX_PUT_BLOB = 5000 * MIB  # one Put Blob
MAX_BLOCK = 4000 * MIB  # one Put Block
MAX_BLOCKS = 50_000  # committed blocks of one blob
# Put Block From URL copies this much per block when promoting; more only when 50,000 blocks of it
# would not cover the blob.
COPY_BLOCK = 100 * MIB
COPY_CONCURRENCY = 4
# Blob Batch: at most 256 subrequests per batch.
BATCH_LIMIT = 256

MARKER_SUFFIX = ".multipart"
_MARKER_UPLOAD_ID = "multipart_upload_id"
# A read SAS on the source of a server-side copy, used by Azure itself at once.
_COPY_SOURCE_EXPIRES_IN = 3600
_DEFAULT_TYPE = "application/octet-stream"
_IO_ERRORS = (AzureError, OSError, TimeoutError)

_ACCOUNT = re.compile(AZURE_ACCOUNT_NAME)
_CONTAINER = re.compile(AZURE_CONTAINER_NAME)

T = TypeVar("T")


@dataclass(frozen=True)
class AzureConfig:
    """Everything the adapter needs: the account, its key, its containers and where they are reached."""

    account: str
    key: Secret
    container: str  # private: quarantine, multipart, private files
    # Public files and their versions; None: no file may be public (services.py checks the tables).
    public_container: str | None = None
    # The blob service endpoint, e.g. an emulator's `http://127.0.0.1:10000/devstoreaccount1` or a
    # sovereign cloud's; None: `https://<account>.blob.core.windows.net`.
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if not _ACCOUNT.match(self.account):
            raise SettingsError(f"Azure account name {self.account!r} must be 3-24 lowercase letters and digits")
        for name in filter(None, (self.container, self.public_container)):
            if not _CONTAINER.match(name):
                raise SettingsError(
                    f"Azure container name {name!r} must be 3-63 lowercase letters, digits and single hyphens"
                )
        if self.public_container == self.container:
            raise SettingsError("the public container must differ from the private one")
        try:
            base64.b64decode(self.key.value, validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError("the Azure account key is not valid base64") from None

    @property
    def blob_endpoint(self) -> str:
        return (self.endpoint or f"https://{self.account}.blob.core.windows.net").rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureConfig:
        missing = [
            name
            for name, value in (
                ("AZURE_STORAGE_ACCOUNT", settings.azure_storage_account),
                ("AZURE_STORAGE_KEY", settings.azure_storage_key.value),
                ("AZURE_CONTAINER", settings.azure_container),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                f"STORAGE_BACKEND=azure needs {', '.join(missing)} (only `make run` starts an embedded Azurite)"
            )
        assert settings.azure_storage_account and settings.azure_container
        return cls(
            account=settings.azure_storage_account,
            key=settings.azure_storage_key,
            container=settings.azure_container,
            public_container=settings.azure_public_container,
            endpoint=settings.azure_blob_endpoint,
        )


def block_id(number: int) -> str:
    """The block id of part `number` (1-based) or of block `number` of a copy: same length for every
    block of a blob, as Azure requires. This is the id before base64 (the SDK encodes it)."""
    if not 0 <= number <= 999_999:
        raise ValueError(f"block number {number} is out of range")
    return f"{number:06d}"


def encoded_block_id(number: int) -> str:
    """The block id as it goes on the wire (`blockid=` of a Put Block URL)."""
    return base64.b64encode(block_id(number).encode()).decode()


def _part_number(block_name: str) -> int | None:
    return int(block_name) if len(block_name) == 6 and block_name.isdigit() else None


def _quoted(etag: str) -> str:
    return f'"{etag.strip(chr(34))}"'


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _unavailable(exc: BaseException, action: str) -> StorageUnavailable:
    log.warning("azure storage %s failed: %r", action, exc)
    return StorageUnavailable(f"object storage is unavailable ({action}); try again shortly")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _head(props: BlobProperties, size: int | None = None) -> ObjectHead:
    settings = props.content_settings
    return ObjectHead(
        size=int(props.size if size is None else size),
        content_type=settings.content_type or _DEFAULT_TYPE,
        content_disposition=settings.content_disposition or None,
        etag=str(props.etag).strip('"'),
        last_modified=_aware(props.last_modified),
        cache_control=settings.cache_control or None,
    )


def _content_settings(headers: ObjectHeaders) -> ContentSettings:
    return ContentSettings(
        content_type=headers.content_type,
        content_disposition=headers.content_disposition,
        cache_control=headers.cache_control,
    )


def _total_size(downloader: Any) -> int:
    """The whole blob's size from a ranged answer ("bytes 0-511/12345": after the slash)."""
    return int(str(downloader.properties.content_range).rsplit("/", 1)[1])


def _quarantined(key: str) -> bool:
    return key.startswith(QUARANTINE)


class AzureStorage:
    """Azure Blob Storage: a private container and, for public files, a public one."""

    capabilities = Capabilities(
        form_post=False,
        max_single_upload=MAX_PUT_BLOB,
        max_parts=MAX_BLOCKS,
        min_part_size=1,  # Azure has no minimum block size
        max_part_size=MAX_BLOCK,
    )

    def __init__(self, config: AzureConfig) -> None:
        self.config = config
        self._endpoint = config.blob_endpoint
        self._base = f"{self._endpoint}/{config.container}"
        self._public_base = f"{self._endpoint}/{config.public_container}" if config.public_container else None
        self._https = self._endpoint.startswith("https://")
        self._service: BlobServiceClient | None = None
        self._private: ContainerClient | None = None
        self._public: ContainerClient | None = None

    # -- life cycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._service = BlobServiceClient(
            self._endpoint,
            credential={"account_name": self.config.account, "account_key": self.config.key.value},
            api_version=API_VERSION,
            # As the S3 adapter (botocore's standard mode): connect within 3 s, one retry after a random
            # wait of up to a second, then give up; the SDK's default waits 15 s and more between four tries.
            connection_timeout=3,
            read_timeout=20,
            retry_policy=LinearRetry(backoff=0, random_jitter_range=1, retry_total=1),
        )
        self._private = self._service.get_container_client(self.config.container)
        if self.config.public_container:
            self._public = self._service.get_container_client(self.config.public_container)

    async def close(self) -> None:
        if self._service is not None:
            await self._service.close()
        self._service = None
        self._private = self._public = None

    @property
    def container(self) -> ContainerClient:
        """The private container."""
        if self._private is None:
            raise RuntimeError("AzureStorage.start() was not awaited")
        return self._private

    @property
    def public_container(self) -> ContainerClient | None:
        self.container  # noqa: B018 (raises when not started)
        return self._public

    @property
    def service(self) -> BlobServiceClient:
        if self._service is None:
            raise RuntimeError("AzureStorage.start() was not awaited")
        return self._service

    def _containers(self) -> list[ContainerClient]:
        return [self.container, *filter(None, [self._public])]

    def _write_container(self, key: str, headers: ObjectHeaders) -> ContainerClient:
        """Where the server writes `key`: a public object of a permanent key goes to the public
        container; everything else (quarantine above all) to the private one."""
        if headers.public and self._public is not None and not _quarantined(key):
            return self._public
        return self.container

    def _read_containers(self, key: str) -> list[ContainerClient]:
        """Where `key` may be, in the order to look: a permanent key in the public container first
        (public images are what the version worker reads most), then the private one."""
        if self._public is None or _quarantined(key):
            return [self.container]
        return [self._public, self.container]

    async def _call(self, action: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one SDK call; anything but success becomes StorageUnavailable."""
        try:
            return await operation()
        except _IO_ERRORS as exc:
            raise _unavailable(exc, action) from exc

    async def _found(self, key: str, action: str, operation: Callable[[BlobClient], Awaitable[T]]) -> T | None:
        """`operation` on the blob `key` in the first container that has it; None when none has it."""
        for container in self._read_containers(key):
            try:
                return await operation(container.get_blob_client(key))
            except _IO_ERRORS as exc:
                if _status(exc) != 404:
                    raise _unavailable(exc, action) from exc
        return None

    async def _required(self, key: str, action: str, operation: Callable[[BlobClient], Awaitable[T]]) -> T:
        """As `_found`, for reads of an object that must exist: a missing one is StorageUnavailable."""
        found = await self._found(key, action, operation)
        if found is None:
            raise _unavailable(FileNotFoundError(key), action)
        return found

    async def ping(self) -> None:
        """Both containers exist, and the private one allows no anonymous access (else a private
        file's plain URL would serve it to anyone)."""
        props = await self._container_properties(self.container, self.config.container)
        if props.public_access:
            log.error(
                "azure container %s allows anonymous reads (%s): private files would be readable by URL",
                self.config.container,
                props.public_access,
            )
            raise StorageUnavailable(
                f"container {self.config.container} allows anonymous reads ({props.public_access}); private files "
                "would be readable by anyone: set its access level to private"
            )
        if self._public is not None and self.config.public_container:
            await self._container_properties(self._public, self.config.public_container)

    async def _container_properties(self, container: ContainerClient, name: str) -> Any:
        try:
            return await container.get_container_properties()
        except _IO_ERRORS as exc:
            if _status(exc) == 404:
                log.warning("azure container %s does not exist", name)
                raise StorageUnavailable(f"container {name} does not exist; create it") from exc
            raise _unavailable(exc, "ping") from exc

    async def ensure_bucket(self, cors_origins: Sequence[str]) -> None:
        """Create the containers when missing: the private one without anonymous access, the public one
        with anonymous reads of blobs (never a listing); and the account's CORS rules for browsers."""
        await self._ensure(self.container, None)
        if self._public is not None:
            await self._ensure(self._public, "blob")
        # CORS is a property of the account's blob service, not of a container.
        rule = CorsRule(
            list(cors_origins) or ["*"],
            ["GET", "HEAD", "PUT", "OPTIONS"],
            allowed_headers=["*"],
            exposed_headers=["ETag", "Content-MD5", "x-ms-content-crc64", "x-ms-request-id"],
            max_age_in_seconds=3600,
        )
        await self._call("set CORS", lambda: self.service.set_service_properties(cors=[rule]))

    async def _ensure(self, container: ContainerClient, access: str | None) -> None:
        try:
            await container.create_container(public_access=access)
        except ResourceExistsError:
            await self._set_access(container, access)
        except _IO_ERRORS as exc:
            raise _unavailable(exc, "create container") from exc

    async def _set_access(self, container: ContainerClient, access: str | None) -> None:
        """An existing container's anonymous access level, keeping its stored access policies."""
        policy = await self._call("get container access", container.get_container_access_policy)
        if policy.get("public_access") == access:
            return
        identifiers = {i.id: i.access_policy for i in policy.get("signed_identifiers") or []}
        await self._call("set container access", lambda: container.set_container_access_policy(identifiers, access))

    # -- URLs ---------------------------------------------------------------------------------------
    @staticmethod
    def _blob_url(base: str, key: str) -> str:
        return f"{base}/{quote(key, safe='/~')}"

    def public_url(self, key: str) -> str:
        """The public container's URL of a permanent key; the private container's for a quarantine key
        (the value a client saves, never readable without a SAS) or when there is no public container."""
        base = self._public_base if self._public_base and not _quarantined(key) else self._base
        return self._blob_url(base, key)

    def key_from_url(self, value: str) -> str | None:
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 (a malformed port raises here)
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        for base in filter(None, (self._base, self._public_base)):
            b = urlsplit(base)
            prefix = b.path.rstrip("/") + "/"
            if _host(b.scheme, b.netloc) == _host(parts.scheme, parts.netloc) and parts.path.startswith(prefix):
                try:
                    key = unquote(parts.path[len(prefix) :], errors="strict")
                except UnicodeDecodeError:
                    return None
                return key or None
        return None

    def _sas(self, key: str, permission: BlobSasPermissions, expires_in: int, **overrides: Any) -> str:
        """A service SAS of one blob of the private container."""
        return generate_blob_sas(
            self.config.account,
            self.config.container,
            key,
            account_key=self.config.key.value,
            permission=permission,
            expiry=datetime.now(UTC) + timedelta(seconds=expires_in),
            protocol="https" if self._https else None,
            **overrides,
        )

    async def presign_post(self, grant: UploadGrant) -> PresignedRequest:
        raise RuntimeError("Azure Blob Storage has no form POST uploads (capabilities.form_post): presign a PUT")

    async def presign_put(self, grant: UploadGrant) -> PresignedRequest:
        """Create and write of exactly `grant.key` (a quarantine key) until expiry. Size, type and
        checksum in the grant cannot be bound by a SAS; the save checks them."""
        if not _quarantined(grant.key):
            raise ValueError(f"{grant.key!r} is not a quarantine key: clients write to quarantine only")
        sas = self._sas(grant.key, BlobSasPermissions(create=True, write=True), grant.expires_in)
        headers = {"x-ms-blob-type": "BlockBlob"}
        if grant.content_type:
            headers["Content-Type"] = grant.content_type
        if grant.content_disposition:
            headers["x-ms-blob-content-disposition"] = grant.content_disposition
        if grant.cache_control:
            headers["x-ms-blob-cache-control"] = grant.cache_control
        return PresignedRequest(method="PUT", url=f"{self._blob_url(self._base, grant.key)}?{sas}", headers=headers)

    def presign_get_now(
        self, key: str, expires_in: int, *, content_disposition: str | None = None, content_type: str | None = None
    ) -> str | None:
        """A SAS GET of this one blob of the private container (where every private file is); the
        response headers it names are part of the signature."""
        overrides = {"content_disposition": content_disposition, "content_type": content_type}
        sas = self._sas(key, BlobSasPermissions(read=True), expires_in, **{k: v for k, v in overrides.items() if v})
        return f"{self._blob_url(self._base, key)}?{sas}"

    async def presign_get(
        self, key: str, expires_in: int, *, content_disposition: str | None = None, content_type: str | None = None
    ) -> str:
        url = self.presign_get_now(key, expires_in, content_disposition=content_disposition, content_type=content_type)
        assert url is not None
        return url

    # -- reads --------------------------------------------------------------------------------------
    async def head(self, key: str, *, checksum: bool = False) -> ObjectHead | None:
        """Azure keeps a Content-MD5, never a SHA-256: `checksum_sha256` is always None here (the save
        hashes the blob itself when a SHA-256 was declared)."""

        async def properties(blob: BlobClient) -> ObjectHead:
            return _head(await blob.get_blob_properties())

        return await self._found(key, "head", properties)

    async def probe(self, key: str, length: int, *, checksum: bool = False) -> tuple[ObjectHead, bytes] | None:
        """One ranged GET: its answer carries the blob's properties and its whole size. An empty blob
        has no byte 0 to range over (416): then its properties alone."""
        if length <= 0:
            head = await self.head(key)
            return None if head is None else (head, b"")

        async def first_bytes(blob: BlobClient) -> tuple[ObjectHead, bytes]:
            try:
                downloader = await blob.download_blob(offset=0, length=length)
                first = await downloader.readall()
            except HttpResponseError as exc:
                if _status(exc) != 416:
                    raise
                return _head(await blob.get_blob_properties()), b""
            return _head(downloader.properties, _total_size(downloader)), first

        return await self._found(key, "probe", first_bytes)

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""

        async def read(blob: BlobClient) -> bytes:
            downloader = await blob.download_blob(offset=start, length=length)
            return await downloader.readall()

        return await self._required(key, "read range", read)

    async def get(self, key: str) -> bytes:
        async def read(blob: BlobClient) -> bytes:
            downloader = await blob.download_blob()
            return await downloader.readall()

        return await self._required(key, "get", read)

    async def stream(
        self, key: str, chunk_size: int = 1024 * 1024, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        """One ranged GET per chunk; every chunk only while the blob keeps one ETag (`if_match`, or the
        first chunk's), so the chunks are of one and the same blob. With `if_match`, another blob or
        none is PreconditionFailed."""
        condition: dict[str, Any] = (
            {"etag": _quoted(if_match), "match_condition": MatchConditions.IfNotModified} if if_match else {}
        )

        async def first_chunk(blob: BlobClient) -> tuple[BlobClient, Any, bytes]:
            try:
                downloader = await blob.download_blob(offset=0, length=chunk_size, **condition)
            except HttpResponseError as exc:
                if _status(exc) == 416:  # an empty blob
                    return blob, None, b""
                if _status(exc) == 412:
                    # Azure answers a conditional read of a blob that is not in this container with 412
                    # too: a 404 from its properties sends `_found` on to the next container.
                    await blob.get_blob_properties()
                    raise PreconditionFailed(f"{key} no longer has ETag {if_match}") from exc
                raise
            return blob, downloader, await downloader.readall()

        found = await self._found(key, "stream", first_chunk)
        if found is None:
            if if_match:
                raise PreconditionFailed(f"{key} is gone")
            raise _unavailable(FileNotFoundError(key), "stream")
        blob, downloader, chunk = found
        if downloader is None:
            return
        size, etag = _total_size(downloader), downloader.properties.etag
        offset = len(chunk)
        yield chunk
        while offset < size:
            try:
                downloader = await blob.download_blob(
                    offset=offset, length=chunk_size, etag=etag, match_condition=MatchConditions.IfNotModified
                )
                chunk = await downloader.readall()
            except _IO_ERRORS as exc:
                if if_match and _status(exc) in (404, 412):
                    raise PreconditionFailed(f"{key} changed or vanished while being read") from exc
                raise _unavailable(exc, "stream") from exc
            if not chunk:
                raise _unavailable(EOFError(f"{key}: no bytes at offset {offset} of {size}"), "stream")
            offset += len(chunk)
            yield chunk

    async def list_keys(self, prefix: str) -> list[str]:
        """Every blob under `prefix` in every container it may be in, blobs that hold only uncommitted
        blocks included (a client's Put Blocks that nobody committed: `delete` discards them)."""

        async def names(container: ContainerClient) -> list[str]:
            return [
                blob.name async for blob in container.list_blobs(name_starts_with=prefix, include=["uncommittedblobs"])
            ]

        found: dict[str, None] = {}
        for container in self._containers() if not _quarantined(prefix) else [self.container]:
            found.update(dict.fromkeys(await self._call("list", functools.partial(names, container))))
        return list(found)

    # -- writes by the server -------------------------------------------------------------------------
    async def put(self, key: str, data: bytes, headers: ObjectHeaders) -> None:
        blob = self._write_container(key, headers).get_blob_client(key)
        settings = _content_settings(headers)
        await self._call("put", lambda: blob.upload_blob(data, overwrite=True, content_settings=settings))

    async def copy(
        self, source: str, destination: str, *, if_match: str, headers: ObjectHeaders, size: int | None = None
    ) -> ObjectHead:
        """Put Block From URL in blocks (each conditional on the source's ETag) and one Put Block List
        with the server's headers: the copy appears whole, with its headers, or not at all. Without
        `size` (or for an empty blob, which has no block to hold the condition), Get Blob Properties
        conditional on the ETag comes first. The source is read from the private container (sources
        are quarantined objects); the copy goes where `headers.public` says."""
        src = self.container.get_blob_client(source)
        if not size:
            try:
                props = await src.get_blob_properties(
                    etag=_quoted(if_match), match_condition=MatchConditions.IfNotModified
                )
            except _IO_ERRORS as exc:
                if _status(exc) in (404, 412):
                    raise PreconditionFailed(f"{source} is gone or no longer has ETag {if_match}") from exc
                raise _unavailable(exc, "copy") from exc
            size = int(props.size)
        block = max(COPY_BLOCK, -(-size // MAX_BLOCKS))
        ranges = [(i, start, min(block, size - start)) for i, start in enumerate(range(0, size, block))]
        dest = self._write_container(destination, headers).get_blob_client(destination)
        condition = {"x-ms-source-if-match": _quoted(if_match)}
        gate = asyncio.Semaphore(COPY_CONCURRENCY)

        async def stage(number: int, start: int, length: int) -> None:
            # A fresh read SAS per block: a copy of many blocks may outlast any one expiry.
            sas = self._sas(source, BlobSasPermissions(read=True), _COPY_SOURCE_EXPIRES_IN)
            source_url = f"{self._blob_url(self._base, source)}?{sas}"
            async with gate:
                await dest.stage_block_from_url(block_id(number), source_url, start, length, headers=condition)

        try:
            await asyncio.gather(*(stage(*r) for r in ranges))
            result = await dest.commit_block_list(
                [BlobBlock(block_id(number), BlockState.UNCOMMITTED) for number, _, _ in ranges],
                content_settings=_content_settings(headers),
            )
        except _IO_ERRORS as exc:
            # The source changed (412) or vanished (Azure cannot read it: 404) since it was verified.
            if _status(exc) in (404, 412) or _error_code(exc) in ("SourceConditionNotMet", "CannotVerifyCopySource"):
                raise PreconditionFailed(f"{source} changed or vanished while being copied") from exc
            raise _unavailable(exc, "copy") from exc
        modified = result["last_modified"]
        assert isinstance(modified, datetime)
        return ObjectHead(
            size=size,
            content_type=headers.content_type,
            content_disposition=headers.content_disposition,
            etag=str(result["etag"]).strip('"'),
            last_modified=_aware(modified),
            cache_control=headers.cache_control,
        )

    async def delete(self, keys: Sequence[str]) -> None:
        """Blob Batch, 256 deletions a batch, in every container a key may be in; blobs already gone are
        fine. A quarantine key that Delete Blob does not find may still hold uncommitted blocks (a
        client's Put Block under its SAS): those are discarded too."""
        keys = list(dict.fromkeys(keys))
        missing: list[str] = []
        for container in self._containers():
            mine = keys if container is self._private else [k for k in keys if not _quarantined(k)]
            gone = await self._delete_in(container, mine)
            if container is self._private:
                missing = [k for k in gone if _quarantined(k)]
        for key in missing:
            await self._discard_blocks(self.container.get_blob_client(key))

    async def _delete_in(self, container: ContainerClient, keys: list[str]) -> list[str]:
        """Delete `keys` in one container; returns the ones it did not have."""
        gone: list[str] = []
        for start in range(0, len(keys), BATCH_LIMIT):
            batch = keys[start : start + BATCH_LIMIT]

            async def run(batch: list[str] = batch) -> list[int]:
                responses = await container.delete_blobs(*batch, delete_snapshots="include", raise_on_any_failure=False)
                return [r.status_code async for r in responses]

            statuses = await self._call("delete", run)
            failed = [(k, s) for k, s in zip(batch, statuses, strict=False) if s not in (200, 202, 404)]
            if failed or len(statuses) != len(batch):
                raise StorageUnavailable(
                    f"storage refused to delete {len(failed) or len(batch)} object(s), e.g. {failed[:1] or batch[:1]}"
                )
            gone += [k for k, s in zip(batch, statuses, strict=True) if s == 404]
        return gone

    async def _discard_blocks(self, blob: BlobClient) -> None:
        """Uncommitted blocks are not a blob Delete Blob can reach: Put Blob replaces them (a blob's
        uncommitted blocks go with any Put Blob), then the blob it wrote is deleted."""
        try:
            await blob.get_block_list("uncommitted")
        except _IO_ERRORS as exc:
            if _status(exc) == 404:
                return  # no blob and no blocks
            raise _unavailable(exc, "delete") from exc
        await self._call("delete", lambda: blob.upload_blob(b"", overwrite=True))
        try:
            await blob.delete_blob()
        except _IO_ERRORS as exc:
            if _status(exc) != 404:
                raise _unavailable(exc, "delete") from exc

    # -- multipart: Put Block / Put Block List ------------------------------------------------------
    def _marker(self, key: str) -> BlobClient:
        return self.container.get_blob_client(key + MARKER_SUFFIX)

    async def _open_upload(self, key: str, upload_id: str) -> BlobProperties | None:
        """The marker of an open multipart upload with this id; None when there is none."""
        try:
            props = await self._marker(key).get_blob_properties()
        except _IO_ERRORS as exc:
            if _status(exc) == 404:
                return None
            raise _unavailable(exc, "multipart upload") from exc
        stored = (props.metadata or {}).get(_MARKER_UPLOAD_ID, "")
        return props if upload_id and secrets.compare_digest(stored, upload_id) else None

    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        """Multipart uploads are clients' uploads: their blocks, blob and marker stay in the private
        container whatever `headers.public` says."""
        upload_id = secrets.token_hex(16)
        marker = self._marker(key)
        settings, metadata = _content_settings(headers), {_MARKER_UPLOAD_ID: upload_id}
        await self._call(
            "create multipart upload",
            lambda: marker.upload_blob(b"", overwrite=True, content_settings=settings, metadata=metadata),
        )
        return upload_id

    async def presign_upload_part(self, key: str, upload_id: str, part_number: int, expires_in: int) -> str:
        """Put Block of block `part_number` (write of this one blob; a SAS cannot bind the block id)."""
        if not 1 <= part_number <= MAX_BLOCKS:
            raise ValueError(f"part number {part_number} is outside 1..{MAX_BLOCKS}")
        sas = self._sas(key, BlobSasPermissions(write=True), expires_in)
        blockid = quote(encoded_block_id(part_number), safe="")
        return f"{self._blob_url(self._base, key)}?comp=block&blockid={blockid}&{sas}"

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """The uncommitted blocks; a part's `etag` is its encoded block id (Put Block answers no ETag).
        None when there is no such upload, or its blob is committed already (completed)."""
        if await self._open_upload(key, upload_id) is None:
            return None
        blob = self.container.get_blob_client(key)
        try:
            committed, uncommitted = await blob.get_block_list("all")
        except _IO_ERRORS as exc:
            if _status(exc) == 404:  # no block yet
                return []
            raise _unavailable(exc, "list parts") from exc
        if committed:
            return None
        parts = []
        for b in uncommitted:
            number = _part_number(str(b.id))
            if number is not None and 1 <= number <= MAX_BLOCKS:
                parts.append(StoredPart(number, encoded_block_id(number), int(b.size)))
        return sorted(parts, key=lambda p: p.part_number)

    async def complete_multipart_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        marker = await self._open_upload(key, upload_id)
        if marker is None:
            raise MultipartRejected("NoSuchUpload", "there is no open multipart upload with this id")
        numbers = [n for n, _ in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise MultipartRejected("InvalidPartOrder", "parts must be listed once each, in ascending order")
        for number, etag in parts:
            if not 1 <= number <= MAX_BLOCKS or etag.strip('"') != encoded_block_id(number):
                raise MultipartRejected("InvalidPart", f"part {number} has no block with ETag {etag!r}")
        settings = marker.content_settings
        headers = ContentSettings(
            content_type=settings.content_type,
            content_disposition=settings.content_disposition,
            cache_control=settings.cache_control,
        )
        blob = self.container.get_blob_client(key)
        try:
            await blob.commit_block_list([BlobBlock(block_id(n), BlockState.LATEST) for n in numbers], headers)
        except _IO_ERRORS as exc:
            status = _status(exc)
            if isinstance(exc, HttpResponseError) and status is not None and 400 <= status < 500:
                code = _error_code(exc) or "InvalidBlockList"
                raise MultipartRejected(code, exc.reason or code) from exc
            raise _unavailable(exc, "complete multipart upload") from exc
        try:
            await self._marker(key).delete_blob()
        except _IO_ERRORS as exc:
            # The object is complete (list_parts says so from its committed blocks); a marker left
            # behind goes with the upload's prefix (sweep).
            log.warning("multipart marker of %s not deleted: %r", key, exc)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Nothing is committed: the blob's uncommitted blocks and the marker are discarded at once
        (Azure itself would keep the blocks up to a week). False when there is no such upload."""
        if await self._open_upload(key, upload_id) is None:
            return False
        await self.delete([key, key + MARKER_SUFFIX])
        return True


def _host(scheme: str, netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1].lower()
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host


if TYPE_CHECKING:

    def _implements_the_protocol(storage: AzureStorage) -> Storage:
        return storage  # mypy checks AzureStorage against Storage here
