"""GraphQL output types, built from domain objects; resolvers only adapt."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import Any, cast

import strawberry

from app.errors import BadUserInput, PropertyNotFound, PropertyTypeMismatch
from app.graphql.context import Info
from app.graphql.scalars import BigInt, HashObject
from app.models import UploadVersion
from app.records import RecordPage, RecordView
from app.tables import PropertyDef, TableDef
from app.uploads import DEFAULT_GET_EXPIRES_IN, PresignedUpload, Uploads, UploadView


@strawberry.type(description="Everything a browser needs to send one file straight to storage.")
class PresignedUploadUrl:
    upload_url: str = strawberry.field(description="Where to send the file (POST a multipart form, or PUT).")
    upload_url_payload: HashObject = strawberry.field(
        description='Form fields to send as they are, in order, with the file last in a field named "file".'
    )
    method: str = strawberry.field(description='"POST" (form upload) or "PUT" (raw body with `headers`).')
    key: str = strawberry.field(description="The object key; may end in ${filename}, which storage replaces.")
    url: str | None = strawberry.field(description="The file's URL once uploaded, when the key is exact.")
    expires_at: datetime
    max_size: BigInt = strawberry.field(description="Largest accepted file, in bytes.")
    content_types: list[str] = strawberry.field(description="Accepted media types; empty means any.")
    headers: HashObject = strawberry.field(description="Headers the client must send with a PUT; {} for POST.")

    @classmethod
    def from_domain(cls, p: PresignedUpload) -> PresignedUploadUrl:
        return cls(
            upload_url=p.upload_url,
            upload_url_payload=HashObject(p.payload),
            method=p.method,
            key=p.key,
            url=p.url,
            expires_at=p.expires_at,
            max_size=BigInt(p.max_size),
            content_types=p.content_types,
            headers=HashObject(p.headers),
        )


@strawberry.type
class PropertyDefinition:
    name: str
    type: str
    options: HashObject = strawberry.field(description="Options with defaults applied; sizes in KiB.")

    @classmethod
    def from_domain(cls, p: PropertyDef) -> PropertyDefinition:
        return cls(name=p.name, type=p.type, options=HashObject(p.options.as_dict() if p.options else {}))


@strawberry.type(description="A table's definition, so a client can show limits before uploading.")
class Table:
    name: str
    properties: list[PropertyDefinition]

    @classmethod
    def from_domain(cls, t: TableDef) -> Table:
        return cls(name=t.name, properties=[PropertyDefinition.from_domain(p) for p in t.properties.values()])


@strawberry.type
class UploadVersionDetail:
    name: str
    status: str = strawberry.field(description="pending | ready | failed")
    url: str | None
    width: int | None
    height: int | None
    size: BigInt | None
    format: str | None
    error: str | None


# The URL resolvers below are plain functions: with the fast signer (app/sigv4.py) a URL is local
# computation, and an async resolver costs graphql-core a coroutine and a task per list item (about
# 300 per page of 100 records). When only botocore can sign (no static keys, ...), a URL is an
# awaitable instead; graphql-core awaits whatever awaitable a resolver returns, and `_settled` turns
# containers that hold some into one awaitable.


def _settled(values: dict[str, Any], build: Any, names: Iterable[str] | None = None) -> Any:
    """`build(values)`, once every awaitable among the values (of `names`, default all) is replaced
    by its result."""
    pending = [
        name
        for name in (values if names is None else names)
        if not (values[name] is None or isinstance(values[name], str)) and inspect.isawaitable(values[name])
    ]
    if not pending:
        return build(values)

    async def settle() -> Any:
        for name in pending:
            values[name] = await values[name]
        return build(values)

    return settle()


def _as_field(value: str | Awaitable[str] | None) -> str | None:
    """A resolver's result as graphql-core takes it: the value, or an awaitable it will await."""
    return cast("str | None", value)


# Fields resolved once per record or file of a page, whose resolvers use nothing of `info` but
# `info.context`: graphql-core calls them without Strawberry's per-call wrapping (app/graphql/direct.py).
DIRECT_RESOLVERS = (
    ("Record", "properties"),
    ("Record", "property"),
    ("Record", "property_upload"),
    ("PropertyUpload", "url"),
    ("PropertyUpload", "versions"),
    ("PropertyUpload", "version_details"),
)


def _readable(info: Info, view: RecordView) -> bool:
    owner = view.record.owner
    return owner is None or owner == info.context.caller.subject


