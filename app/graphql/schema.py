"""The Strawberry schema: thin resolvers over the use cases, and error codes in `extensions.code`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app import db
from app.errors import AppError, DatabaseUnavailable
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
from app.graphql.subscriptions import Subscription
from app.graphql.types import DIRECT_RESOLVERS, PresignedUploadUrl, Record, RecordCollection, Table
from app.settings import Settings

log = logging.getLogger("app.graphql")


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


def _with_code(error: GraphQLError, message: str, code: str, original: Exception | None) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions={**(error.extensions or {}), "code": code},
    )


def convert_error(error: GraphQLError, *, debug: bool) -> GraphQLError:
    """Every error leaves with `extensions.code`, as Apollo clients expect; unexpected exceptions
    are logged with their traceback and masked unless in debug mode."""
    original = error.original_error
    if original is not None and not isinstance(original, AppError) and db.is_unavailable(original):
        log.warning("database unavailable in %s: %r", ".".join(map(str, error.path or [])), original)
        original = DatabaseUnavailable("the database is unavailable; nothing was changed, try again shortly")
    if isinstance(original, AppError):
        return _with_code(error, original.message, original.code, original)
    if original is None or isinstance(original, GraphQLError):
        if error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.message.startswith("Variable '$") or (error.path and isinstance(original, GraphQLError)):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        return _with_code(error, error.message, code, None)
    if isinstance(original, (ValueError, TypeError)) and not error.path:
        # A custom scalar (BigInt, HashObject) refused a literal or variable during validation.
        return _with_code(error, error.message, "BAD_USER_INPUT", None)
    log.error("unexpected error in %s", ".".join(map(str, error.path or [])), exc_info=original)
    message = error.message if debug else "Internal server error; it has been logged"
    return _with_code(error, message, "INTERNAL_SERVER_ERROR", original if debug else None)


class AppSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: object = None) -> None:
        """Expected errors (AppError, bad input) are the client's business, not our logs;
        convert_error logs the unexpected ones."""


def build_schema(
    *, observers: Sequence[Callable[[ExecutionContext], None]] = (), settings: Settings | None = None
) -> AppSchema:
    """The schema with its request pipeline (app/graphql/pipeline.py): the limits run at parse and
    validation time, before any resolver, so an abusive document costs almost nothing, and the
    verdict on a repeated document is remembered. `observers` see every executed operation."""
    s = settings or Settings()
    cache = DocumentCache(maxsize=512)
    rules = limit_rules(
        max_depth=s.graphql_max_depth, max_aliases=s.graphql_max_aliases, introspection=s.graphql_introspection
    )
    schema = AppSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALARS),
        extensions=[
            lambda: RequestPipeline(
                cache=cache,
                max_tokens=s.graphql_max_tokens,
                rules=rules,
                observers=observers,
                convert=lambda error: convert_error(error, debug=s.debug),
            )
        ],
    )
    install_direct_resolvers(schema, (*DIRECT_ROOT_FIELDS, *DIRECT_RESOLVERS))
    return schema
