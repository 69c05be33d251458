"""The per-request context every resolver receives as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as _Info

from app.records import Records
from app.uploads import Caller, Uploads


@dataclass
class Context:
    request: Request
    response: Response | None
    uploads: Uploads
    records: Records
    caller: Caller


Info = _Info[Context, None]
