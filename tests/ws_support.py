"""For the subscription tests: the harness's app served by uvicorn on a free port (WebSockets need a
real server), and a small graphql-transport-ws client on the `websockets` library that answers the
server's pings the way graphql-ws does."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.conftest import free_port

PROTOCOL = Subprotocol("graphql-transport-ws")

SUBSCRIPTION = """
subscription($id: ID!, $name: String!) {
  property_upload_changed(record_id: $id, name: $name) {
    url file_name size content_type width height versions
    version_details { name status url width height format error }
  }
}"""


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Any, **config: Any) -> AsyncIterator[str]:
    """Serve `app` (its lifespan already running) until the block ends; yields the WebSocket URL."""
    port = free_port()
    server = _QuietServer(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            ws_per_message_deflate=False,  # as app/run.py serves WebSockets
            ws_ping_interval=None,
            **config,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


class Client:
    """One graphql-transport-ws connection. `receive()` answers pings and returns the next other message."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pings = 0
        self.answer_pings = True

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def receive(self, within: float = 15) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                message: dict[str, Any] = json.loads(await self.ws.recv())
                if message.get("type") == "ping":
                    self.pings += 1
                    if self.answer_pings:
                        await self.send({"type": "pong"})
                    continue
                return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        ack = await self.receive()
        assert ack["type"] == "connection_ack", ack
        return ack

    async def subscribe(self, op_id: str, query: str = SUBSCRIPTION, **variables: Any) -> None:
        await self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})

    async def until_done(self, op_id: str, within: float = 30) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The `next` payloads of `op_id`, and the message that ended it (complete or error)."""
        events: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            message = await self.receive(deadline - loop.time())
            assert message.get("id") == op_id, message
            if message["type"] == "next":
                events.append(message["payload"])
            else:
                return events, message

    async def next_event(self, op_id: str, within: float = 15) -> dict[str, Any]:
        message = await self.receive(within)
        assert message.get("id") == op_id and message["type"] == "next", message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def closed(self, within: float = 15) -> tuple[int | None, str | None]:
        """Wait until the server closes the connection; its close code and reason."""
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(within):
                while True:
                    message = await self.ws.recv()
                    if self.answer_pings and message == '{"type":"ping"}':
                        await self.send({"type": "pong"})
        return self.ws.close_code, self.ws.close_reason


@contextlib.asynccontextmanager
async def connected(url: str, **kwargs: Any) -> AsyncIterator[Client]:
    async with connect(url, subprotocols=[PROTOCOL], open_timeout=10, **kwargs) as ws:
        yield Client(ws)


def state(event: dict[str, Any]) -> dict[str, str]:
    """{version name: status} of one event."""
    return {v["name"]: v["status"] for v in event["data"]["property_upload_changed"]["version_details"]}
