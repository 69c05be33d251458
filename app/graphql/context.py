"""The per-request context every resolver receives as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as _Info

from app.errors import AppError
from app.records import Records
from app.uploads import Caller, Uploads


@dataclass
class Context:
    request: Request
    response: Response | None
    uploads: Uploads
    records: Records
    caller: Caller
    auth_error: AppError | None = None  # a bad token: the auth gate fails the request with it
    auth_required: bool = False  # auth is configured: mutations need a token
    loaders: dict[str, Any] = field(default_factory=dict)  # per-request batch loaders (app/graphql/related.py)


Info = _Info[Context, None]
