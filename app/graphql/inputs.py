"""GraphQL input types, named as platformOS names them."""

from __future__ import annotations

import strawberry

from app.graphql.scalars import BigInt
from app.policy import ClientOptions
from app.uploads import ExactUpload


@strawberry.input
class ModelPropertyInput:
    model_schema_name: str = strawberry.field(description="The table name.")
    property_name: str


@strawberry.input(description="Size range in KiB; it can only narrow the property's own range.")
class ContentLengthRange:
    gte: int | None = None
    lte: int | None = None


@strawberry.input
class AttachmentPresignUrlInput:
    model_property: ModelPropertyInput
    content_length: ContentLengthRange | None = None
    content_disposition: str | None = strawberry.field(default=None, description="inline | attachment")
    file_name: str | None = None
    content_type: str | None = None

    def client_options(self) -> ClientOptions:
        length = self.content_length or ContentLengthRange()
        return ClientOptions(
            min_kib=length.gte,
            max_kib=length.lte,
            content_type=self.content_type,
            content_disposition=self.content_disposition,
        )


@strawberry.input
class ImagePresignUrlInput:
    model_property: ModelPropertyInput
    content_length: ContentLengthRange | None = None
    file_name: str | None = None
    content_type: str | None = None

    def client_options(self) -> ClientOptions:
        length = self.content_length or ContentLengthRange()
        return ClientOptions(min_kib=length.gte, max_kib=length.lte, content_type=self.content_type)


@strawberry.input
class ContentInput:
    value: str | None = strawberry.field(default=None, description="Exact media type.")
    starts_with: str | None = strawberry.field(default=None, description="Media type prefix, e.g. image/")


@strawberry.input
class PresignUrl:
    acl: str | None = strawberry.field(default=None, description="public | private (may only narrow)")
    content_length: ContentLengthRange | None = None
    content_type: ContentInput | None = None

    def client_options(self) -> ClientOptions:
        length = self.content_length or ContentLengthRange()
        ctype = self.content_type or ContentInput()
        return ClientOptions(
            min_kib=length.gte,
            max_kib=length.lte,
            content_type=ctype.value,
            content_type_starts_with=ctype.starts_with,
            acl=self.acl,
        )


@strawberry.input
class PropertyInput:
    name: str
    value: str | None = strawberry.field(default=None, description="Plain value, or an uploaded file's URL or key.")


@strawberry.input
class RecordInput:
    table: str
    properties: list[PropertyInput] | None = None


@strawberry.input
class RecordUpdateInput:
    properties: list[PropertyInput]


@strawberry.input
class RecordFilter:
    table: str
    ids: list[strawberry.ID] | None = None


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
    etag: str
