"""The Subscription root type: live upload status over WebSocket (transport: app/graphql/ws.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from app.graphql.context import Info
from app.graphql.types import PropertyUpload
from app.live import Follow
from app.models import Upload
from app.uploads import DEFAULT_GET_EXPIRES_IN, UploadView


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The file in a record property now, then again each time it changes (a version ready or "
        "failed, the file replaced or removed); completes once nothing more can change on its own or the record "
        "is deleted. A removed file is sent once with every field null. Private URLs only for the owner."
    )
    async def property_upload_changed(
        self, info: Info, record_id: strawberry.ID, name: str
    ) -> AsyncGenerator[PropertyUpload, None]:
        # Checked before the stream starts, so an unknown record or property answers the protocol's
        # `error` message with the query's code instead of a stream.
        ctx = info.context
        assert ctx.live is not None, "the live status is served by the API process"
        follow = await ctx.live.open(ctx.caller, str(record_id), name)
        return _property_uploads(follow, readable=ctx.records.access.can_read_files(ctx.caller, follow.owner))


async def _property_uploads(follow: Follow, *, readable: bool) -> AsyncGenerator[PropertyUpload, None]:
    async with aclosing(follow.states()) as states:
        async for state in states:
            view = state if state is not None else UploadView(Upload(), [])
            yield PropertyUpload.from_view(view, readable, DEFAULT_GET_EXPIRES_IN)
