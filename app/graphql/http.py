"""GraphQL over HTTP: Strawberry's ASGI view, reading requests strictly and answering every refusal in
GraphQL's shape with a code (app/http_errors.py).

Strawberry's view (strawberry/http/async_base_view.py, base.py) parses a request in
`parse_http_body`: a GET's query parameters through `parse_query_params`, a JSON body through
`parse_json`, a multipart body (off here: files never pass through the API) through
`parse_multipart`. Left as they are, a JSON body that is not an object (`5`, `"x"`, `null`) fails on
`data.get` with an AttributeError, bytes that are not UTF-8 with a UnicodeDecodeError, deep nesting
with a RecursionError (500s, with a traceback), `operationName` of any type reaches graphql-core, and
the 400s it does raise (as cross_web's HTTPException) become plain-text bodies without a code. Here:
- every JSON goes through app/jsonbody.py, and a body (or `variables`/`extensions` parameter) that is
  not an object is BAD_USER_INPUT, batches included (batching is off);
- a POST must be `application/json` (UTF-8), and a GET must give each parameter once;
- `operationName` must be a string;
- Strawberry's own HTTP errors become AppErrors, which propagate, like those raised on the way
  (PAYLOAD_TOO_LARGE from the body limit), to the exception handlers of app/http_errors.py:
  `{"errors": [{"message", "extensions": {"code"}}]}` with the error's status.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.typevars import Context, RootValue
from strawberry.types import ExecutionResult

from app.errors import BadUserInput
from app.graphql.errors import convert_error
from app.http_errors import from_http_status
from app.jsonbody import MalformedJson, is_json_media_type, loads

ALLOWED_METHODS = "GET, POST"
PARAMETERS = ("query", "variables", "operationName", "extensions")


class GraphQLView(GraphQL[Context, RootValue]):
    # Show unexpected errors' messages to clients (the DEBUG setting).
    debug = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as exc:
            raise from_http_status(exc.status_code, exc.reason, ALLOWED_METHODS) from None
        await response(scope, receive, send)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:  # type: ignore[override]
        if result.errors:
            result.errors = [convert_error(e, debug=self.debug) for e in result.errors]
        return await super().process_result(request, result)

    # -- request parsing ---------------------------------------------------------------------
    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:  # type: ignore[override]
        if request.method == "POST" and not is_json_media_type(request.content_type or ""):
            raise BadUserInput(
                "send the operation as a JSON object with Content-Type: application/json (UTF-8), "
                "or as query parameters of a GET; files go straight to storage, never through this API"
            )
        data = await super().parse_http_body(request)
        # parse_json refuses arrays, so no batch reaches this point.
        assert isinstance(data, GraphQLRequestData)
        if data.operation_name is not None and not isinstance(data.operation_name, str):
            raise BadUserInput("operationName must be a string (the name of one operation in the document) or null")
        return data

    def parse_json(self, data: str | bytes) -> dict[str, Any]:
        """A POST body: one operation as a JSON object."""
        value = _json(data, "the body")
        if isinstance(value, list):
            raise BadUserInput("batched operations are not supported: send one operation as a JSON object")
        if not isinstance(value, dict):
            raise BadUserInput('the body must be a JSON object such as {"query": "...", "variables": {}}')
        return value

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        """A GET's parameters; `variables` and `extensions` are JSON objects (or null)."""
        if isinstance(params, QueryParams):
            for name in PARAMETERS:
                if len(params.getlist(name)) > 1:
                    raise BadUserInput(f"the {name} parameter is given more than once")
        parsed = dict(params)
        for name in ("variables", "extensions"):
            raw = parsed.get(name)
            if raw:
                value = _json(raw, f"the {name} parameter")
                if value is not None and not isinstance(value, dict):
                    raise BadUserInput(f"the {name} parameter must be a JSON object or null")
                parsed[name] = value
        return parsed

    def decode_json(self, data: str | bytes) -> object:
        """JSON of a WebSocket message: malformed input stays a JSONDecodeError, which Strawberry's
        WebSocket handlers answer by closing with 4400."""
        try:
            return loads(data, what="the message")
        except MalformedJson as exc:
            raise json.JSONDecodeError(str(exc), data if isinstance(data, str) else "", 0) from None


def _json(data: str | bytes, what: str) -> Any:
    try:
        return loads(data, what=what)
    except MalformedJson as exc:
        raise BadUserInput(str(exc)) from None
