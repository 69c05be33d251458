"""REST adapter for clients without GraphQL: `POST /upload/init` (a presigned PUT) and
`POST /upload/confirm` (verify and save into a new record). Same use cases and error codes as GraphQL;
an AppError raised here is answered `{"error": {"code", "message"}}` with its `http_status` by the
app's exception handlers (app/http_errors.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth import Authenticator
from app.errors import BadUserInput, PayloadTooLarge
from app.jsonbody import MalformedJson, is_json_media_type, loads
from app.policy import ClientOptions
from app.records import Records
from app.tables import UPLOAD_TYPES
from app.uploads import Caller, ExactUpload, Uploads

MAX_BODY = 64 * 1024


async def _json_body(request: Request) -> dict[str, Any]:
    if not is_json_media_type(request.headers.get("content-type", "")):
        raise BadUserInput("send a JSON body with Content-Type: application/json (UTF-8)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes")
    try:
        data = loads(bytes(body))
    except MalformedJson as exc:
        raise BadUserInput(str(exc)) from None
    if not isinstance(data, dict):
        raise BadUserInput("the body must be a JSON object")
    return data


def _str(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadUserInput(f"{name} must be a non-empty string")
    return value


def _size(data: dict[str, Any]) -> int:
    value = data.get("size")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadUserInput("size must be the file's length in bytes (a non-negative integer)")
    return value


def _properties(data: dict[str, Any], upload_property: str) -> list[tuple[str, str | None]]:
    raw = data.get("properties")
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise BadUserInput('properties must be an object such as {"title": "CV"}')
    pairs: list[tuple[str, str | None]] = []
    for name, value in raw.items():
        if name == upload_property:
            raise BadUserInput(f"{name} is the upload property; its value is the key, not a property")
        if value is not None and not isinstance(value, str):
            raise BadUserInput(f"properties.{name[:100]} must be a string or null")
        pairs.append((name, value))
    return pairs


class RestApi:
    def __init__(self, uploads: Uploads, records: Records, auth: Authenticator) -> None:
        self.uploads = uploads
        self.records = records
        self.auth = auth

    def caller(self, request: Request) -> Caller:
        """The one place the REST layer learns who is calling: both endpoints change something, so with
        JWT auth on an anonymous caller gets UNAUTHENTICATED, as GraphQL mutations do."""
        return self.auth.authenticate_writer(request)

    def routes(self) -> list[Route]:
        return [
            Route("/upload/init", self._endpoint(self.init), methods=["POST"]),
            Route("/upload/confirm", self._endpoint(self.confirm), methods=["POST"]),
        ]

    def _endpoint(
        self,
        handler: Callable[[Caller, dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            caller = self.caller(request)
            return JSONResponse(await handler(caller, await _json_body(request)))

        return endpoint

    async def init(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        exact = ExactUpload(str(_str(data, "file_name")), str(_str(data, "content_type")), _size(data))
        table, prop = str(_str(data, "table")), str(_str(data, "property_name"))
        self.records.access.check_create(caller, table)
        p = await self.uploads.presign_put(caller, table, prop, UPLOAD_TYPES, ClientOptions(), exact)
        return {
            "upload_url": p.upload_url,
            "method": p.method,
            "headers": p.headers,
            "key": p.key,
            "url": p.url,
            "expires_at": p.expires_at.isoformat(),
        }

    async def confirm(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        table, prop, key = str(_str(data, "table")), str(_str(data, "property_name")), str(_str(data, "key"))
        pdef = self.uploads.table(table).properties.get(prop)
        if pdef is not None and not pdef.is_upload:
            self.uploads.upload_property(table, prop, UPLOAD_TYPES)  # PROPERTY_TYPE_MISMATCH with its message
        view = await self.records.create(caller, table, [(prop, key), *_properties(data, prop)])
        upload = view.uploads[prop].upload
        url = await self.uploads.url_for(
            upload,
            upload.key or key,
            content_type=upload.content_type,
            expires_in=self.uploads.check_expires_in(None),
            readable=True,
        )
        # A file of a property with `scan: true` has no URL until its scan finds it clean: `scan_status`
        # says so (pending), and the client reads the record later (or asks GraphQL) for its URL.
        return {
            "id": str(view.record.id),
            "url": url,
            "size": upload.size,
            "content_type": upload.content_type,
            "scan_status": upload.scan_status,
        }
