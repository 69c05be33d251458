"""Live upload status: `property_upload_changed` over WebSocket (graphql-transport-ws), against the
app served by uvicorn, with the real version worker code building real versions on moto's S3."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from typing import Any

import pytest

from app.models import Upload, UploadVersion
from app.uploads import ANONYMOUS
from tests import files
from tests.conftest import Harness
from tests.gql import RECORD_CREATE, RECORD_DELETE, RECORD_UPDATE
from tests.test_auth import SECRET, create_as, token, upload_as
from tests.test_flow import upload_photo
from tests.ws_support import connected, serving, state

PENDING = {"thumb": "pending", "medium": "pending", "large": "pending"}
READY = {"thumb": "ready", "medium": "ready", "large": "ready"}


async def save_photo(h: Harness) -> str:
    url = await upload_photo(h)
    props = [{"name": "image", "value": url}]
    created = await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props})
    return str(created["record_create"]["id"])


async def build_versions(h: Harness, record_id: str) -> None:
    """What the worker does with the record's queue message (app/versions.py)."""
    upload = await Upload.get(record_id=int(record_id), status="attached")
    await h.app.state.services.versions.process(upload.id)


def upload_of(event: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = event["data"]["property_upload_changed"]
    return data


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Any:
    """Whatever a client sends, the server logs no error and no traceback."""
    caplog.set_level(logging.INFO)
    yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


async def test_versions_arrive_one_by_one_then_the_subscription_completes(h: Harness, no_tracebacks: Any) -> None:
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("s1", id=record_id, name="image")
        first = upload_of(await client.next_event("s1"))
        assert state({"data": {"property_upload_changed": first}}) == PENDING
        assert first["file_name"] == "cat.png" and first["versions"] == {} and first["url"].endswith("cat.png")
        await build_versions(h, record_id)
        events, end = await client.until_done("s1")
    assert end == {"id": "s1", "type": "complete"}
    # One event per version that became ready (each built and announced on its own), none repeated.
    seen = [state(e) for e in events]
    assert seen[-1] == READY and len(seen) == len({json.dumps(s, sort_keys=True) for s in seen})
    assert 1 <= len(seen) <= 3
    last = upload_of(events[-1])
    assert set(last["versions"]) == {"thumb", "medium", "large"}
    thumb = next(v for v in last["version_details"] if v["name"] == "thumb")
    assert (thumb["width"], thumb["height"], thumb["format"]) == (200, 200, "webp")


async def test_a_settled_upload_answers_once_and_completes(h: Harness) -> None:
    record_id = await save_photo(h)
    await build_versions(h, record_id)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("a", id=record_id, name="image")
        events, end = await client.until_done("a")
    assert [state(e) for e in events] == [READY] and end["type"] == "complete"


async def test_unknown_records_and_properties_answer_the_query_codes(h: Harness, no_tracebacks: Any) -> None:
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        for op_id, rid, name, code in [
            ("1", "999999", "image", "RECORD_NOT_FOUND"),
            ("2", record_id, "nope", "PROPERTY_NOT_FOUND"),
            ("3", record_id, "caption", "PROPERTY_TYPE_MISMATCH"),
            ("4", "not-an-id", "image", "BAD_USER_INPUT"),
        ]:
            await client.subscribe(op_id, id=rid, name=name)
            message = await client.receive()
            assert message["type"] == "error" and message["id"] == op_id, message
            assert [e["extensions"]["code"] for e in message["payload"]] == [code]
        # A document that is not valid GraphQL, or asks for an unknown field, is an error too.
        await client.subscribe("5", query="subscription { property_upload_changed(record_id: 1) { nope } }")
        message = await client.receive()
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        await client.subscribe("6", query="subscription {")
        message = await client.receive()
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        # The connection is still good for a real subscription.
        await client.subscribe("7", id=record_id, name="image")
        assert state(await client.next_event("7")) == PENDING


async def test_replacing_removing_and_deleting(h: Harness) -> None:
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("r", id=record_id, name="image")
        first = upload_of(await client.next_event("r"))
        # Replaced: the new file, its versions pending again.
        new_url = await upload_photo(h, files.jpeg(80, 60), "dog.jpg", "image/jpeg")
        props = [{"name": "image", "value": new_url}]
        await h.ok(RECORD_UPDATE, {"id": record_id, "prop": "image", "props": props})
        replaced = upload_of(await client.next_event("r"))
        assert replaced["file_name"] == "dog.jpg" and replaced["url"] != first["url"]
        assert state({"data": {"property_upload_changed": replaced}}) == PENDING
        # A change to another property is no event; removing the file is the last one, all null.
        await h.ok(RECORD_UPDATE, {"id": record_id, "prop": "image", "props": [{"name": "caption", "value": "x"}]})
        await h.ok(RECORD_UPDATE, {"id": record_id, "prop": "image", "props": [{"name": "image", "value": None}]})
        events, end = await client.until_done("r")
        assert [upload_of(e) for e in events] == [
            {
                "url": None,
                "file_name": None,
                "size": None,
                "content_type": None,
                "width": None,
                "height": None,
                "versions": {},
                "version_details": [],
            }
        ]
        assert end["type"] == "complete"

        # A property with no file to begin with: that state once, then complete.
        await client.subscribe("e", id=record_id, name="image")
        events, end = await client.until_done("e")
        assert [upload_of(e)["file_name"] for e in events] == [None] and end["type"] == "complete"

        # Deleting the record completes a subscription at once.
        other = await save_photo(h)
        await client.subscribe("d", id=other, name="image")
        assert state(await client.next_event("d")) == PENDING
        await h.ok(RECORD_DELETE, {"id": other})
        events, end = await client.until_done("d")
        assert events == [] and end == {"id": "d", "type": "complete"}


async def test_a_subscriber_that_lost_a_notification_converges(harness_factory: Any) -> None:
    """A change committed behind the notifications' back (as by a process that crashed before its
    NOTIFY) reaches the subscriber through the periodic re-read."""
    h = await harness_factory(LIVE_RESYNC_SECONDS=1)
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("l", id=record_id, name="image")
        assert state(await client.next_event("l")) == PENDING
        await UploadVersion.filter(upload__record_id=int(record_id)).update(status="failed", error="lost")
        events, end = await client.until_done("l", within=10)
    assert [state(e) for e in events] == [{"thumb": "failed", "medium": "failed", "large": "failed"}]
    assert end["type"] == "complete"


async def test_a_slow_reader_gets_the_latest_state_and_never_delays_others(h: Harness) -> None:
    """Followers share nothing but the database read: one that stops reading keeps no queue of
    states; when it reads again it gets the latest one (the final state is never dropped)."""
    record_id = await save_photo(h)
    live = h.app.state.services.live
    slow = await live.open(ANONYMOUS, record_id, "image")
    fast = await live.open(ANONYMOUS, record_id, "image")
    slow_states, fast_states = slow.states(), fast.states()
    assert (await anext(slow_states)) is not None and (await anext(fast_states)) is not None
    # `slow` stops reading here; `fast` follows every change while the worker builds the versions.
    seen: list[list[str]] = []

    async def follow_fast() -> None:
        async for upload in fast_states:
            assert upload is not None
            seen.append([v.status for v in upload.versions])

    follower = asyncio.create_task(follow_fast())
    await build_versions(h, record_id)
    await asyncio.wait_for(follower, 10)
    assert seen[-1] == ["ready"] * 3
    # The slow follower missed every intermediate state and finds the final one waiting.
    final = await asyncio.wait_for(anext(slow_states), 10)
    assert final is not None and [v.status for v in final.versions] == ["ready"] * 3
    with pytest.raises(StopAsyncIteration):
        await anext(slow_states)
    assert live.followers == 0


async def test_private_urls_only_for_the_owner(harness_factory: Any, no_tracebacks: Any) -> None:
    h = await harness_factory(AUTH_JWT_SECRET=SECRET)
    record = await create_as(
        h,
        "alice",
        await upload_as(h, "alice", table="documents", prop="resume"),
        **{
            "table": "documents",
            "prop": "resume",
        },
    )
    async with serving(h.app) as url:
        async with connected(url) as client:
            await client.init({"Authorization": f"Bearer {token('alice')}"})
            await client.subscribe("p", id=record["id"], name="resume")
            events, end = await client.until_done("p")
            [upload] = [upload_of(e) for e in events]
            assert upload["file_name"] == "cv.pdf" and end["type"] == "complete"
            assert "X-Amz-Signature=" in upload["url"]
        # documents are `read: owner`: to anyone else the record does not exist, as for a query.
        for who in ("bob", None):
            async with connected(url) as client:
                await client.init({"Authorization": f"Bearer {token(who)}"} if who else None)
                await client.subscribe("p", id=record["id"], name="resume")
                message = await client.receive()
                assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "RECORD_NOT_FOUND"
        # A bad token refuses the connection (4403, the code in the reason), as HTTP refuses the request.
        for payload in ({"Authorization": "Bearer forged"}, {"authorization": 42}, {"Authorization": "Basic x"}):
            async with connected(url) as client:
                await client.send({"type": "connection_init", "payload": payload})
                code, reason = await client.closed()
                assert code == 4403 and reason and reason.startswith("UNAUTHENTICATED: "), (payload, reason)
        # The handshake's own header counts when connection_init carries none.
        headers = {"Authorization": f"Bearer {token('alice')}"}
        async with connected(url, additional_headers=headers) as client:
            await client.init()
            await client.subscribe("h", id=record["id"], name="resume")
            assert "X-Amz-Signature=" in upload_of(await client.next_event("h"))["url"]
        # Anonymous callers may read over WebSocket as over HTTP, but mutations need a token.
        async with connected(url) as client:
            await client.init()
            await client.subscribe("m", query='mutation { record_delete(id: "1") { id } }')
            message = await client.receive()
            assert message["type"] == "next" and message["payload"]["errors"][0]["extensions"]["code"] == (
                "UNAUTHENTICATED"
            )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "WebSocket message must be valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "WebSocket message must be valid JSON"),
        (b"\x00binary", "WebSocket message type must be text"),
        ([1, 2], "Invalid message: expected a JSON object"),
        ({"type": 5}, "Invalid message: 'type' must be a string"),
        ({"type": "next", "id": "1", "payload": {}}, "Invalid message: a client does not send 'next'"),
        ({"type": "connection_ack"}, "Invalid message: a client does not send 'connection_ack'"),
        ({"type": "subscribe", "id": ["x"], "payload": {"query": "{ tables { name } }"}}, "'id' must be a string"),
        ({"type": "subscribe", "id": "", "payload": {"query": "{ tables { name } }"}}, "'id' must be a string"),
        ({"type": "subscribe", "id": "1", "payload": "{ tables { name } }"}, "payload of subscribe must be an object"),
        ({"type": "subscribe", "id": "1", "payload": {"query": 5}}, "payload.query must be a string"),
        ({"type": "subscribe", "id": "1", "payload": {"query": "{ a }", "variables": []}}, "variables must be an"),
        ({"type": "subscribe", "id": "1", "payload": {"query": "{ a }", "operationName": 1}}, "operationName must"),
        ({"type": "complete", "id": 7}, "'id' must be a string"),
        ({"type": "ping", "payload": "x"}, "the payload of ping must be an object"),
    ],
)
async def test_malformed_messages_close_with_4400(h: Harness, message: Any, reason: str, no_tracebacks: Any) -> None:
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.send(message)
        code, said = await client.closed()
    assert code == 4400 and said is not None and reason in said, said


