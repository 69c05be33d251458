"""GraphQL input types, named and shaped as platformOS's SDL has them (real documents declare their
variables by these names), plus this server's extras (`file_name`, `content_type`, `put:`, ...).

Filters and sorts reach the records use case as plain data (`plain`), record writes as domain values
(`RecordInputType.changes`), presign options as ClientOptions: the input classes only adapt.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, cast

import strawberry

from app.errors import BadUserInput
from app.graphql.scalars import BigInt, JSONDate, JSONPayload, PropertyName
from app.policy import ClientOptions
from app.record_values import KEEP, OPERATIONS, RecordChanges, property_write
from app.uploads import ExactUpload
from app.value_upload import ValueUpload

# Nesting of a filter or sort given as plain data; the use case allows far less (app/record_filter.py).
MAX_PLAIN_DEPTH = 32


def plain(value: Any, depth: int = 0) -> Any:
    """A Strawberry input value as plain data: dicts by GraphQL field name, enums as their values,
    null and unset fields left out (in a platformOS filter a null field is no condition)."""
    if depth > MAX_PLAIN_DEPTH:
        raise BadUserInput(f"the argument nests more than {MAX_PLAIN_DEPTH} levels deep")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [plain(item, depth + 1) for item in value if item is not None]
    definition = getattr(type(value), "__strawberry_definition__", None)
    if definition is not None and dataclasses.is_dataclass(value):
        out: dict[str, Any] = {}
        for f in definition.fields:
            item = getattr(value, f.python_name)
            if item is not None and item is not strawberry.UNSET:
                out[f.graphql_name or f.python_name] = plain(item, depth + 1)
        return out
    return value


# -- enums ---------------------------------------------------------------------------------------


@strawberry.enum
class SortOrderEnum(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.enum(description="Who may read the uploaded file.")
class ACL(Enum):
    private = "private"
    public = "public"


@strawberry.enum(description="inline: shown in the browser; download (or attachment): saved as a file.")
class AttachmentContentDispositionEnum(Enum):
    download = "download"
    inline = "inline"
    attachment = "attachment"

    @property
    def header(self) -> str:
        return "inline" if self is AttachmentContentDispositionEnum.inline else "attachment"


# -- presign -------------------------------------------------------------------------------------


@strawberry.input
class ModelPropertyInput:
    model_schema_name: str = strawberry.field(description="The table name.")
    property_name: str


@strawberry.input
class AttachmentModelPropertyInput:
    model_schema_name: str = strawberry.field(description="The table name.")
    property_name: str


@strawberry.input(description="A property of user.yml: not modelled by this server (use model_property).")
class UserPropertyInput:
    property_name: str


@strawberry.input(description="A property of user.yml: not modelled by this server (use model_property).")
class AttachmentUserPropertyInput:
    property_name: str


@strawberry.input(description="Size range in KiB; it can only narrow the property's own range.")
class ContentLengthRange:
    gte: int | None = None
    lte: int | None = None


@strawberry.input(description="Size range in KiB; it can only narrow the property's own range.")
class AttachmentContentLengthRange:
    gte: int | None = None
    lte: int | None = None


def _model_property(
    model: ModelPropertyInput | AttachmentModelPropertyInput | None,
    user: UserPropertyInput | AttachmentUserPropertyInput | None,
) -> tuple[str, str]:
    if user is not None:
        raise BadUserInput(
            "user_property: this server has no user properties (user.yml); declare the property in a table "
            "and presign with model_property"
        )
    if model is None:
        raise BadUserInput("options.model_property {model_schema_name, property_name} is required")
    return model.model_schema_name, model.property_name


@strawberry.input
class AttachmentPresignUrlInput:
    content_disposition: AttachmentContentDispositionEnum | None = AttachmentContentDispositionEnum.inline
    content_length: AttachmentContentLengthRange | None = None
    model_property: AttachmentModelPropertyInput | None = None
    user_property: AttachmentUserPropertyInput | None = None
    file_name: str | None = None
    content_type: str | None = None

    def target(self) -> tuple[str, str]:
        return _model_property(self.model_property, self.user_property)

    def client_options(self) -> ClientOptions:
        length = self.content_length or AttachmentContentLengthRange()
        return ClientOptions(
            min_kib=length.gte,
            max_kib=length.lte,
            content_type=self.content_type,
            content_disposition=None if self.content_disposition is None else self.content_disposition.header,
        )


@strawberry.input
class ImagePresignUrlInput:
    content_length: ContentLengthRange | None = None
    model_property: ModelPropertyInput | None = None
    user_property: UserPropertyInput | None = None
    file_name: str | None = None
    content_type: str | None = None

    def target(self) -> tuple[str, str]:
        return _model_property(self.model_property, self.user_property)

    def client_options(self) -> ClientOptions:
        length = self.content_length or ContentLengthRange()
        return ClientOptions(min_kib=length.gte, max_kib=length.lte, content_type=self.content_type)


@strawberry.input(description="Size range in KiB; it can only narrow the property's own range.")
class ContentLength:
    gte: int | None = None
    lte: int | None = None


@strawberry.input
class Content:
    value: str | None = strawberry.field(default=None, description="Exact media type.")
    starts_with: str | None = strawberry.field(default=None, description="Media type prefix, e.g. image/")


@strawberry.input
class PresignUrl:
    acl: ACL | None = strawberry.field(default=None, description="May only narrow: public -> private.")
    content_length: ContentLength | None = None
    content_type: Content | None = None

    def client_options(self) -> ClientOptions:
        length = self.content_length or ContentLength()
        ctype = self.content_type or Content()
        return ClientOptions(
            min_kib=length.gte,
            max_kib=length.lte,
            content_type=ctype.value,
            content_type_starts_with=ctype.starts_with,
            acl=None if self.acl is None else self.acl.value,
        )


@strawberry.input(description="A presigned PUT: the exact file, so its type and length (and checksum) are signed.")
class PutUploadInput:
    file_name: str
    content_type: str
    size: BigInt = strawberry.field(description="Exact length in bytes.")
    checksum_sha256: str | None = strawberry.field(
        default=None, description="Base64 of the file's SHA-256; storage then refuses any other bytes."
    )

    def exact(self) -> ExactUpload:
        return ExactUpload(self.file_name, self.content_type, int(self.size), self.checksum_sha256)


@strawberry.input
class CompletedPartInput:
    part_number: int
    etag: str = strawberry.field(
        description="The ETag storage answered the part's upload with; empty for the part storage holds "
        "(for clients that cannot read it: Azure's Put Block answers none)."
    )


# -- record writes -------------------------------------------------------------------------------


@strawberry.enum(description="Who may read a file created with value_upload.")
class PropertyUploadACL(Enum):
    private = "private"
    public = "public"


@strawberry.enum(description="Type for upload data")
class ValueUploadInputTypeEnum(Enum):
    image = strawberry.enum_value(
        "image", description="An image: content is its bytes as a data: URI or base64; versions are built"
    )
    pdf = strawberry.enum_value(
        "pdf", description="A PDF: content is HTML to render (or the PDF itself as a data: URI or base64)"
    )
    plain = strawberry.enum_value("plain", description="The content's text as it is, without any processing")


@strawberry.input(
    description="A file the server creates and saves into the property, from content or remote_url; it is "
    "verified like any upload and the property's limits apply (the options here can only narrow them)."
)
class ValueUploadInput:
    type: ValueUploadInputTypeEnum
    content: str | None = strawberry.field(
        default=None, description="The file's data (see type), bounded by the request size; required unless remote_url."
    )
    remote_url: str | None = strawberry.field(
        default=None,
        description="Where the server fetches the file from (only origins VALUE_UPLOAD_REMOTE_HOSTS lists); "
        "takes precedence over content.",
    )
    file_path: str | None = strawberry.field(
        default=None,
        description="The file's name (its last segment; keys are the server's). Default: the property's name.",
    )
    acl: PropertyUploadACL | None = strawberry.field(
        default=PropertyUploadACL.private, description="Default private; public only where the property is public."
    )
    content_type: str | None = strawberry.field(
        default=None, description="The file's type, checked against its bytes; default: what the bytes show."
    )
    content_disposition: str | None = strawberry.field(
        default=None, description='inline or attachment, optionally with a name: attachment; filename="report.csv"'
    )
    cache_control: str | None = strawberry.field(
        default=None, description="Cache-Control; it can only narrow the property's own."
    )
    synchronous: bool | None = strawberry.field(
        default=False, description="Accepted: the file is always created before the mutation answers."
    )

    def domain(self) -> ValueUpload:
        return ValueUpload(
            type=str(self.type.value),
            content=self.content,
            remote_url=self.remote_url,
            file_path=self.file_path,
            acl=None if self.acl is None else self.acl.value,
            content_type=self.content_type,
            content_disposition=self.content_disposition,
            cache_control=self.cache_control,
            synchronous=bool(self.synchronous),
        )


@strawberry.input(description="One property to write: give one of the value fields or operations (none: clear it).")
class PropertyInputType:
    name: str
    value: str | None = strawberry.field(default=None, description="Plain value, or an uploaded file's URL or key.")
    value_array: list[str | None] | None = None
    value_boolean: bool | None = None
    value_float: float | None = None
    value_int: int | None = None
    value_json: JSONPayload | None = None
    value_upload: ValueUploadInput | None = strawberry.field(
        default=None, description="Create the file server-side (an upload property)."
    )
    array_append: str | None = strawberry.field(default=None, description="Add to the end of an array property.")
    array_remove: str | None = strawberry.field(default=None, description="Remove from an array property.")
    increment: float | None = None
    decrement: float | None = None

    def operations(self) -> dict[str, Any]:
        given = {op: getattr(self, op) for op in OPERATIONS}
        if self.value_upload is not None:
            given["value_upload"] = self.value_upload.domain()
        return given


def _given(value: Any) -> Any:
    return KEEP if value is strawberry.UNSET else value


@strawberry.input
class RecordInputType:
    table: str | None = None
    properties: list[PropertyInputType | None] | None = None
    user_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The owner; with auth on it can only be the caller."
    )
    external_id: strawberry.ID | None = strawberry.UNSET
    created_at: JSONDate | None = strawberry.UNSET
    updated_at: JSONDate | None = strawberry.UNSET
    deleted_at: JSONDate | None = strawberry.field(
        default=strawberry.UNSET, description="Set to soft delete; null restores a deleted record."
    )
    id: strawberry.ID | None = strawberry.UNSET

    def changes(self) -> RecordChanges:
        writes = tuple(property_write(p.name, p.operations()) for p in self.properties or [] if p is not None)
        return RecordChanges(
            properties=writes,
            table=self.table,
            user_id=_given(self.user_id),
            external_id=_given(self.external_id),
            created_at=_given(self.created_at),
            updated_at=_given(self.updated_at),
            deleted_at=_given(self.deleted_at),
            id=_given(self.id),
        )


# -- record reads --------------------------------------------------------------------------------


@strawberry.input
class StringFilter:
    case_sensitive: bool | None = strawberry.field(default=None, description="contains/starts_with/ends_with")
    contains: str | None = None
    ends_with: str | None = None
    exact: str | None = strawberry.field(default=None, description='deprecated, use "value" instead')
    not_contains: str | None = None
    not_ends_with: str | None = None
    not_starts_with: str | None = None
    not_value: str | None = None
    not_value_in: list[str] | None = None
    starts_with: str | None = None
    value: str | None = None
    value_in: list[str] | None = None


@strawberry.input
class IdRangeFilter:
    gt: strawberry.ID | None = None
    gte: strawberry.ID | None = None
    lt: strawberry.ID | None = None
    lte: strawberry.ID | None = None


@strawberry.input
class UniqIdFilter:
    not_value_in: list[strawberry.ID] | None = None
    range: IdRangeFilter | None = None
    value: strawberry.ID | None = None
    value_in: list[strawberry.ID] | None = None


@strawberry.input(description="ISO 8601 dates or date-times; a date alone stands for its whole day (UTC).")
class DateFilter:
    exists: bool | None = None
    gt: str | None = None
    gte: str | None = None
    lt: str | None = None
    lte: str | None = None
    not_value: str | None = None
    not_value_in: list[str] | None = None
    value: str | None = None
    value_in: list[str] | None = None


@strawberry.input
class RangeFilter:
    gt: str | None = None
    gte: str | None = None
    lt: str | None = None
    lte: str | None = None


@strawberry.input
class PropertyFilterInput:
    allow_empty: bool | None = strawberry.field(default=None, description='"" is a value to match, not ignored')
    array_contains: list[str] | None = None
    array_overlaps: list[str] | None = None
    case_sensitive: bool | None = None
    contains: str | None = None
    ends_with: str | None = None
    exists: bool | None = None
    name: str
    not_array_contains: list[str] | None = None
    not_array_overlaps: list[str] | None = None
    not_contains: str | None = None
    not_ends_with: str | None = None
    not_starts_with: str | None = None
    not_value: str | None = None
    not_value_array: list[str] | None = None
    not_value_boolean: bool | None = None
    not_value_float: float | None = None
    not_value_in: list[str] | None = None
    not_value_int: int | None = None
    property_type: str | None = None
    range: RangeFilter | None = None
    starts_with: str | None = None
    value: str | None = None
    value_array: list[str] | None = None
    value_boolean: bool | None = None
    value_float: float | None = None
    value_in: list[str] | None = None
    value_int: int | None = None


@strawberry.input
class JoinRecordCollection:
    foreign_property: PropertyName
    join_on_property: PropertyName | None = cast(PropertyName, "id")
    property_type: str | None = None


@strawberry.input
class RelatedRecordsFilterInput:
    filter: RecordsFilterInput | None = None
    join: JoinRecordCollection


@strawberry.input
class RecordsFilterInput:
    created_at: DateFilter | None = None
    deleted_at: DateFilter | None = strawberry.field(
        default=None, description="Any condition here includes deleted records (e.g. {exists: true})."
    )
    external_id: StringFilter | None = None
    id: UniqIdFilter | None = None
    or_: list[RecordsFilterInput] | None = strawberry.field(
        default=None, name="or", description="join arguments with OR operator"
    )
    properties: list[PropertyFilterInput] | None = None
    related_records: list[RelatedRecordsFilterInput] | None = None
    table: StringFilter | None = None
    updated_at: DateFilter | None = None
    user_id: UniqIdFilter | None = None


@strawberry.input
class StandardSort:
    order: SortOrderEnum
    order_by_values: list[str] | None = strawberry.field(
        default=None, description="These values first, in this order (id and external_id)."
    )


@strawberry.input
class PropertySort:
    name: str
    order: SortOrderEnum


@strawberry.input
class RecordsSortInput:
    created_at: StandardSort | None = None
    deleted_at: StandardSort | None = None
    external_id: StandardSort | None = None
    id: StandardSort | None = None
    properties: list[PropertySort] | None = None
    updated_at: StandardSort | None = None


@strawberry.input(description="Accepted for platformOS documents; this server has no replica and no per-query timeout.")
class QueryOptionsInput:
    read_replica: bool | None = False
    timeout: int | None = 19
