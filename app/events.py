"""Change notifications across processes: "the upload in property P of record R changed".

A use case that changed what a record's upload looks like calls `Events.publish(record_id, prop)`
once its transaction has committed (`prop` None: the record as a whole, e.g. it was deleted). Every
listener (the live status, app/live.py) in every API process is told, and re-reads the state it is
told changed: a notification carries where to look, never the state, so a duplicate costs one read
and a notification that overtakes its own commit cannot exist (it is sent after the commit).

- In the process that publishes, listeners are called at once (the API, and the worker beside it).
- PostgreSQL: each process holds one dedicated asyncpg connection, outside the pool, that LISTENs on
  the `upload_changes` channel and sends the process's notifications with pg_notify(), batched by a
  background task so a publisher never waits on it. A process skips the echo of its own.
- SQLite (one host, embedded): in-process only. A standalone worker on SQLite reaches subscribers
  through the live status's periodic re-read (LIVE_RESYNC_SECONDS) instead.

A notification lost on the way (the process crashed between its commit and its NOTIFY, or the
listening connection dropped) is caught by that periodic re-read; after the listening connection is
re-established the listeners' `on_gap` asks for that re-read at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from app import db, metrics

log = logging.getLogger(__name__)

OnChange = Callable[[int, str | None], None]
OnGap = Callable[[], None]
Publish = Callable[[int, str | None], None]

CHANNEL = "upload_changes"
# PostgreSQL refuses a payload of 8000 bytes or more; changes are sent in chunks below that.
MAX_PAYLOAD = 7900
# Changes waiting for the PostgreSQL connection (it is down, or slower than the publishers). Beyond
# this the oldest are dropped: other processes then converge through their periodic re-read.
MAX_OUTBOX = 50_000
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
# How often an idle listening connection is checked, so a silently dead one is replaced.
HEALTH_CHECK_SECONDS = 15.0
HEALTH_CHECK_TIMEOUT = 5.0


class Events:
    """One per process, in the container (app/services.py); `open()` after the database."""

    def __init__(self, database_url: str) -> None:
        self._listeners: list[tuple[OnChange, OnGap]] = []
        self._postgres = _PostgresChannel(self._remote, self._gap) if db.is_postgres(database_url) else None

    def listen(self, on_change: OnChange, on_gap: OnGap) -> Callable[[], None]:
        """Call `on_change(record_id, prop)` for each change, here or in another process, and
        `on_gap()` when changes may have been missed. Both must return at once (set a flag).
        Returns the function that stops listening."""
        entry = (on_change, on_gap)
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry) if entry in self._listeners else None

    def publish(self, record_id: int, prop: str | None = None) -> None:
        """Announce a committed change. Never blocks and never raises: the caller's work is done."""
        metrics.LIVE_NOTIFICATIONS.labels("local").inc()
        self._deliver(record_id, prop)
        if self._postgres is not None:
            self._postgres.send(record_id, prop)

    async def open(self) -> None:
        if self._postgres is not None:
            await self._postgres.start()

    async def close(self) -> None:
        if self._postgres is not None:
            await self._postgres.stop()

    def _remote(self, record_id: int, prop: str | None) -> None:
        metrics.LIVE_NOTIFICATIONS.labels("remote").inc()
        self._deliver(record_id, prop)

    def _deliver(self, record_id: int, prop: str | None) -> None:
        for on_change, _ in list(self._listeners):
            try:
                on_change(record_id, prop)
            except Exception:  # a listener's bug must not fail the publisher, whose commit is done
                log.exception("change listener failed on record %s property %s", record_id, prop)

    def _gap(self) -> None:
        for _, on_gap in list(self._listeners):
            try:
                on_gap()
            except Exception:
                log.exception("change listener failed on a gap")


def encode(changes: Sequence[tuple[int, str | None]]) -> Iterator[str]:
    """JSON arrays of [record_id, prop] pairs, each under MAX_PAYLOAD characters (ASCII only)."""
    chunk: list[str] = []
    size = 2
    for record_id, prop in changes:
        item = json.dumps([record_id, prop], separators=(",", ":"))
        if chunk and size + len(item) + 1 > MAX_PAYLOAD:
            yield "[" + ",".join(chunk) + "]"
            chunk, size = [], 2
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield "[" + ",".join(chunk) + "]"