async def test_protocol_violations_close_as_the_protocol_says(harness_factory: Any, no_tracebacks: Any) -> None:
    h = await harness_factory(LIVE_INIT_TIMEOUT=1, MAX_BODY_BYTES=4096)
    query = "{ tables { name } }"
    async with serving(h.app) as url:
        async with connected(url) as client:  # subscribe before connection_init
            await client.send({"type": "subscribe", "id": "1", "payload": {"query": query}})
            assert (await client.closed())[0] == 4401
        async with connected(url) as client:  # two connection_init
            await client.init()
            await client.send({"type": "connection_init"})
            assert await client.closed() == (4429, "Too many initialisation requests")
        async with connected(url) as client:  # no connection_init in time
            assert await client.closed() == (4408, "Connection initialisation timeout")
        async with connected(url) as client:  # the same id twice
            await client.init()
            await client.subscribe("dup", id="1", name="image")  # an error answer, then the id is free again
            assert (await client.receive())["type"] == "error"
            record_id = await save_photo(h)
            await client.subscribe("dup", id=record_id, name="image")
            await client.next_event("dup")
            await client.subscribe("dup", id=record_id, name="image")
            assert await client.closed() == (4409, "Subscriber for dup already exists")
        async with connected(url) as client:  # a message over MAX_BODY_BYTES
            await client.init()
            await client.send({"type": "subscribe", "id": "1", "payload": {"query": "#" + "x" * 5000}})
            code, reason = await client.closed()
            assert code == 1009 and reason == "Message too big: at most 4096 bytes"
        async with connected(url) as client:  # queries work over the socket too, with codes on errors
            await client.init({"Authorization": None})
            await client.subscribe("q", query=query)
            events, end = await client.until_done("q")
            assert events == [{"data": {"tables": [{"name": "documents"}, {"name": "photos"}]}}]
            assert end["type"] == "complete"
        # Only graphql-transport-ws is spoken (not the legacy subscriptions-transport-ws).
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        async with connect(url, subprotocols=[Subprotocol("graphql-ws")]) as ws:
            await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (4406, "Subprotocol not acceptable")


