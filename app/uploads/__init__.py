"""The upload use cases, by role: issuing (presign), verifying, promoting and saving, resolving URLs,
discarding, multipart. `Uploads` (app/uploads/facade.py) puts them together; the names below are the
package's public API."""

from app.uploads.facade import Uploads
from app.uploads.issuing import IssuedExact
from app.uploads.multipart import Multipart
from app.uploads.promoting import PromotionResult
from app.uploads.status import Promotion, ScanState, UploadStatus, is_served
from app.uploads.values import (
    ANONYMOUS,
    DEFAULT_GET_EXPIRES_IN,
    MAX_GET_EXPIRES_IN,
    Caller,
    ExactUpload,
    PresignedUpload,
    UploadView,
    Verified,
    utcnow,
    version_key,
)

__all__ = [
    "ANONYMOUS",
    "DEFAULT_GET_EXPIRES_IN",
    "MAX_GET_EXPIRES_IN",
    "Caller",
    "ExactUpload",
    "IssuedExact",
    "Multipart",
    "PresignedUpload",
    "Promotion",
    "PromotionResult",
    "ScanState",
    "UploadStatus",
    "UploadView",
    "Uploads",
    "Verified",
    "is_served",
    "utcnow",
    "version_key",
]
