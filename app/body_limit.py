"""An ASGI middleware that refuses request bodies over a size limit with PAYLOAD_TOO_LARGE.

It checks Content-Length up front and also counts the bytes actually received, so a chunked body or
a lying Content-Length cannot get past it. It answers nothing itself: the error is raised where the
route reads the body, and the app's exception handlers (app/http_errors.py) answer it in the route's
shape (GraphQL or REST). Uploads never pass through the API (they go straight to storage), so the
limit only has to fit GraphQL documents and their variables.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BadUserInput, PayloadTooLarge


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None:
                if not declared.isdigit():
                    raise BadUserInput("the Content-Length header is not a number of bytes")
                if int(declared) > self.max_bytes:
                    raise self._too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is over the limit of {self.max_bytes} bytes")
