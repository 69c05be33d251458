"""The per-request context every resolver receives as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import Response
from strawberry.types import Info as _Info

from app.errors import AppError
from app.live import LiveUploads
from app.records import Records
from app.uploads import Caller, Uploads


@dataclass
class Context:
    request: HTTPConnection  # a Request, or the WebSocket of a subscription
    response: Response | None
    uploads: Uploads
    records: Records
    caller: Caller
    auth_error: AppError | None = None  # a bad token: the auth gate fails the request with it
    auth_required: bool = False  # auth is configured: mutations need a token
    loaders: dict[str, Any] = field(default_factory=dict)  # per-request batch loaders (app/graphql/related.py)
    live: LiveUploads | None = None  # subscriptions follow uploads through it


Info = _Info[Context, None]