@strawberry.type(description="A file saved in a record property, with its URLs resolved for the caller.")
class PropertyUpload:
    _view: strawberry.Private[UploadView]
    _readable: strawberry.Private[bool]
    _expires_in: strawberry.Private[int]
    file_name: str | None
    extension: str | None
    size: BigInt | None
    content_type: str | None
    width: int | None
    height: int | None

    def _url(self, info: Info, key: str, content_type: str | None) -> str | Awaitable[str] | None:
        return info.context.uploads.resolve_url(
            self._view.upload, key, content_type=content_type, expires_in=self._expires_in, readable=self._readable
        )

    def _version(self, name: str) -> UploadVersion:
        for v in self._view.versions:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self._view.versions) or "none"
        raise BadUserInput(f"no version named {name[:60]!r}; this file has: {known}")

    @strawberry.field(description="The original's URL, or the named version's (null until that version is ready).")
    def url(self, info: Info, version: str | None = None) -> str | None:
        upload = self._view.upload
        if version is None:
            return _as_field(self._url(info, upload.key, upload.content_type)) if upload.key else None
        v = self._version(version)
        return _as_field(self._url(info, v.key, None)) if v.status == "ready" else None

    @strawberry.field(description="{name: url} of the versions that are ready.")
    def versions(self, info: Info, names: list[str] | None = None) -> HashObject:
        wanted = [self._version(n) for n in names] if names is not None else self._view.versions
        urls = {v.name: self._url(info, v.key, None) for v in wanted if v.status == "ready"}
        return cast(HashObject, _settled(urls, HashObject))

    @strawberry.field
    def version_details(self, info: Info) -> list[UploadVersionDetail]:
        versions = self._view.versions
        urls = {str(i): self._url(info, v.key, None) if v.status == "ready" else None for i, v in enumerate(versions)}

        def build(resolved: dict[str, Any]) -> list[UploadVersionDetail]:
            return [
                UploadVersionDetail(
                    name=v.name,
                    status=v.status if v.status in ("ready", "failed") else "pending",
                    url=resolved[str(i)],
                    width=v.width,
                    height=v.height,
                    size=BigInt(v.size) if v.size is not None else None,
                    format=v.format,
                    error=v.error,
                )
                for i, v in enumerate(versions)
            ]

        return cast("list[UploadVersionDetail]", _settled(urls, build))

    @classmethod
    def from_view(cls, view: UploadView, readable: bool, expires_in: int) -> PropertyUpload:
        u = view.upload
        return cls(
            _view=view,
            _readable=readable,
            _expires_in=expires_in,
            file_name=u.file_name,
            extension=Uploads.extension(u),
            size=BigInt(u.size) if u.size is not None else None,
            content_type=u.content_type,
            width=u.width,
            height=u.height,
        )


def _as_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@strawberry.type
class Record:
    _view: strawberry.Private[RecordView]
    id: strawberry.ID
    table: str
    created_at: datetime
    updated_at: datetime

    def _pdef(self, info: Info, name: str) -> PropertyDef:
        tdef = info.context.uploads.table(self.table)
        pdef = tdef.properties.get(name)
        if pdef is None:
            raise PropertyNotFound(f"table {self.table!r} has no property {name[:100]!r}")
        return pdef

    def _upload_url(self, info: Info, name: str, expires_in: int) -> str | Awaitable[str] | None:
        view = self._view.uploads.get(name)
        if view is None:
            return None
        upload = view.upload
        return info.context.uploads.resolve_url(
            upload,
            upload.key or "",
            content_type=upload.content_type,
            expires_in=expires_in,
            readable=_readable(info, self._view),
        )

    @strawberry.field(description="All property values; upload properties as their URL (signed if private).")
    def properties(self, info: Info) -> HashObject:
        values: dict[str, Any] = dict(self._view.record.properties)
        for name in self._view.uploads:
            values[name] = self._upload_url(info, name, DEFAULT_GET_EXPIRES_IN)
        return cast(HashObject, _settled(values, HashObject, self._view.uploads))

    @strawberry.field(description="One property as a string; an upload property gives its URL.")
    def property(self, info: Info, name: str) -> str | None:
        pdef = self._pdef(info, name)
        if pdef.is_upload:
            return _as_field(self._upload_url(info, name, DEFAULT_GET_EXPIRES_IN))
        return _as_string(self._view.record.properties.get(name))

    @strawberry.field(description="The file in an upload property; private URLs are signed for expires_in seconds.")
    def property_upload(self, info: Info, name: str, expires_in: int | None = None) -> PropertyUpload | None:
        pdef = self._pdef(info, name)
        if not pdef.is_upload:
            raise PropertyTypeMismatch(f"property {self.table}.{name} is a {pdef.type}, not an upload")
        seconds = info.context.uploads.check_expires_in(expires_in)
        view = self._view.uploads.get(name)
        return None if view is None else PropertyUpload.from_view(view, _readable(info, self._view), seconds)

    @classmethod
    def from_view(cls, view: RecordView) -> Record:
        r = view.record
        return cls(
            _view=view, id=strawberry.ID(str(r.id)), table=r.table, created_at=r.created_at, updated_at=r.updated_at
        )


@strawberry.type
class RecordCollection:
    results: list[Record]
    total_entries: int
    total_pages: int
    has_next_page: bool

    @classmethod
    def from_domain(cls, page: RecordPage) -> RecordCollection:
        return cls(
            results=[Record.from_view(v) for v in page.results],
            total_entries=page.total_entries,
            total_pages=page.total_pages,
            has_next_page=page.has_next_page,
        )