async def test_a_flood_of_messages_is_cut_off(harness_factory: Any, no_tracebacks: Any) -> None:
    h = await harness_factory(LIVE_MESSAGE_RATE=5)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        for _ in range(200):
            await client.send({"type": "pong"})
        assert await client.closed() == (4429, "Too many messages: at most 5 per second")


async def test_limits_per_connection_and_per_caller(harness_factory: Any) -> None:
    h = await harness_factory(LIVE_SUBSCRIPTIONS_PER_CONNECTION=2, LIVE_SUBSCRIPTIONS_PER_CALLER=3)
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as one, connected(url) as two:
        await one.init()
        await two.init()
        for op_id in ("a", "b"):
            await one.subscribe(op_id, id=record_id, name="image")
            await one.next_event(op_id)
        await one.subscribe("c", id=record_id, name="image")
        refused = await one.receive()
        assert refused["type"] == "error" and refused["id"] == "c"
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_REQUESTS"
        assert "at most 2 operations at once on one connection" in refused["payload"][0]["message"]
        # The same (anonymous) caller on another connection: one more, then the caller's limit.
        await two.subscribe("a", id=record_id, name="image")
        await two.next_event("a")
        await two.subscribe("b", id=record_id, name="image")
        refused = await two.receive()
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_REQUESTS"
        assert "at most 3 operations at once per caller" in refused["payload"][0]["message"]
        # Completing one frees its place once its operation has ended.
        await one.send({"type": "complete", "id": "a"})
        for attempt in range(100):
            await two.subscribe(f"b{attempt}", id=record_id, name="image")
            if (await two.receive())["type"] == "next":
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the completed subscription's place was never freed")


