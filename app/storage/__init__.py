"""Object storage behind one protocol (app/storage/base.py); adapters live beside it."""

from app.storage.base import (
    FILENAME_VAR,
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

__all__ = [
    "FILENAME_VAR",
    "Capabilities",
    "MultipartRejected",
    "ObjectHead",
    "ObjectHeaders",
    "PreconditionFailed",
    "PresignedRequest",
    "Storage",
    "StoredPart",
    "UploadGrant",
]
