"""GraphQL over WebSocket (`graphql-transport-ws`, enisdenjo/graphql-ws's PROTOCOL.md) on /graphql:
Strawberry's handler, hardened for clients we do not trust.

- Authentication: `connection_init`'s payload `{"Authorization": "Bearer <jwt>"}` (or the handshake's
  own header), checked like an HTTP request's; a bad token closes the socket with 4403 and the reason.
- Limits: LIVE_SUBSCRIPTIONS_PER_CONNECTION and LIVE_SUBSCRIPTIONS_PER_CALLER operations at once (an
  `error` message with TOO_MANY_REQUESTS beyond), `connection_init` within LIVE_INIT_TIMEOUT (4408),
  a `ping` every LIVE_KEEPALIVE seconds and 4408 for a client silent through two of them, 1000 after
  LIVE_IDLE_TIMEOUT without an operation, LIVE_MESSAGE_RATE messages per second (4429 for a flood),
  and messages of at most MAX_BODY_BYTES (1009).
- Anything that is not a message of the protocol (not JSON, not an object, a wrong field type, a type
  the client may not send) closes the socket with 4400 and says what was wrong; nothing a client sends
  reaches the log as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from graphql import GraphQLError
from starlette import websockets
from starlette.websockets import WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message, SubscribeMessage

from app import metrics
from app.auth import Authenticator
from app.errors import AppError, TooManyRequests, Unauthenticated
from app.graphql.context import Context
from app.settings import Settings

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 256
MAX_CLOSE_REASON = 123  # bytes: what a WebSocket close frame can carry
BURST_SECONDS = 5  # a client may send this many seconds' worth of LIVE_MESSAGE_RATE at once


@dataclass
class Connections:
    """What the WebSockets of one API process share: settings, the authenticator, and the number of
    operations each caller runs (LIVE_SUBSCRIPTIONS_PER_CALLER)."""

    settings: Settings
    auth: Authenticator
    per_caller: Counter[str] = field(default_factory=Counter)

    def release(self, caller: str) -> None:
        self.per_caller[caller] -= 1
        if self.per_caller[caller] <= 0:
            del self.per_caller[caller]


def malformed(message: object) -> str | None:
    """Why `message` is not a message a client may send, or None."""
    if not isinstance(message, dict):
        return "Invalid message: expected a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "Invalid message: 'type' must be a string"
    if kind in ("connection_init", "ping", "pong"):
        if message.get("payload") is not None and not isinstance(message["payload"], dict):
            return f"Invalid message: the payload of {kind} must be an object"
        return None
    if kind not in ("subscribe", "complete"):
        return f"Invalid message: a client does not send {kind[:40]!r}"
    op_id = message.get("id")
    if not isinstance(op_id, str) or not 0 < len(op_id) <= MAX_ID_LENGTH:
        return f"Invalid message: 'id' must be a string of 1 to {MAX_ID_LENGTH} characters"
    if kind == "complete":
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "Invalid message: the payload of subscribe must be an object"
    if not isinstance(payload.get("query"), str):
        return "Invalid message: payload.query must be a string"
    for name, kinds in (("variables", dict), ("extensions", dict), ("operationName", str)):
        if payload.get(name) is not None and not isinstance(payload[name], kinds):
            return f"Invalid message: payload.{name} must be {'an object' if kinds is dict else 'a string'}"
    return None


def _reason(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= MAX_CLOSE_REASON:
        return text
    return encoded[: MAX_CLOSE_REASON - 3].decode(errors="ignore") + "..."


class LiveWebSocket(ASGIWebSocketAdapter):
    """Strawberry's adapter, but a message is size-checked and decoded safely, and a send or close
    on a socket that is already closing is dropped instead of raising in some operation's task."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        max_bytes = cast("Any", self.view).connections.settings.max_body_bytes
        try:
            while self.ws.application_state == WebSocketState.CONNECTED:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    raise NonTextMessageReceived
                if len(text) > max_bytes:
                    await self.close(1009, f"Message too big: at most {max_bytes} bytes")
                    return
                try:
                    yield json.loads(text)
                except (ValueError, RecursionError) as exc:
                    raise NonJsonMessageReceived from exc
        except (websockets.WebSocketDisconnect, websockets.WebSocketDisconnected):
            return

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED:
            raise WebSocketDisconnected
        try:
            await self.ws.send_text(json.dumps(message, separators=(",", ":")))
        except (websockets.WebSocketDisconnect, websockets.WebSocketDisconnected, OSError) as exc:
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        metrics.LIVE_CLOSES.labels(str(code)).inc()
        with contextlib.suppress(websockets.WebSocketDisconnect, websockets.WebSocketDisconnected, OSError):
            await self.ws.close(code=code, reason=_reason(reason))