def decode(payload: str) -> list[tuple[int, str | None]] | None:
    """The changes of one payload, or None if it is not ours (anyone may NOTIFY on the channel)."""
    try:
        items = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(items, list):
        return None
    changes: list[tuple[int, str | None]] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2):
            return None
        record_id, prop = item
        if type(record_id) is not int or record_id <= 0 or not (prop is None or isinstance(prop, str)):
            return None
        changes.append((record_id, prop))
    return changes


class _PostgresChannel:
    """LISTEN and NOTIFY over one dedicated connection, re-established whenever it is lost."""

    def __init__(self, deliver: OnChange, gap: OnGap) -> None:
        self._deliver = deliver
        self._gap = gap
        self._outbox: dict[tuple[int, str | None], None] = {}  # an ordered set: duplicates merge
        self._wake = asyncio.Event()
        self._conn: Any = None
        self._own_pid: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._foreign_logged = False
        self._dropped = 0

    def send(self, record_id: int, prop: str | None) -> None:
        if len(self._outbox) >= MAX_OUTBOX:
            del self._outbox[next(iter(self._outbox))]
            self._dropped += 1
            if self._dropped % 10_000 == 1:
                log.warning(
                    "change notifications are backing up (%d dropped); other processes catch up by re-reading",
                    self._dropped,
                )
        self._outbox[(record_id, prop)] = None
        self._wake.set()

    async def start(self) -> None:
        try:
            await self._connect()
        except Exception as exc:  # noqa: BLE001 - the loop keeps trying; subscribers re-read meanwhile
            log.warning("change notifications: cannot LISTEN yet (%s); retrying in the background", _why(exc))
        self._task = asyncio.create_task(self._run(), name="change-notifications")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._outbox and self._connected():
            with contextlib.suppress(Exception):  # best effort on the way out
                await self._notify_outbox()
        await self._disconnect()

    def _connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def _connect(self) -> None:
        conn = await db.dedicated_connection()
        try:
            await conn.add_listener(CHANNEL, self._on_notification)
            conn.add_termination_listener(lambda _conn: self._wake.set())
        except BaseException:
            await conn.close()
            raise
        self._conn, self._own_pid = conn, conn.get_server_pid()
        # Whatever happened while nobody listened (or before this process listened) is re-read.
        self._gap()

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), HEALTH_CHECK_TIMEOUT)

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._connected():
                await self._disconnect()
                try:
                    await self._connect()
                    log.info("change notifications: listening again")
                    failures = 0
                except Exception as exc:  # noqa: BLE001 - retried with backoff
                    delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                    failures += 1
                    log.warning("change notifications: cannot connect (%s); retrying in %.1f s", _why(exc), delay)
                    await asyncio.sleep(delay)
                    continue
            idle = False
            with contextlib.suppress(TimeoutError):
                idle = not await asyncio.wait_for(self._wake.wait(), HEALTH_CHECK_SECONDS)
            self._wake.clear()
            try:
                if not self._connected():
                    raise ConnectionError("the listening connection was closed")
                if self._outbox:
                    await self._notify_outbox()
                elif idle:
                    await asyncio.wait_for(self._conn.fetchval("SELECT 1"), HEALTH_CHECK_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - any failure: drop the connection and reconnect
                log.warning("change notifications: connection lost (%s); reconnecting", _why(exc))
                await self._disconnect()

    async def _notify_outbox(self) -> None:
        # What is published while these are sent goes to a fresh outbox, for the next round: a change
        # committed after its NOTIFY went out must be announced again.
        changes, self._outbox = self._outbox, {}
        try:
            for payload in encode(list(changes)):
                await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        except BaseException:
            changes.update(self._outbox)
            self._outbox = changes
            raise

    def _on_notification(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if pid == self._own_pid:
            return  # ours: delivered in this process when it was published
        changes = decode(payload)
        if changes is None:
            if not self._foreign_logged:
                self._foreign_logged = True
                log.warning("ignoring a notification on %r that is not a list of changes: %.80r", channel, payload)
            return
        for record_id, prop in changes:
            self._deliver(record_id, prop)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