async def test_keepalive_pings_and_timeouts(harness_factory: Any) -> None:
    h = await harness_factory(LIVE_KEEPALIVE=1, LIVE_IDLE_TIMEOUT=3)
    record_id = await save_photo(h)
    async with serving(h.app) as url:
        async with connected(url) as client:  # a client that answers pings stays while it follows something
            await client.init()
            await client.subscribe("k", id=record_id, name="image")
            await client.next_event("k")
            with pytest.raises(TimeoutError):
                await client.receive(within=4.5)
            assert client.pings >= 3
            await client.send({"type": "complete", "id": "k"})
            # With nothing left to follow, the connection is closed once idle.
            assert await client.closed() == (1000, "Idle: no operation for 3 s")
        async with connected(url) as client:  # a client that never answers is closed
            await client.init()
            client.answer_pings = False
            await client.subscribe("k", id=record_id, name="image")
            assert await client.closed(within=10) == (4408, "Keep-alive timeout: no pong to two pings")


async def test_cross_origin_browsers_need_cors_origins(harness_factory: Any) -> None:
    h = await harness_factory(CORS_ORIGINS="http://app.test")
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    async with serving(h.app) as url:
        async with connected(url, origin="http://app.test") as client:
            await client.init()
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin="http://evil.test"):
                pass
        assert refused.value.response.status_code == 403


