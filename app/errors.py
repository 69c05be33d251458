"""Every failure a client can cause or meet, one class each, with the code the API reports.

Each code is defined here once, with a one-line docstring; docs/errors.md is generated from these
classes (`describe()`, tools/errors_doc.py) and a test fails when the two drift. app/http_errors.py
turns an error into a response (`{"errors": [...]}` on GraphQL, `{"error": {...}}` elsewhere, with
`http_status`); nothing else in the app decides how an error is shown.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class RemoteUrlForbidden(AppError):
    """value_upload's remote_url names an origin or resolves to an address the server may not fetch from."""

    code, http_status = "REMOTE_URL_FORBIDDEN", 403


class RemoteFetchFailed(AppError):
    """value_upload's remote_url could not be fetched: an error status, a timeout, a refused connection or TLS."""

    code, http_status = "REMOTE_FETCH_FAILED", 422


class PdfRendererUnavailable(AppError):
    """HTML cannot be rendered to PDF on this server now (its Pango library is missing); send the PDF itself."""

    code, http_status = "PDF_RENDERER_UNAVAILABLE", 503


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
    """The request body is over MAX_BODY_BYTES (64 KiB on the REST endpoints)."""

    code, http_status = "PAYLOAD_TOO_LARGE", 413


class DatabaseUnavailable(AppError):
    """The database could not be reached; nothing was changed, retry later."""

    code, http_status = "DATABASE_UNAVAILABLE", 503


class ScannerUnavailable(AppError):
    """The virus scanner (clamd) could not be reached or could not scan now; the file stays unserved, retry later."""

    code, http_status = "SCANNER_UNAVAILABLE", 503


class InternalError(AppError):
    """A bug: the server logs it with its traceback; the message is masked unless DEBUG is on."""

    code, http_status = "INTERNAL_SERVER_ERROR", 500


class GraphQLParseFailed(AppError):
    """The GraphQL document is not GraphQL (a syntax error, or more tokens than GRAPHQL_MAX_TOKENS)."""

    code, http_status = "GRAPHQL_PARSE_FAILED", 400


class GraphQLValidationFailed(AppError):
    """The GraphQL document does not fit the schema or the depth and alias limits."""

    code, http_status = "GRAPHQL_VALIDATION_FAILED", 400


class NotFound(AppError):
    """No route answers at this path (or GraphiQL is switched off)."""

    code, http_status = "NOT_FOUND", 404


class MethodNotAllowed(AppError):
    """The route exists but does not answer this HTTP method; the Allow header lists those it does."""

    code, http_status = "METHOD_NOT_ALLOWED", 405


@dataclass(frozen=True)
class Described:
    """One row of the error table in the docs."""

    code: str
    http_status: int
    doc: str


def describe() -> list[Described]:
    """Every error code with its HTTP status and one-line meaning, in declaration order."""
    return [
        Described(cls.code, cls.http_status, (cls.__doc__ or "").strip())
        for cls in globals().values()
        if isinstance(cls, type) and issubclass(cls, AppError) and cls is not AppError
    ]
