"""GraphQL output types, built from domain objects; resolvers only adapt."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import Any, Self, cast

import strawberry

from app.errors import BadUserInput, PropertyNotFound, PropertyTypeMismatch
from app.graphql.context import Info
from app.graphql.inputs import RecordsFilterInput, RecordsSortInput, plain
from app.graphql.related import related_loader
from app.graphql.scalars import BigInt, HashObject, JSONDate, JSONPayload
from app.models import UploadVersion
from app.records import DEFAULT_RELATED_LIMIT, RecordPage, RecordView, RelatedSpec
from app.tables import PropertyDef, TableDef
from app.uploads import DEFAULT_GET_EXPIRES_IN, PresignedUpload, Uploads, UploadView


@strawberry.type(description="Everything a browser needs to send one file straight to storage.")
class PresignedUploadUrl:
    """The fields every presign answers with; each mutation returns its platformOS-named type."""

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
    def from_domain(cls, p: PresignedUpload) -> Self:
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


@strawberry.type(description="A presigned upload into any upload property (property_upload_presigned_url).")
class PropertyUploadPresignedUrl(PresignedUploadUrl):
    pass


@strawberry.type(description="A presigned upload into an image (or upload) property (image_presign_url).")
class ImagePresignedUploadUrl(PresignedUploadUrl):
    pass


@strawberry.type(description="A presigned upload into an attachment (or upload) property (attachment_presign_url).")
class AttachmentPresignedUploadUrl(PresignedUploadUrl):
    pass


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
    ("Record", "property_array"),
    ("Record", "property_boolean"),
    ("Record", "property_float"),
    ("Record", "property_int"),
    ("Record", "property_json"),
    ("Record", "property_object"),
    ("Record", "property_upload"),
    ("PropertyUpload", "url"),
    ("PropertyUpload", "versions"),
    ("PropertyUpload", "version_details"),
)


def _readable(info: Info, view: RecordView) -> bool:
    """Private files of a record are its owner's (app/access.py), and its creator's in the answer
    that created it."""
    ctx = info.context
    return view.created or ctx.records.access.can_read_files(ctx.caller, view.record.owner)


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
    scan_status: str | None = strawberry.field(
        description="The virus scan of a property with `scan: true`: pending | clean | infected | failed; null when "
        "the property is not scanned. Only a clean file has a URL."
    )
    scan_result: str | None = strawberry.field(
        description="The signature found (infected) or why the file could not be scanned (failed); else null."
    )

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
            scan_status=u.scan_status,
            scan_result=u.scan_result,
        )


def _as_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _parsed_json(value: Any) -> Any:
    """A string that holds JSON (written with `value`) as the JSON it holds."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


GRAPHQL_INT = 2**31


def _related_spec(
    kind: str,
    table: list[str | None],
    join_on_property: str,
    foreign_property: str,
    filter: RecordsFilterInput | None,
    sort: list[RecordsSortInput] | None,
    limit: int | None,
) -> RelatedSpec:
    tables = tuple(t for t in table if t)
    plain_filter, plain_sort = plain(filter), plain(sort)
    size = 1 if kind == "one" else DEFAULT_RELATED_LIMIT if limit is None else limit
    key = json.dumps([kind, tables, join_on_property, foreign_property, plain_filter, plain_sort, size], sort_keys=True)
    return RelatedSpec(tables, join_on_property, foreign_property, plain_filter, plain_sort, size, key)