async def test_a_connection_ends_with_its_token(harness_factory: Any) -> None:
    """Private URLs stop flowing when the token that opened the connection expires."""
    h = await harness_factory(AUTH_JWT_SECRET=SECRET, LIVE_KEEPALIVE=1)
    import time

    record = await create_as(
        h,
        "alice",
        await upload_as(h, "alice", table="documents", prop="resume"),
        **{
            "table": "documents",
            "prop": "resume",
        },
    )
    async with serving(h.app) as url, connected(url) as client:
        await client.init({"Authorization": f"Bearer {token('alice', exp=int(time.time()) + 2)}"})
        await client.subscribe("t", id=record["id"], name="resume")
        await client.until_done("t")
        code, reason = await client.closed(within=10)
    assert (code, reason) == (4403, "UNAUTHENTICATED: the token has expired; reconnect with a new one")


async def test_metrics_count_connections_followers_and_closes(h: Harness) -> None:
    record_id = await save_photo(h)

    async def metric(series: str) -> float:
        text = (await h.http.get("/metrics")).text
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(series + " ")), 0.0)

    before = await metric('uploads_live_closes_total{code="4400"}')
    async with serving(h.app) as url:
        async with connected(url) as client:
            await client.init()
            await client.subscribe("m", id=record_id, name="image")
            await client.next_event("m")
            assert await metric("uploads_live_connections") >= 1
            assert await metric("uploads_live_followers") >= 1
            await client.send("nonsense")
            assert (await client.closed())[0] == 4400
    assert await metric('uploads_live_closes_total{code="4400"}') == before + 1
    assert await metric('uploads_live_notifications_total{origin="local"}') >= 0


async def test_shutting_down_with_subscriptions_open(h: Harness, no_tracebacks: Any) -> None:
    """The server restarting closes sockets with 1012 (graphql-ws clients reconnect and resubscribe)
    and leaves no follower behind."""
    import contextlib

    record_id = await save_photo(h)
    stack = contextlib.AsyncExitStack()
    url = await stack.enter_async_context(serving(h.app))
    async with connected(url) as client:
        await client.init()
        await client.subscribe("s", id=record_id, name="image")
        await client.next_event("s")
        assert h.app.state.services.live.followers == 1
        stopping = asyncio.create_task(stack.aclose())
        code, _ = await client.closed()
        await stopping
    assert code == 1012
    assert h.app.state.services.live.followers == 0


async def test_closed_subscriptions_frozen_while_open_are_freed_by_the_full_pass(h: Harness) -> None:
    """GC_FREEZE_SURVIVORS: what a closed connection leaves as cyclic garbage stays frozen until the
    full pass, which frees it."""
    freezer = h.app.state.gc_freezer
    record_id = await save_photo(h)

    async def one_connection(subscriptions: int) -> None:
        async with serving(h.app) as url:  # stopping the server ends its handlers
            async with connected(url) as client:
                await client.init()
                for i in range(subscriptions):
                    await client.subscribe(str(i), id=record_id, name="image")
                for i in range(subscriptions):
                    await client.next_event(str(i))
                frozen = gc.get_freeze_count()
                gc.collect(1)  # the open subscriptions survive a young collection: frozen
                assert gc.get_freeze_count() > frozen

    await one_connection(1)  # what stays alive after the first one (caches) is not garbage
    freezer.full_pass()
    before = gc.get_freeze_count()
    for _ in range(3):
        await one_connection(10)
    gc.collect()
    kept = gc.get_freeze_count() - before
    assert kept > 100  # their cycles: a full collection does not walk frozen objects
    freezer.full_pass()
    assert gc.get_freeze_count() - before < kept / 10  # freed