class _Bucket:
    """A token bucket: `rate` messages per second, `burst` at once."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class LiveWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: Connections = cast("Any", self.view).connections
        s = self.shared.settings
        self.loop = asyncio.get_running_loop()
        now = self.loop.time()
        self.bucket = _Bucket(s.live_message_rate, s.live_message_rate * BURST_SECONDS, now)
        self.last_heard = self.idle_since = now
        self.token_expires: int | None = None  # Unix seconds; the connection closes then

    async def handle(self) -> None:
        watchdog = asyncio.create_task(self._watch())
        metrics.LIVE_CONNECTIONS.inc()
        try:
            await super().handle()
        finally:
            metrics.LIVE_CONNECTIONS.dec()
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def _watch(self) -> None:
        """Keep-alive pings, and the keep-alive and idle timeouts, checked at each ping."""
        s = self.shared.settings
        interval = min(s.live_keepalive, s.live_idle_timeout)
        while True:
            await asyncio.sleep(interval)
            now = self.loop.time()
            if self.operations:
                self.idle_since = now
            elif now - self.idle_since >= s.live_idle_timeout:
                await self.websocket.close(1000, f"Idle: no operation for {s.live_idle_timeout} s")
                return
            if now - self.last_heard > 2 * s.live_keepalive:
                await self.websocket.close(4408, "Keep-alive timeout: no pong to two pings")
                return
            if self.token_expires is not None and time.time() >= self.token_expires:
                # Private URLs must not keep flowing on a token that no longer opens a connection.
                await self.websocket.close(4403, "UNAUTHENTICATED: the token has expired; reconnect with a new one")
                return
            if self.connection_acknowledged:
                with contextlib.suppress(WebSocketDisconnected):
                    await self.send_message({"type": "ping"})

    async def handle_message(self, message: Message) -> None:
        now = self.loop.time()
        self.last_heard = now
        if not self.bucket.take(now):
            rate = self.shared.settings.live_message_rate
            await self.websocket.close(4429, f"Too many messages: at most {rate} per second")
            return
        problem = malformed(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        if message["type"] == "connection_init" and message.get("payload") is None:
            message = {"type": "connection_init", "payload": {}}  # the protocol allows null
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        if self.connection_init_received or self.connection_timed_out:
            await super().handle_connection_init(message)  # 4429: one init per connection
            return
        ctx = self.context
        auth = self.shared.auth
        header = next((v for k, v in message["payload"].items() if k.lower() == "authorization"), None)
        try:
            if header is not None:
                if not isinstance(header, str):
                    raise Unauthenticated("the Authorization value must be 'Bearer <token>'")
                ctx.caller = auth.authenticate_header(header, auth.anonymous(ctx.request))
                ctx.auth_error = None
            elif ctx.auth_error is not None:
                raise ctx.auth_error
            else:
                header = ctx.request.headers.get("authorization")  # the handshake's, verified already
            if ctx.caller.subject is not None and header is not None:
                self.token_expires = auth.expires_at(header)
        except AppError as exc:
            # Protocol: a refused connection closes with 4403 (graphql-ws clients retry it).
            await self.websocket.close(4403, f"{exc.code}: {exc.message}")
            return
        await super().handle_connection_init(message)
        # Cancelled by now; kept, its CancelledError would hold its frames for the connection's life.
        self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        op_id = message["id"]
        if not self.connection_acknowledged or op_id in self.operations:
            await super().handle_subscribe(message)  # 4401 before the ack, 4409 for a duplicate id
            return
        s = self.shared.settings
        caller = self.context.caller.rate_key
        refusal = None
        if len(self.operations) >= s.live_subscriptions_per_connection:
            refusal = f"at most {s.live_subscriptions_per_connection} operations at once on one connection"
        elif self.shared.per_caller[caller] >= s.live_subscriptions_per_caller:
            refusal = f"at most {s.live_subscriptions_per_caller} operations at once per caller"
        if refusal is not None:
            error = GraphQLError(refusal + "; complete one first", extensions={"code": TooManyRequests.code})
            await self.send_message({"id": op_id, "type": "error", "payload": [error.formatted]})
            return
        await super().handle_subscribe(message)
        operation = self.operations.get(op_id)
        if operation is not None and operation.task is not None:
            self.shared.per_caller[caller] += 1
            operation.task.add_done_callback(lambda _task: self.shared.release(caller))

    async def send_message(self, message: Message) -> None:
        await self.websocket.send_json(message)

    async def handle_task_exception(self, error: Exception) -> None:
        if isinstance(error, WebSocketDisconnected):
            return  # the client left while its operation was answering
        log.error("GraphQL over WebSocket: an operation failed", exc_info=error)
