"""Use case: follow the upload in one record property live, until nothing more can change on its own.

`LiveUploads.open(record_id, prop)` checks the record and property (the same error codes as a
query) and returns a `Follow`, whose `states()` yields the property's upload as it is now, then again
each time it is different, and ends once it is settled (see `settled`) or the record is deleted.

How a follower learns of a change: every process's `Events` (app/events.py) calls `notify`, which
only wakes the followers of that record property. A woken follower re-reads the record; followers
of the same property share one read (the topic's single flight), and a follower that is slow to take
its states simply finds the latest one when it comes back: in between, intermediate states are
skipped and the last one never is. A notification can be lost (a crash between a commit and its
NOTIFY, a dropped connection), so a sweep over LIVE_RESYNC_SECONDS reads the followed records again
in batches of 200, compares them with what their followers last read, and wakes those that differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import AsyncGenerator, Hashable, Sequence
from typing import Any

from tortoise.models import Model

from app import db, metrics
from app.errors import PropertyNotFound, PropertyTypeMismatch, RecordNotFound
from app.events import Events
from app.models import Record, Upload, UploadVersion
from app.records import Records, RecordView, parse_id
from app.uploads import Caller, Promotion, ScanState, UploadStatus, UploadView

log = logging.getLogger(__name__)

Key = tuple[int, str]  # (record id, property name)

# Worker bookkeeping that no reader sees: a change there is not a change of state.
_HIDDEN: dict[type[Model], frozenset[str]] = {UploadVersion: frozenset({"lease_until", "attempts", "updated_at"})}
RESYNC_BATCH = 200  # records per re-read: a few milliseconds of work between events
READ_BATCH = 500  # records per batched read of followers woken together
_GONE = ("record deleted",)  # the fingerprint of a record that no longer exists
READ_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@functools.cache
def columns(model: type[Model]) -> tuple[str, ...]:
    """The fields of `model` that make up a state: all of them (a column added later counts at once)
    but the hidden ones. Known once the ORM is initialised (foreign keys' id fields)."""
    hidden = _HIDDEN.get(model, frozenset())
    return tuple(name for name in model._meta.fields_db_projection if name not in hidden)


def settled(state: UploadView | None) -> bool:
    """Nothing more will change on its own: no file, or a file whose scan (if any) is over, whose
    promotion is done, and whose every version is ready or failed."""
    if state is None:
        return True
    upload = state.upload
    if upload.scan_status == ScanState.PENDING or upload.promotion == Promotion.PENDING:
        return False
    return all(v.status in ("ready", "failed") for v in state.versions)


def fingerprint(state: UploadView | None) -> Hashable:
    """What the state looks like to a reader, comparable with the resync's `_read_fingerprints`."""
    if state is None:
        return None
    upload = tuple(getattr(state.upload, c) for c in columns(Upload))
    version_columns = columns(UploadVersion)
    return (_frozen(upload), tuple(_frozen(tuple(getattr(v, c) for c in version_columns)) for v in state.versions))


def _frozen(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # JSON columns come back as lists; a fingerprint only needs equality, but tuples keep it hashable.
    return tuple(tuple(value) if isinstance(value, list) else value for value in row)


class _Topic:
    """The followers of one record property, and what the last read of it looked like.

    Only the fingerprint is kept between changes, not the record: thousands of followed uploads
    are that many fewer objects for Python's collector to walk."""

    __slots__ = (
        "cached_fingerprint",
        "cached_generation",
        "followers",
        "generation",
        "key",
        "reading",
        "reading_generation",
    )

    def __init__(self, key: Key) -> None:
        self.key = key
        self.followers: set[asyncio.Event] = set()
        self.generation = 0  # one more with every notification about this property
        self.cached_generation = -1  # the generation of the last read; -1: nothing read yet
        self.cached_fingerprint: Hashable = None
        self.reading: asyncio.Future[RecordView | None] | None = None  # shared while followers wait on it
        self.reading_generation = -1

    def changed(self) -> None:
        self.generation += 1
        for woken in self.followers:
            woken.set()

    def read(self, loader: _Loader) -> asyncio.Future[RecordView | None]:
        """The record as of this generation or later: one database read for the followers woken together."""
        want = self.generation
        if self.reading is None or self.reading_generation < want:
            reading = asyncio.ensure_future(self._load(loader, want))
            reading.add_done_callback(_retrieve)
            # Handed to the followers already waiting on it, then let go.
            reading.add_done_callback(lambda done: self._let_go(done))
            self.reading, self.reading_generation = reading, want
        return self.reading

    def _let_go(self, done: asyncio.Future[RecordView | None]) -> None:
        if self.reading is done:
            self.reading = None

    async def _load(self, loader: _Loader, generation: int) -> RecordView | None:
        view = await loader.load(self.key[0])
        self.keep(view, generation)
        return view

    def keep(self, view: RecordView | None, generation: int) -> None:
        """Remember what `view`, read at `generation`, looks like, unless a newer read is remembered."""
        if generation > self.cached_generation:
            self.cached_generation = generation
            self.cached_fingerprint = _GONE if view is None else fingerprint(view.uploads.get(self.key[1]))


class _Loader:
    """Reads records for the followers in batches: the records asked for while one batch is being
    read are read together next, so a burst of changes (or of new subscriptions) costs a few reads
    of many records instead of one read each, and the latency stays bounded under load."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self._pending: dict[int, list[asyncio.Future[RecordView | None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def load(self, record_id: int) -> asyncio.Future[RecordView | None]:
        future: asyncio.Future[RecordView | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(record_id, []).append(future)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="live-reads")
        return future

    async def _run(self) -> None:
        while self._pending:
            batch = dict(itertools.islice(self._pending.items(), READ_BATCH))
            for record_id in batch:
                del self._pending[record_id]
            try:
                views = await self.records.get_many(list(batch))
            except Exception as exc:  # noqa: BLE001 - handed to every reader of the batch, which decides
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for record_id, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(views.get(record_id))


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A shared read whose followers all left meanwhile: its outcome is nobody's, but must be taken.
    if not future.cancelled():
        future.exception()


class LiveUploads:
    def __init__(self, records: Records, events: Events, resync_seconds: float) -> None:
        self.records = records
        self.events = events
        self.resync_seconds = resync_seconds
        self._topics: dict[Key, _Topic] = {}
        self._by_record: dict[int, set[str]] = {}
        # One more with every notification: a read taken before and still current after is up to date.
        self.sequence = 0
        self._resync_wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Any = None
        self._loader = _Loader(records)

    @property
    def followers(self) -> int:
        return sum(len(t.followers) for t in self._topics.values())

    async def start(self) -> None:
        self._unlisten = self.events.listen(self.notify, self._resync_wanted.set)
        self._task = asyncio.create_task(self._resync_forever(), name="live-resync")

    async def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- notifications --------------------------------------------------------------------------
    def notify(self, record_id: int, prop: str | None) -> None:
        self.sequence += 1
        props = self._by_record.get(record_id)
        if not props:
            return
        for name in list(props) if prop is None else [prop] if prop in props else []:
            self._topics[(record_id, name)].changed()

    # -- following ------------------------------------------------------------------------------
    async def open(self, caller: Caller, record_id: str, prop: str) -> Follow:
        """Check that `caller` may follow `prop` of `record_id` and read it; RECORD_NOT_FOUND (a record
        the caller may not read does not exist for it), PROPERTY_NOT_FOUND or PROPERTY_TYPE_MISMATCH
        otherwise. Checked once: who may read a record cannot change while it lives (its table is
        fixed, and only its owner may set its user_id, to itself)."""
        rid = parse_id(record_id)
        sequence = self.sequence
        view = await self._loader.load(rid)
        if view is None or not self.records.access.can_read(caller, view.record.table, view.record.owner):
            raise RecordNotFound(f"no record with id {rid}")
        table = view.record.table
        pdef = self.records.uploads.table(table).properties.get(prop)
        if pdef is None:
            raise PropertyNotFound(f"table {table!r} has no property {prop[:100]!r}")
        if not pdef.is_upload:
            raise PropertyTypeMismatch(f"property {table}.{prop} is a {pdef.type}, not an upload")
        return Follow(self, (rid, prop), view, sequence)

    def _attach(self, key: Key, woken: asyncio.Event) -> _Topic:
        topic = self._topics.get(key)
        if topic is None:
            topic = self._topics[key] = _Topic(key)
            self._by_record.setdefault(key[0], set()).add(key[1])
        topic.followers.add(woken)
        metrics.LIVE_FOLLOWERS.inc()
        return topic

    def _detach(self, topic: _Topic, woken: asyncio.Event) -> None:
        topic.followers.discard(woken)
        metrics.LIVE_FOLLOWERS.dec()
        if not topic.followers and self._topics.get(topic.key) is topic:
            del self._topics[topic.key]
            props = self._by_record[topic.key[0]]
            props.discard(topic.key[1])
            if not props:
                del self._by_record[topic.key[0]]

    # -- the periodic re-read ---------------------------------------------------------------------
    async def _resync_forever(self) -> None:
        """A sweep over every followed upload per LIVE_RESYNC_SECONDS, one batch at a time, spread
        over the interval so it never stalls the events in between; after a gap (`on_gap`), a sweep
        at once. A sweep the database interrupts is started again, at once, once it answers."""
        failures = 0
        while True:
            urgent = self._resync_wanted.is_set()
            self._resync_wanted.clear()
            batches = self._batches()
            if not batches:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._resync_wanted.wait(), self.resync_seconds)
                continue
            pause = 0.0 if urgent else self.resync_seconds / len(batches)
            for batch in batches:
                if self._resync_wanted.is_set():
                    break  # a gap: sweep again from the start, at once
                try:
                    await self._resync_batch(batch)
                except Exception as exc:
                    if not db.is_unavailable(exc):
                        raise
                    if not failures:
                        log.warning("live status: re-read interrupted, the database is unavailable (%s)", exc)
                    failures += 1
                    await asyncio.sleep(READ_RETRY_DELAYS[min(failures, len(READ_RETRY_DELAYS)) - 1])
                    self._resync_wanted.set()
                    break
                failures = 0
                if pause:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._resync_wanted.wait(), pause)

    def _batches(self) -> list[list[_Topic]]:
        topics = list(self._topics.values())
        return [topics[i : i + RESYNC_BATCH] for i in range(0, len(topics), RESYNC_BATCH)]

    async def resync(self) -> int:
        """Compare every followed upload with the database now; wake the followers of those whose
        last read differs. Returns how many were woken."""
        return sum([await self._resync_batch(batch) for batch in self._batches()])

    async def _resync_batch(self, batch: list[_Topic]) -> int:
        generations = [t.generation for t in batch]
        present, found = await _read_fingerprints(sorted({t.key[0] for t in batch}))
        woken = 0
        for topic, generation in zip(batch, generations, strict=True):
            # Its followers are re-reading already (a notification before or during this batch).
            if topic.generation != generation or topic.cached_generation != generation:
                continue
            current = found.get(topic.key) if topic.key[0] in present else _GONE
            if current != topic.cached_fingerprint:
                topic.changed()
                woken += 1
        return woken


async def _read_fingerprints(record_ids: Sequence[int]) -> tuple[set[int], dict[Key, Hashable]]:
    """The records among `record_ids` that exist, and the fingerprint of each upload property of theirs
    that holds a file, in three queries of plain rows: the rows Records reads (attached uploads, their
    versions by id)."""
    ids = list(record_ids)
    upload_columns, version_columns = columns(Upload), columns(UploadVersion)
    existing, uploads, versions = await asyncio.gather(
        Record.filter(id__in=ids, deleted_at=None).values_list("id", flat=True),
        Upload.filter(record_id__in=ids, status=UploadStatus.ATTACHED).values_list(*upload_columns),
        UploadVersion.filter(upload__record_id__in=ids, upload__status=UploadStatus.ATTACHED)
        .order_by("id")
        .values_list(*version_columns),
    )
    of_upload = version_columns.index("upload_id")
    by_upload: dict[Any, list[tuple[Any, ...]]] = {}
    for row in versions:
        by_upload.setdefault(row[of_upload], []).append(_frozen(tuple(row)))
    uid, rid, prop = (upload_columns.index(c) for c in ("id", "record_id", "property_name"))
    found: dict[Key, Hashable] = {
        (row[rid], row[prop]): (_frozen(tuple(row)), tuple(by_upload.get(row[uid], []))) for row in uploads
    }
    return {int(str(i)) for i in existing}, found


class Follow:
    """One follower of one record property; iterate `states()` once."""

    def __init__(self, live: LiveUploads, key: Key, first: RecordView, sequence: int) -> None:
        self.live = live
        self.key = key
        self.owner = first.record.owner
        self._first: RecordView | None = first
        self._sequence = sequence

    async def states(self) -> AsyncGenerator[UploadView | None, None]:
        """The upload (None: the property holds no file) now, then each different state; ends once
        settled, or when the record is deleted."""
        woken = asyncio.Event()
        topic = self.live._attach(self.key, woken)
        try:
            first, self._first = self._first, None
            # The record read by open() is current unless a notification came in between; a change
            # committed after that read is notified after it, so this follower is woken for it.
            if self.live.sequence == self._sequence:
                view: RecordView | None = first
                topic.keep(first, topic.generation)
            else:
                view = await self._read(topic)
            first = None
            last: Hashable = _GONE
            while view is not None:
                state = view.uploads.get(self.key[1])
                view = None
                now = fingerprint(state)
                if now != last:
                    last = now
                    yield state
                if settled(state):
                    return
                state = None  # nothing of the record is held while waiting
                await woken.wait()
                woken.clear()
                view = await self._read(topic)
        finally:
            self.live._detach(topic, woken)

    async def _read(self, topic: _Topic) -> RecordView | None:
        """The shared read; while the database is unreachable the follower waits and tries again."""
        failures = 0
        while True:
            try:
                return await asyncio.shield(topic.read(self.live._loader))
            except Exception as exc:
                if not db.is_unavailable(exc):
                    raise
                delay = READ_RETRY_DELAYS[min(failures, len(READ_RETRY_DELAYS) - 1)]
                failures += 1
                log.warning("live status: record %s unreadable (%s); retrying in %.1f s", self.key[0], exc, delay)
                await asyncio.sleep(delay)