@strawberry.type(description="A record of a table, as platformOS has it; upload properties resolve to their files.")
class Record:
    _view: strawberry.Private[RecordView]
    id: strawberry.ID
    table: str
    created_at: JSONDate
    updated_at: JSONDate
    deleted_at: JSONDate | None = strawberry.field(description="Set when the record was deleted (soft delete).")
    user_id: strawberry.ID | None = strawberry.field(description="The record's owner.")
    external_id: strawberry.ID | None

    def _pdef(self, info: Info, name: str) -> PropertyDef:
        tdef = info.context.uploads.table(self.table)
        pdef = tdef.properties.get(name)
        if pdef is None:
            raise PropertyNotFound(f"table {self.table!r} has no property {name[:100]!r}")
        return pdef

    def _plain(self, info: Info, name: str, reader: str) -> Any:
        pdef = self._pdef(info, name)
        if pdef.is_upload:
            raise PropertyTypeMismatch(
                f"property {self.table}.{name} is an upload; read it with property_upload, not {reader}"
            )
        return self._view.record.properties.get(name)

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

    @strawberry.field(description="An array property's items as strings (a single value as a one-item array).")
    def property_array(self, info: Info, name: str) -> list[str] | None:
        value = _parsed_json(self._plain(info, name, "property_array"))
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        return [text for text in (_as_string(item) for item in items) if text is not None]

    @strawberry.field(description="true or false (also from the strings true and false); null otherwise.")
    def property_boolean(self, info: Info, name: str) -> bool | None:
        value = self._plain(info, name, "property_boolean")
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return None

    @strawberry.field(description="The value as a number (also from a numeric string); null otherwise.")
    def property_float(self, info: Info, name: str) -> float | None:
        return _as_number(self._plain(info, name, "property_float"))

    @strawberry.field(description="The value as a whole number (also from a numeric string); null otherwise.")
    def property_int(self, info: Info, name: str) -> int | None:
        value = self._plain(info, name, "property_int")
        number = value if isinstance(value, int) and not isinstance(value, bool) else _as_number(value)
        if number is None or (isinstance(number, float) and not number.is_integer()):
            return None
        if not -GRAPHQL_INT <= number < GRAPHQL_INT:
            raise BadUserInput(
                f"property {name!r} holds {int(number)}, beyond GraphQL's 32-bit Int; read it with property "
                "or property_float"
            )
        return int(number)

    @strawberry.field(description="The value as JSON (a string holding JSON is parsed).")
    def property_json(self, info: Info, name: str) -> JSONPayload | None:
        return cast(JSONPayload, _parsed_json(self._plain(info, name, "property_json")))

    @strawberry.field(description="The value when it is a JSON object (also from a string holding one); else null.")
    def property_object(self, info: Info, name: str) -> HashObject | None:
        value = _parsed_json(self._plain(info, name, "property_object"))
        return HashObject(value) if isinstance(value, dict) else None

    @strawberry.field(description="The file in an upload property; private URLs are signed for expires_in seconds.")
    def property_upload(self, info: Info, name: str, expires_in: int | None = None) -> PropertyUpload | None:
        pdef = self._pdef(info, name)
        if not pdef.is_upload:
            raise PropertyTypeMismatch(f"property {self.table}.{name} is a {pdef.type}, not an upload")
        seconds = info.context.uploads.check_expires_in(expires_in)
        view = self._view.uploads.get(name)
        return None if view is None else PropertyUpload.from_view(view, _readable(info, self._view), seconds)

    @strawberry.field(
        description="The first record of `table` whose foreign_property equals this record's join_on_property."
    )
    async def related_record(
        self,
        info: Info,
        join_on_property: str,
        table: list[str | None],
        filter: RecordsFilterInput | None = None,
        foreign_property: str | None = "id",
        sort: list[RecordsSortInput] | None = None,
    ) -> Record | None:
        spec = _related_spec("one", table, join_on_property, foreign_property or "id", filter, sort, 1)
        found = await related_loader(info.context, spec).load(self._view.record)
        return Record.from_view(found[0]) if found else None

    @strawberry.field(
        description="Records of `table` whose foreign_property equals this record's join_on_property (or one of "
        "its items, for an array property); at most `limit` (default 100)."
    )
    async def related_records(
        self,
        info: Info,
        foreign_property: str,
        join_on_property: str,
        table: list[str | None],
        filter: RecordsFilterInput | None = None,
        limit: int | None = None,
        sort: list[RecordsSortInput] | None = None,
    ) -> list[Record] | None:
        spec = _related_spec("many", table, join_on_property, foreign_property, filter, sort, limit)
        return [Record.from_view(v) for v in await related_loader(info.context, spec).load(self._view.record)]

    @classmethod
    def from_view(cls, view: RecordView) -> Record:
        r = view.record
        return cls(
            _view=view,
            id=strawberry.ID(str(r.id)),
            table=r.table,
            created_at=cast(JSONDate, r.created_at),
            updated_at=cast(JSONDate, r.updated_at),
            deleted_at=cast(JSONDate | None, r.deleted_at),
            user_id=None if r.owner is None else strawberry.ID(r.owner),
            external_id=None if r.external_id is None else strawberry.ID(r.external_id),
        )


@strawberry.type
class RecordCollection:
    _page: strawberry.Private[RecordPage]
    current_page: int
    per_page: int
    has_next_page: bool
    has_previous_page: bool
    results: list[Record] | None

    @strawberry.field
    def total_entries(self) -> int:
        total = self._page.total_entries
        assert total is not None, "counted whenever the document asks for total_entries"
        return total

    @strawberry.field
    def total_pages(self) -> int:
        pages = self._page.total_pages
        assert pages is not None, "counted whenever the document asks for total_pages"
        return pages

    @classmethod
    def from_domain(cls, page: RecordPage) -> RecordCollection:
        return cls(
            _page=page,
            current_page=page.page,
            per_page=page.per_page,
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            results=[Record.from_view(v) for v in page.results],
        )
