"""Every failure a client can cause or meet, one class each, with the code the API reports.

The transport layers (GraphQL, REST) map `AppError.code` to `extensions.code` or to a JSON error body
and `http_status`; nothing else in the app decides how an error is shown.
"""

from __future__ import annotations


class AppError(Exception):
    """Base: a failure with a stable machine code and a message that says what to do."""

    code = "INTERNAL_SERVER_ERROR"
    http_status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadUserInput(AppError):
    """An argument is malformed (wrong shape, out of range, unknown name)."""

    code, http_status = "BAD_USER_INPUT", 400


class TableNotFound(AppError):
    """The named table is not declared in the schema folder."""

    code, http_status = "TABLE_NOT_FOUND", 404


class PropertyNotFound(AppError):
    """The table has no property of that name."""

    code, http_status = "PROPERTY_NOT_FOUND", 404


class PropertyTypeMismatch(AppError):
    """The property exists but its type does not fit the operation (e.g. image_presign_url on an attachment)."""

    code, http_status = "PROPERTY_TYPE_MISMATCH", 422


class RecordNotFound(AppError):
    """No record with that id (or not one the caller may see)."""

    code, http_status = "RECORD_NOT_FOUND", 404


class ForeignUpload(AppError):
    """The URL or key is not an object this server issued for that table and property."""

    code, http_status = "FOREIGN_UPLOAD", 422


class UploadNotFound(AppError):
    """The upload was issued but no object is in storage at that key."""

    code, http_status = "UPLOAD_NOT_FOUND", 422


class UploadExpired(AppError):
    """The presigned upload expired before it was saved into a record."""

    code, http_status = "UPLOAD_EXPIRED", 422


class UploadAlreadyAttached(AppError):
    """The upload is already saved into another record or property."""

    code, http_status = "UPLOAD_ALREADY_ATTACHED", 409


class UploadTooLarge(AppError):
    """The stored object is bigger than the property's (or the presign's) limit."""

    code, http_status = "UPLOAD_TOO_LARGE", 413


class UploadTooSmall(AppError):
    """The stored object is smaller than the property's (or the presign's) minimum."""

    code, http_status = "UPLOAD_TOO_SMALL", 422


class ContentTypeNotAllowed(AppError):
    """The content type is not in the property's allowlist."""

    code, http_status = "CONTENT_TYPE_NOT_ALLOWED", 415


class ContentMismatch(AppError):
    """The bytes in storage are not what the declared content type says (e.g. HTML named .png)."""

    code, http_status = "CONTENT_MISMATCH", 415


class Unauthenticated(AppError):
    """A token is required, or the one given is invalid or expired."""

    code, http_status = "UNAUTHENTICATED", 401


class Forbidden(AppError):
    """The caller is known but may not do this (e.g. change another user's record)."""

    code, http_status = "FORBIDDEN", 403


class StorageUnavailable(AppError):
    """Object storage could not be reached or answered with a server error; retry later."""

    code, http_status = "STORAGE_UNAVAILABLE", 503


class TooManyRequests(AppError):
    """The caller exceeded a rate or pending-upload limit."""

    code, http_status = "TOO_MANY_REQUESTS", 429


class QueueUnavailable(AppError):
    """The job queue could not be reached or refused a request; retry later."""

    code, http_status = "QUEUE_UNAVAILABLE", 503


class PayloadTooLarge(AppError):
    """The request body (a GraphQL document with its variables) is over MAX_BODY_BYTES."""

    code, http_status = "PAYLOAD_TOO_LARGE", 413


class DatabaseUnavailable(AppError):
    """The database could not be reached; nothing was changed, retry later."""

    code, http_status = "DATABASE_UNAVAILABLE", 503


class ScannerUnavailable(AppError):
    """The virus scanner (clamd) could not be reached or could not scan now; the file stays unserved, retry later."""

    code, http_status = "SCANNER_UNAVAILABLE", 503
