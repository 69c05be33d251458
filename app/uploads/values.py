"""Value objects and constants the upload use cases share with their callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.models import Upload, UploadVersion
from app.storage.base import ObjectHead
from app.version_spec import VersionSpec

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
    key: str  # the quarantine key the client writes to (may end in ${filename})
    url: str | None  # the quarantine object's URL, the value to save, when the key is exact
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
class Verified:
    """An upload whose object storage has confirmed, ready to attach to `key` (its permanent key)."""

    upload: Upload
    key: str
    head: ObjectHead | None  # None: already attached to this very record property (idempotent)
    file_name: str | None
    content_type: str | None = None  # the verified type the permanent object is stored with

    @property
    def etag(self) -> str:
        assert self.head is not None
        return self.head.etag


@dataclass
class UploadView:
    upload: Upload
    versions: list[UploadVersion]


def version_key(original_key: str, spec: VersionSpec) -> str:
    """Deterministic, next to the permanent original: the same original and transformation always
    land on the same key."""
    prefix = original_key.rsplit("/", 1)[0]
    return f"{prefix}/versions/{spec.name}-{spec.digest()}.{spec.extension}"
