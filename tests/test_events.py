"""Change notifications across processes (app/events.py): PostgreSQL LISTEN/NOTIFY between
separate containers and a separate worker process, a listening connection that is killed and comes
back, and the payload format that anyone on the channel could imitate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from app import events as events_module
from app.events import CHANNEL, MAX_PAYLOAD, Events, decode, encode
from app.models import Record, Upload
from app.services import Services
from app.settings import ROOT
from tests.conftest import BACKEND, Harness
from tests.test_live import PENDING, READY, save_photo
from tests.test_worker import FAST, _worker_env, queue_url
from tests.ws_support import connected, serving, state

__all__ = ["queue_url"]  # a fixture, imported for pytest

postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="LISTEN/NOTIFY: TEST_DATABASE=postgres")


def test_payloads_round_trip_in_chunks_postgres_accepts() -> None:
    changes = [(i, "image" if i % 3 else None) for i in range(1, 3000)]
    payloads = list(encode(changes))
    assert len(payloads) > 1 and all(len(p) < MAX_PAYLOAD for p in payloads)
    assert [c for p in payloads for c in decode(p) or []] == changes


@pytest.mark.parametrize(
    "payload", ["", "nope", "{}", "[[1]]", '[["1", "image"]]', "[[0, null]]", "[[1, 2]]", "[[true, null]]", "[" * 5000]
)
def test_payloads_that_are_not_changes_are_refused(payload: str) -> None:
    assert decode(payload) is None


class Recorder:
    def __init__(self) -> None:
        self.changes: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()
        self.gaps = 0
        self.gap = asyncio.Event()

    def on_change(self, record_id: int, prop: str | None) -> None:
        self.changes.put_nowait((record_id, prop))

    def on_gap(self) -> None:
        self.gaps += 1
        self.gap.set()

    async def next(self) -> tuple[int, str | None]:
        return await asyncio.wait_for(self.changes.get(), 10)


@contextlib.asynccontextmanager
async def standalone_worker(h: Harness, database_url: str) -> AsyncIterator[None]:
    """`python -m app.worker` for the block's duration; it must then stop cleanly on SIGTERM."""
    env = _worker_env(h, database_url, ROOT / "app" / "schema") | {"WORKER_CONCURRENCY": "1"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.worker", cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield
    finally:
        worker.terminate()
        _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0, stderr.decode()[-2000:]


@contextlib.asynccontextmanager
async def opened(h: Harness) -> AsyncIterator[Events]:
    """Another process's notifications, as far as PostgreSQL can tell: its own connection."""
    other = Events(h.settings.database_url)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


@postgres_only
async def test_changes_cross_to_other_listeners_and_the_echo_is_skipped(h: Harness) -> None:
    services: Services = h.app.state.services
    here, there = Recorder(), Recorder()
    services.events.listen(here.on_change, here.on_gap)
    async with opened(h) as other:
        other.listen(there.on_change, there.on_gap)
        assert there.gaps == 0  # listening from the start: nothing to catch up on
        services.events.publish(7, "image")
        assert await here.next() == (7, "image")  # at once, in the publishing process
        assert await there.next() == (7, "image")  # through PostgreSQL
        other.publish(8, None)
        assert await here.next() == (8, None)
        assert await there.next() == (8, None)
        # Many changes at once travel in payloads PostgreSQL accepts, each delivered once.
        for i in range(1, 2001):
            services.events.publish(i, "image")
        received = [await there.next() for _ in range(2000)]
        assert received == [(i, "image") for i in range(1, 2001)]
        assert here.changes.qsize() == 2000 and there.changes.empty()


@postgres_only
async def test_a_foreign_notification_is_ignored(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    services: Services = h.app.state.services
    seen = Recorder()
    services.events.listen(seen.on_change, seen.on_gap)
    conn = await asyncpg.connect(h.settings.database_url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, "DROP TABLE records")
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps([[5, "image"]]))
    finally:
        await conn.close()
    assert await seen.next() == (5, "image")
    assert "ignoring a notification on 'upload_changes' that is not a list of changes" in caplog.text


@postgres_only
async def test_a_killed_listening_connection_comes_back_and_reports_the_gap(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "RECONNECT_DELAYS", (0.05,))
    services: Services = h.app.state.services
    seen = Recorder()
    services.events.listen(seen.on_change, seen.on_gap)
    channel = services.events._postgres
    assert channel is not None
    pid = channel._own_pid
    admin = await asyncpg.connect(h.settings.database_url.replace("postgres://", "postgresql://", 1))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        # Reconnected: whatever was missed meanwhile must be re-read.
        await asyncio.wait_for(seen.gap.wait(), 10)
        assert channel._own_pid != pid
        await admin.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps([[9, "image"]]))
        assert await seen.next() == (9, "image")
    finally:
        await admin.close()


