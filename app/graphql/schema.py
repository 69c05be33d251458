"""The Strawberry schema: thin resolvers over the use cases (their errors get codes in app/graphql/errors.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from app.graphql.context import Info
from app.graphql.direct import install_direct_resolvers
from app.graphql.inputs import (
    AttachmentPresignUrlInput,
    ImagePresignUrlInput,
    PresignUrl,
    PropertyInput,
    PutUploadInput,
    RecordFilter,
    RecordInput,
    RecordUpdateInput,
)
from app.graphql.multipart import MultipartMutation
from app.graphql.pipeline import DocumentCache, RequestPipeline, limit_rules
from app.graphql.scalars import SCALARS
from app.graphql.types import DIRECT_RESOLVERS, PresignedUploadUrl, Record, RecordCollection, Table
from app.settings import Settings


def _pairs(properties: list[PropertyInput] | None) -> list[tuple[str, str | None]]:
    return [(p.name, p.value) for p in properties or []]


@strawberry.type
class Query:
    @strawberry.field(description="Table definitions with their properties and effective options.")
    def tables(self, info: Info) -> list[Table]:
        return [Table.from_domain(t) for t in info.context.uploads.tables.values()]

    @strawberry.field(description="Records of one table, newest first.")
    async def records(
        self, info: Info, filter: RecordFilter, page: int | None = 1, per_page: int | None = 20
    ) -> RecordCollection:
        result = await info.context.records.list_page(
            filter.table, filter.ids, 1 if page is None else page, 20 if per_page is None else per_page
        )
        return RecordCollection.from_domain(result)

    @strawberry.field
    async def record(self, info: Info, id: strawberry.ID) -> Record | None:
        view = await info.context.records.get(id)
        return None if view is None else Record.from_view(view)


async def _presign_form(
    info: Info, options: AttachmentPresignUrlInput | ImagePresignUrlInput, accepts: tuple[str, ...]
) -> PresignedUploadUrl:
    """The 2020 presign mutations differ only in the property types they accept."""
    ctx = info.context
    prop = options.model_property
    result = await ctx.uploads.presign_post(
        ctx.caller, prop.model_schema_name, prop.property_name, accepts, options.client_options(), options.file_name
    )
    return PresignedUploadUrl.from_domain(result)


@strawberry.type
class Mutation(MultipartMutation):
    @strawberry.mutation(description="Presign a form upload into an attachment (or upload) property.")
    async def attachment_presign_url(self, info: Info, options: AttachmentPresignUrlInput) -> PresignedUploadUrl:
        return await _presign_form(info, options, ("attachment", "upload"))

    @strawberry.mutation(description="Presign a form upload into an image (or upload) property.")
    async def image_presign_url(self, info: Info, options: ImagePresignUrlInput) -> PresignedUploadUrl:
        return await _presign_form(info, options, ("image", "upload"))

    @strawberry.mutation(description="Presign an upload into any upload property (current API).")
    async def property_upload_presigned_url(
        self,
        info: Info,
        table: str,
        property_name: str,
        include_content_type: bool | None = False,
        presign_url: PresignUrl | None = None,
        put: PutUploadInput | None = None,
    ) -> PresignedUploadUrl:
        ctx = info.context
        options = (presign_url or PresignUrl()).client_options()
        if put is not None:
            presigned = await ctx.uploads.presign_put(
                ctx.caller, table, property_name, ("attachment", "image", "upload"), options, put.exact()
            )
            return PresignedUploadUrl.from_domain(presigned)
        result = await ctx.uploads.presign_post(
            ctx.caller,
            table,
            property_name,
            ("attachment", "image", "upload"),
            options,
            include_content_type=bool(include_content_type),
        )
        return PresignedUploadUrl.from_domain(result)

    @strawberry.mutation(description="Create a record; upload values are verified in storage before saving.")
    async def record_create(self, info: Info, record: RecordInput) -> Record:
        ctx = info.context
        return Record.from_view(await ctx.records.create(ctx.caller, record.table, _pairs(record.properties)))

    @strawberry.mutation(description="Change the given properties; a null upload value removes the file.")
    async def record_update(self, info: Info, id: strawberry.ID, record: RecordUpdateInput) -> Record:
        ctx = info.context
        return Record.from_view(await ctx.records.update(ctx.caller, id, _pairs(record.properties)))

    @strawberry.mutation(description="Delete a record; its files are removed from storage.")
    async def record_delete(self, info: Info, id: strawberry.ID) -> Record:
        ctx = info.context
        return Record.from_view(await ctx.records.delete(ctx.caller, id))


# Root fields whose resolvers use nothing of `info` but `info.context` (app/graphql/direct.py).
DIRECT_ROOT_FIELDS = (
    ("Query", "tables"),
    ("Query", "records"),
    ("Query", "record"),
    ("Mutation", "attachment_presign_url"),
    ("Mutation", "image_presign_url"),
    ("Mutation", "property_upload_presigned_url"),
    ("Mutation", "record_create"),
    ("Mutation", "record_update"),
    ("Mutation", "record_delete"),
)


class AppSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: object = None) -> None:
        """Expected errors (AppError, bad input) are the client's business, not our logs;
        convert_error (app/graphql/errors.py) logs the unexpected ones."""


class NoSuggestionsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Execution without graphql-core's "Did you mean ...?" in the errors of variable coercion (an
    input field or enum value misspelt in the variables), which would tell the schema's names."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})


def build_schema(
    *, observers: Sequence[Callable[[ExecutionContext], None]] = (), settings: Settings | None = None
) -> AppSchema:
    """The schema with its request pipeline (app/graphql/pipeline.py): the limits run at parse and
    validation time, before any resolver, so an abusive document costs almost nothing, and the
    verdict on a repeated document is remembered. `observers` see every executed operation.

    Without introspection the schema's names are not for the asking, so errors suggest none either
    (graphql-core's `hide_suggestions`, in validation and in execution)."""
    s = settings or Settings()
    cache = DocumentCache(maxsize=512)
    rules = limit_rules(
        max_depth=s.graphql_max_depth, max_aliases=s.graphql_max_aliases, introspection=s.graphql_introspection
    )
    hide_suggestions = not s.graphql_introspection
    schema = AppSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALARS),
        execution_context_class=NoSuggestionsExecutionContext if hide_suggestions else None,
        extensions=[
            lambda: RequestPipeline(
                cache=cache,
                max_tokens=s.graphql_max_tokens,
                rules=rules,
                hide_suggestions=hide_suggestions,
                observers=observers,
            )
        ],
    )
    install_direct_resolvers(schema, (*DIRECT_ROOT_FIELDS, *DIRECT_RESOLVERS))
    return schema
