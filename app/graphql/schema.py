"""The Strawberry schema: thin resolvers over the use cases (their errors get codes in app/graphql/errors.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from app.errors import BadUserInput
from app.graphql.context import Info
from app.graphql.direct import install_direct_resolvers
from app.graphql.errors import convert_error
from app.graphql.inputs import (
    AttachmentPresignUrlInput,
    ImagePresignUrlInput,
    PresignUrl,
    PutUploadInput,
    QueryOptionsInput,
    RecordInputType,
    RecordsFilterInput,
    RecordsSortInput,
    plain,
)
from app.graphql.multipart import MultipartMutation
from app.graphql.pipeline import DocumentCache, RequestPipeline, limit_rules
from app.graphql.scalars import SCALARS
from app.graphql.selection import asks_for
from app.graphql.subscriptions import Subscription
from app.graphql.types import (
    DIRECT_RESOLVERS,
    AttachmentPresignedUploadUrl,
    ImagePresignedUploadUrl,
    PropertyUploadPresignedUrl,
    Record,
    RecordCollection,
    Table,
)
from app.settings import Settings
from app.tables import UPLOAD_TYPES


@strawberry.type
class Query:
    @strawberry.field(description="Table definitions with their properties and effective options.")
    def tables(self, info: Info) -> list[Table]:
        return [Table.from_domain(t) for t in info.context.uploads.tables.values()]

    @strawberry.field(
        description="Records, as platformOS filters, sorts and pages them (newest first unless sorted); "
        "deleted records only when the filter names deleted_at; only those the caller may read (each "
        "table's access.read), in the results and in the counts."
    )
    async def records(
        self,
        info: Info,
        per_page: int,
        filter: RecordsFilterInput | None = None,
        options: QueryOptionsInput | None = None,
        page: int | None = 1,
        sort: list[RecordsSortInput] | None = None,
    ) -> RecordCollection:
        ctx = info.context
        result = await ctx.records.list_page(
            ctx.caller,
            plain(filter),
            plain(sort),
            1 if page is None else page,
            per_page,
            with_total=asks_for(info, ("total_entries", "total_pages")),
        )
        return RecordCollection.from_domain(result)

    @strawberry.field(
        description="One live record by id (this server's extra); null when there is none or the caller may "
        "not read it."
    )
    async def record(self, info: Info, id: strawberry.ID) -> Record | None:
        view = await info.context.records.get(info.context.caller, id)
        return None if view is None else Record.from_view(view)


def _presign_target(table: str | None, model_schema_name: str | None, user: bool | None) -> str:
    """property_upload_presigned_url names the table as `table` or, deprecated, `model_schema_name`."""
    if user:
        raise BadUserInput(
            "user: true presigns into user.yml properties, which this server does not have; "
            "declare the property in a table and pass table"
        )
    if table is not None and model_schema_name is not None and table != model_schema_name:
        raise BadUserInput("table and model_schema_name name the same thing; give one of them")
    name = table if table is not None else model_schema_name
    if name is None:
        raise BadUserInput("table is required: the table whose upload property the file is for")
    return name


async def _presign_form(
    info: Info, options: AttachmentPresignUrlInput | ImagePresignUrlInput | None, accepts: tuple[str, ...]
) -> Any:
    """The 2020 presign mutations differ only in the property types they accept."""
    if options is None:
        raise BadUserInput("options.model_property {model_schema_name, property_name} is required")
    ctx = info.context
    table, prop = options.target()
    ctx.records.access.check_create(ctx.caller, table)
    return await ctx.uploads.presign_post(ctx.caller, table, prop, accepts, options.client_options(), options.file_name)


@strawberry.type
class Mutation(MultipartMutation):
    @strawberry.mutation(description="Presign a form upload into an attachment (or upload) property.")
    async def attachment_presign_url(
        self, info: Info, options: AttachmentPresignUrlInput | None = None
    ) -> AttachmentPresignedUploadUrl:
        return AttachmentPresignedUploadUrl.from_domain(await _presign_form(info, options, ("attachment", "upload")))

    @strawberry.mutation(description="Presign a form upload into an image (or upload) property.")
    async def image_presign_url(
        self, info: Info, options: ImagePresignUrlInput | None = None
    ) -> ImagePresignedUploadUrl:
        return ImagePresignedUploadUrl.from_domain(await _presign_form(info, options, ("image", "upload")))

    @strawberry.mutation(description="Presign an upload into any upload property (current API).")
    async def property_upload_presigned_url(
        self,
        info: Info,
        property_name: str,
        include_content_type: bool | None = False,
        model_schema_name: Annotated[str | None, strawberry.argument(description="deprecated, use table")] = None,
        presign_url: PresignUrl | None = None,
        table: str | None = None,
        user: bool | None = False,
        put: PutUploadInput | None = None,
    ) -> PropertyUploadPresignedUrl:
        ctx = info.context
        name = _presign_target(table, model_schema_name, user)
        ctx.records.access.check_create(ctx.caller, name)
        options = (presign_url or PresignUrl()).client_options()
        if put is not None:
            presigned = await ctx.uploads.presign_put(
                ctx.caller, name, property_name, UPLOAD_TYPES, options, put.exact()
            )
            return PropertyUploadPresignedUrl.from_domain(presigned)
        result = await ctx.uploads.presign_post(
            ctx.caller, name, property_name, UPLOAD_TYPES, options, include_content_type=bool(include_content_type)
        )
        return PropertyUploadPresignedUrl.from_domain(result)

    @strawberry.mutation(description="Create a record; upload values are verified in storage before saving.")
    async def record_create(
        self,
        info: Info,
        record: RecordInputType,
        form_name: Annotated[str | None, strawberry.argument(description="Accepted; forms are not modelled.")] = None,
    ) -> Record:
        ctx = info.context
        if not record.table:
            raise BadUserInput("record.table is required to create a record")
        return Record.from_view(await ctx.records.create(ctx.caller, record.table, (), record.changes()))

    @strawberry.mutation(
        description="Change the given properties and fields; a null upload value removes the file, "
        "deleted_at: null restores a deleted record."
    )
    async def record_update(
        self,
        info: Info,
        id: strawberry.ID,
        record: RecordInputType,
        form_name: Annotated[str | None, strawberry.argument(description="Accepted; forms are not modelled.")] = None,
        index_update: Annotated[
            bool | None, strawberry.argument(name="_index_update", description="Accepted; there is no such index.")
        ] = True,
    ) -> Record:
        ctx = info.context
        return Record.from_view(await ctx.records.update(ctx.caller, id, (), record.changes()))

    @strawberry.mutation(
        description="Delete a record (soft, as platformOS: it gets deleted_at; its files go when it is purged)."
    )
    async def record_delete(
        self,
        info: Info,
        id: strawberry.ID,
        table: str | None = None,
        form_name: Annotated[str | None, strawberry.argument(description="Accepted; forms are not modelled.")] = None,
    ) -> Record:
        ctx = info.context
        return Record.from_view(await ctx.records.delete(ctx.caller, id, table))


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
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALARS),
        execution_context_class=NoSuggestionsExecutionContext if hide_suggestions else None,
        extensions=[
            lambda: RequestPipeline(
                cache=cache,
                max_tokens=s.graphql_max_tokens,
                rules=rules,
                hide_suggestions=hide_suggestions,
                observers=observers,
                # Streamed results (subscriptions) bypass the HTTP view's error hook.
                convert=lambda error: convert_error(error, debug=s.debug),
            )
        ],
    )
    install_direct_resolvers(schema, (*DIRECT_ROOT_FIELDS, *DIRECT_RESOLVERS))
    return schema
