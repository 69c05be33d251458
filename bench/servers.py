"""The two ASGI apps bench/presign.py serves with uvicorn, one per process, configured from the
environment like the real server (DATABASE_URL, S3_*).

- `api`: the real application (create_app), presigns through GraphQL.
- `api_without_promotion`: the same without the promotion's copy and delete (bench/cycle.py's baseline).
- `bare`: a plain Starlette endpoint doing the same work below the transport: the same bearer-token
  check and the same `Uploads.presign_post` use case, hence the same limits, storage presign call
  and DB insert. The ratio between the two is what GraphQL and our middleware cost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.main import create_app
from app.policy import ClientOptions
from app.services import Services
from app.settings import Settings


def api() -> Starlette:
    return create_app(Settings.from_env())


def api_without_promotion() -> Starlette:
    """The real application with the promotion's storage steps left out (the server-side copy of the
    verified object and the delete of the quarantined one): the baseline bench/cycle.py measures a
    save against. Its records point at permanent keys that hold nothing; the benchmark never reads them."""
    app = create_app(Settings.from_env())
    promoting = app.state.services.uploads.promoting

    async def claim_only(item: Any) -> None:
        await promoting.claim(item)

    async def keep(keys: list[str]) -> None:
        return None

    promoting.promote_verified = claim_only
    promoting.delete_quietly = keep
    return app


def bare() -> Starlette:
    settings = Settings.from_env()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with services:
            yield

    async def presign(request: Request) -> Response:
        body = json.loads(await request.body())
        result = await services.uploads.presign_post(
            services.auth.authenticate(request),
            body["table"],
            body["property_name"],
            ("image", "upload"),
            ClientOptions(content_type=body.get("content_type")),
            body.get("file_name"),
        )
        payload = {
            "upload_url": result.upload_url,
            "upload_url_payload": result.payload,
            "method": result.method,
            "key": result.key,
            "url": result.url,
            "expires_at": result.expires_at.isoformat(),
            "max_size": result.max_size,
            "content_types": result.content_types,
        }
        return Response(json.dumps(payload), media_type="application/json")

    return Starlette(routes=[Route("/presign", presign, methods=["POST"])], lifespan=lifespan)
