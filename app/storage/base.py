"""What the use cases need from object storage, whatever the backend: the `Storage` protocol, the value
objects it speaks in, and the errors it raises besides `app.errors.StorageUnavailable`.

Adapters (app/storage/s3.py, app/storage/azure.py) implement it and translate their SDK's errors into
these; the use cases, the worker and the sweep import only this module, never an SDK. One contract
suite (tests/storage/) runs against every adapter.

Keys are server-made. A client can only ever write to a quarantine key (`cache/<table>/<property>/
<token>/<file name>`); the server promotes a verified object to its permanent key (the same without
`cache/`) with `copy`, conditional on the ETag it verified.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

FILENAME_VAR = "${filename}"


@dataclass(frozen=True)
class ObjectHead:
    """An object as storage reports it (never as a client claims it)."""

    size: int
    content_type: str
    content_disposition: str | None
    etag: str  # without quotes
    last_modified: datetime  # aware, UTC
    checksum_sha256: str | None = None  # base64; only when asked for and storage keeps one
    cache_control: str | None = None


@dataclass(frozen=True)
class ObjectHeaders:
    """What the server sets on an object it writes itself (a promoted original, a version)."""

    content_type: str
    content_disposition: str | None = None  # the whole header value
    cache_control: str | None = None
    public: bool = False  # readable by anyone (S3: ACL public-read); False: private


@dataclass(frozen=True)
class UploadGrant:
    """What one presigned upload allows, in the backend's own terms once signed.

    A backend enforces what it can (S3 signs all of it into a POST policy or a PUT; Azure's SAS can
    bind only the blob, the permissions and the expiry): the save-time checks and the promotion are
    the defence for the rest.
    """

    key: str  # exact; a form POST's key may end in FILENAME_VAR
    expires_in: int  # seconds
    max_size: int  # bytes
    min_size: int = 0
    content_type: str | None = None  # the exact type the object must be stored with
    # Form POST without an exact type: with `client_sets_content_type` the payload carries an empty
    # Content-Type for the client to fill (starting with `content_type_prefix`); without it no type
    # is sent and storage records its default (binary/octet-stream), corrected at promotion.
    client_sets_content_type: bool = False
    content_type_prefix: str = ""
    size: int | None = None  # exact length (PUT)
    checksum_sha256: str | None = None  # base64 SHA-256 the stored bytes must have (PUT)
    content_disposition: str | None = None  # header value the quarantined object is stored with
    cache_control: str | None = None


@dataclass(frozen=True)
class PresignedRequest:
    """How the client sends the file: POST `fields` (in order, the file last, named "file") as a
    multipart form, or PUT the raw body with exactly `headers`."""

    method: str  # "POST" | "PUT"
    url: str
    fields: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredPart:
    part_number: int
    etag: str
    size: int


@dataclass(frozen=True)
class Capabilities:
    form_post: bool  # presign_post is available (S3 POST policies); else every upload is a PUT
    max_single_upload: int  # bytes one POST/PUT may carry
    max_parts: int  # parts (S3) or blocks (Azure) of one multipart upload
    min_part_size: int  # every part but the last
    max_part_size: int


class PreconditionFailed(Exception):
    """A conditional operation was refused: the object is not (or no longer) the one expected."""


class MultipartRejected(Exception):
    """Storage refused to complete a multipart upload; `code` is the backend's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Storage(Protocol):
    """One bucket (S3) or container (Azure). Every method raises `app.errors.StorageUnavailable` when
    storage cannot be reached or answers with a server error."""

    capabilities: Capabilities

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None:
        """The bucket is reachable (for /readyz)."""

    async def ensure_bucket(self, cors_origins: Sequence[str]) -> None:
        """Create the bucket/container if missing, with CORS rules for browser uploads (embedded storage, tests)."""

    # -- URLs: local computation, no request reaches storage ---------------------------------------
    def public_url(self, key: str) -> str:
        """The object's permanent, unsigned URL (what a public file resolves to without a CDN)."""

    def key_from_url(self, value: str) -> str | None:
        """The key of a URL that points into this bucket in any of the forms storage or a CDN answers
        (percent-encoded or not, `+` for a space in S3's Location); None for a foreign URL."""

    async def presign_post(self, grant: UploadGrant) -> PresignedRequest:
        """A form POST (only when `capabilities.form_post`)."""

    async def presign_put(self, grant: UploadGrant) -> PresignedRequest: ...

    def presign_get_now(
        self, key: str, expires_in: int, *, content_disposition: str | None = None, content_type: str | None = None
    ) -> str | None:
        """A signed GET computed synchronously, or None when only `presign_get` can sign it."""

    async def presign_get(
        self, key: str, expires_in: int, *, content_disposition: str | None = None, content_type: str | None = None
    ) -> str: ...

    # -- reads -------------------------------------------------------------------------------------
    async def head(self, key: str, *, checksum: bool = False) -> ObjectHead | None:
        """None when there is no such object."""

    async def probe(self, key: str, length: int, *, checksum: bool = False) -> tuple[ObjectHead, bytes] | None:
        """The head and the first `length` bytes (b"" for an empty object), in as few requests as the
        backend allows; None when there is no such object."""

    async def read_range(self, key: str, start: int, length: int) -> bytes: ...

    async def get(self, key: str) -> bytes:
        """The whole object (version building reads originals of bounded size)."""

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The object in chunks of at most `chunk_size` bytes, never held whole in memory (scanning)."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a key prefix of one upload, never the whole bucket)."""

    # -- writes by the server ----------------------------------------------------------------------
    async def put(self, key: str, data: bytes, headers: ObjectHeaders) -> None: ...

    async def copy(self, source: str, destination: str, *, if_match: str, headers: ObjectHeaders) -> ObjectHead:
        """Server-side copy, only while `source` still has the ETag `if_match` (else PreconditionFailed;
        a missing source is PreconditionFailed too). The copy gets `headers`, not the source's.
        Objects above the backend's single-copy limit are copied in parts. Returns the copy's head."""

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete objects (missing ones are fine), in batches of what the backend allows."""

    # -- multipart (S3 multipart upload; Azure Put Block / Put Block List) -------------------------
    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        """Start one; returns its upload id. The object's headers are fixed here, by the server."""

    async def presign_upload_part(self, key: str, upload_id: str, part_number: int, expires_in: int) -> str:
        """A PUT URL for one part (1-based part number)."""

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """The parts stored so far; None when there is no such multipart upload."""

    async def complete_multipart_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        """Assemble (part number, ETag) pairs; a refusal is MultipartRejected."""

    async def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """False when there was no such upload."""