@postgres_only
async def test_a_subscriber_sees_another_process_change_the_record(h: Harness) -> None:
    """Two API processes: one holds the subscription, the other deletes the record."""
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("x", id=record_id, name="image")
        assert state(await client.next_event("x")) == PENDING
        async with opened(h) as other:
            async with in_transaction():  # as Records.delete does it, in the other process
                await Upload.filter(record_id=int(record_id)).update(status="discarded", record_id=None)
                await Record.filter(id=int(record_id)).delete()
            other.publish(int(record_id), None)
            events, end = await client.until_done("x", within=10)
    assert events == [] and end["type"] == "complete"


@postgres_only
async def test_versions_built_by_a_separate_worker_process_arrive(
    harness_factory: Any, queue_url: str, database_url: str
) -> None:
    """`python -m app.worker` in its own process builds the versions; its NOTIFYs reach the API's
    subscribers, one event per version (the periodic re-read is an hour away)."""
    h = await harness_factory(QUEUE_URL=queue_url, LIVE_RESYNC_SECONDS=3600, **FAST)
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("w", id=record_id, name="image")
        assert state(await client.next_event("w")) == PENDING
        async with standalone_worker(h, database_url):
            events, end = await client.until_done("w", within=60)
    assert end["type"] == "complete" and state(events[-1]) == READY
    assert len(events) >= 2, [state(e) for e in events]  # not all at once: each version as it is ready


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's own way across processes")
async def test_a_separate_worker_on_sqlite_converges_through_the_periodic_re_read(
    harness_factory: Any, queue_url: str, database_url: str
) -> None:
    """On SQLite a standalone worker's changes have no channel to the API: its subscribers still
    get the final state, within LIVE_RESYNC_SECONDS."""
    h = await harness_factory(QUEUE_URL=queue_url, LIVE_RESYNC_SECONDS=1, **FAST)
    record_id = await save_photo(h)
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("w", id=record_id, name="image")
        assert state(await client.next_event("w")) == PENDING
        async with standalone_worker(h, database_url):
            events, end = await client.until_done("w", within=60)
    assert end["type"] == "complete" and state(events[-1]) == READY


async def direct(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))


async def pending_photo(conn: asyncpg.Connection) -> int:
    """A photos record whose image has its three versions pending, as record_create leaves it."""
    record_id: int = await conn.fetchval(
        """INSERT INTO records ("table", properties, created_at, updated_at)
           VALUES ('photos', '{}', now(), now()) RETURNING id"""
    )
    upload_id = await conn.fetchval(
        """INSERT INTO uploads (token, "table", property_name, status, method, key, record_id, min_size, max_size,
               content_types, acl, content_disposition, file_name, size, content_type, expires_at, created_at,
               attached_at)
           VALUES (md5(random()::text), 'photos', 'image', 'attached', 'post', 'photos/image/t/p.png', $1, 0, 1000,
               '[]', 'public', 'inline', 'p.png', 100, 'image/png', now(), now(), now()) RETURNING id""",
        record_id,
    )
    await conn.executemany(
        """INSERT INTO upload_versions (upload_id, name, key, status, attempts, updated_at)
           VALUES ($1, $2::text, 'photos/image/t/versions/' || $2::text, 'pending', 0, now())""",
        [(upload_id, name) for name in ("thumb", "medium", "large")],
    )
    return record_id


@postgres_only
async def test_a_partition_from_the_database_loses_no_change(
    moto: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The API loses PostgreSQL (its pool and its listening connection) while another process, still
    connected, commits and notifies a change: once the network is back the subscriber gets it."""
    from urllib.parse import urlsplit

    from app.main import create_app
    from tests.conftest import make_settings
    from tests.test_faults import Relay

    monkeypatch.setattr(events_module, "RECONNECT_DELAYS", (0.1,))
    caplog.set_level(logging.INFO, logger="app.events")
    parts = urlsplit(database_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    await relay.start()
    relayed = database_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{relay.port}")
    app = create_app(make_settings(moto, relayed, LIVE_RESYNC_SECONDS=3600))
    other = await direct(database_url)  # another process, whose network is fine
    try:
        record_id = await pending_photo(other)
        async with app.router.lifespan_context(app), serving(app) as url, connected(url) as client:
            await client.init()
            await client.subscribe("p", id=str(record_id), name="image")
            assert state(await client.next_event("p")) == PENDING
            await relay.stop()
            await other.execute(
                "UPDATE upload_versions SET status = 'ready' WHERE upload_id IN "
                "(SELECT id FROM uploads WHERE record_id = $1)",
                record_id,
            )
            await other.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps([[record_id, "image"]]))
            await relay.start()
            events, end = await client.until_done("p", within=30)
        assert [state(e) for e in events] == [READY] and end["type"] == "complete"
        # It came through the sweep after the listening connection was back, not a periodic one.
        assert "change notifications: listening again" in caplog.text
    finally:
        await other.close()
        if relay.server is not None:
            await relay.stop()
