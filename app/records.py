"""Use cases of records, as platformOS has them: create, update, soft delete (and restore, purge),
read one, list a page with platformOS's filter and sort, and load related records for a page.

Uploads are verified and promoted in storage before anything is saved (app/uploads/saving.py). Every write that
depends on the row's current state (ownership, deleted or not, array and counter operations) reads
the row locked inside the transaction, so a concurrent delete and update of one record end in one
order or the other, never half-done.

Reads cost a constant number of queries whatever the page size: the page (and its count, when asked
for, side by side), the uploads of its records and their versions (side by side), and the same for
each related_record(s) field of the document.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from app.access import Access
from app.errors import BadUserInput, Forbidden, RecordNotFound
from app.events import Publish
from app.models import Record, Upload, UploadVersion
from app.record_filter import (
    MAX_PER_PAGE,
    JoinSide,
    build_query,
    coerce_plain,
    join_side,
    parse_id,
    related_query,
    to_utc,
)
from app.record_indexes import PREFIX, property_indexes
from app.record_sql import POSTGRES, SQLITE, select_count, select_page, select_related
from app.record_values import (
    KEEP,
    FileValue,
    PropertyWrite,
    RecordChanges,
    apply,
    as_writes,
    external_id,
    split,
    timestamp,
)
from app.tables import TableDef
from app.uploads import Caller, Uploads, UploadStatus, UploadView, Verified
from app.value_upload import ValueUpload

log = logging.getLogger(__name__)

# platformOS removes a deleted record for good 30 days after its deleted_at.
PURGE_AFTER = timedelta(days=30)
PURGE_BATCH = 200
PURGE_INTERVAL = 3600.0
DEFAULT_RELATED_LIMIT = 100
MAX_RELATED_LIMIT = 1000
# Records one related_records field may read for a whole page (join values times the limit).
MAX_RELATED_ROWS = 20_000

__all__ = ["PropertyWrite", "RecordChanges", "RecordPage", "RecordView", "Records", "RelatedSpec", "parse_id"]


@dataclass
class RecordView:
    record: Record
    uploads: dict[str, UploadView]
    # The answer of the mutation that created the record: its files are the caller's own, whatever
    # the caller could read later (anonymous mode has no owners to check).
    created: bool = False


@dataclass
class RecordPage:
    results: list[RecordView]
    page: int
    per_page: int
    has_next_page: bool
    total_entries: int | None = None  # None: not asked for, not counted

    @property
    def total_pages(self) -> int | None:
        if self.total_entries is None:
            return None
        return math.ceil(self.total_entries / self.per_page) if self.total_entries else 0

    @property
    def has_previous_page(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class RelatedSpec:
    """One related_record(s) field of a document: which records of which tables join how."""

    tables: tuple[str, ...]
    join_on_property: str
    foreign_property: str
    filter: Mapping[str, Any] | None = None
    sort: Sequence[Any] | None = None
    limit: int = DEFAULT_RELATED_LIMIT
    key: str = field(default="", compare=False)


def _dialect() -> str:
    return SQLITE if connections.get("default").capabilities.dialect == SQLITE else POSTGRES


async def _select(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return await connections.get("default").execute_query_dict(sql, params)


def _given(files: Mapping[str, FileValue]) -> dict[str, str]:
    """The upload values that name an uploaded file (null or "" clears the property instead)."""
    return {name: value for name, value in files.items() if isinstance(value, str) and value}


def _to_create(files: Mapping[str, FileValue]) -> dict[str, ValueUpload]:
    """The upload values the server creates the file of (value_upload)."""
    return {name: value for name, value in files.items() if isinstance(value, ValueUpload)}


def _records(rows: Sequence[Mapping[str, Any]]) -> list[Record]:
    return [Record._init_from_db(**row) for row in rows]


class Records:
    def __init__(
        self, uploads: Uploads, *, purge_after: timedelta = PURGE_AFTER, publish: Publish | None = None
    ) -> None:
        self.uploads = uploads
        self.purge_after = purge_after
        # Announces committed changes of a record's uploads to live subscribers (app/events.py).
        self.publish: Publish = publish or (lambda record_id, prop: None)
        settings = uploads.settings
        # Who may read and write what (app/access.py): every read and write below goes through it.
        self.access = Access(uploads.tables, auth=settings.auth_enabled, anonymous_reads=settings.anonymous_reads)

    @property
    def tables(self) -> Mapping[str, TableDef]:
        return self.uploads.tables

    # -- writes --------------------------------------------------------------------------------
    async def create(
        self,
        caller: Caller,
        table: str,
        properties: Sequence[PropertyWrite | tuple[str, str | None]] = (),
        changes: RecordChanges | None = None,
    ) -> RecordView:
        changes = changes or RecordChanges()
        tdef = self.uploads.table(table)
        self.access.check_create(caller, table)
        plain, files = split(tdef, [*as_writes(properties), *changes.properties])
        if changes.id is not KEEP and changes.id is not None:
            raise BadUserInput("record ids are assigned by the server: leave record.id out when creating")
        owner = self._owner(caller, changes.user_id, None, creating=True)
        now = self.uploads.clock()
        created_at = self._time(changes.created_at, "created_at") or now
        updated_at = self._time(changes.updated_at, "updated_at") or now
        deleted_at = self._time(changes.deleted_at, "deleted_at")
        ext = None if changes.external_id is KEEP else external_id(changes.external_id)
        # Files are created (value_upload), verified and promoted first; the transaction then attaches
        # them (app/uploads/creating.py, app/uploads/saving.py).
        async with (
            self.uploads.creating(caller, tdef, _to_create(files)) as created,
            self.uploads.saving(caller, tdef, {**_given(files), **created}, None) as verified,
        ):
            async with in_transaction():
                record = await Record.create(
                    table=table,
                    properties=apply(tdef, {}, plain),
                    owner=owner,
                    external_id=ext,
                    created_at=created_at,
                    updated_at=updated_at,
                    deleted_at=deleted_at,
                )
                views = await self._attach(record, verified)
        # A new record holds exactly the uploads just attached, as just written: no need to read them back.
        return RecordView(record, views, created=True)

    async def update(
        self,
        caller: Caller,
        record_id: str,
        properties: Sequence[PropertyWrite | tuple[str, str | None]] = (),
        changes: RecordChanges | None = None,
    ) -> RecordView:
        changes = changes or RecordChanges()
        rid = parse_id(record_id)
        if changes.id is not KEEP and changes.id is not None and parse_id(changes.id, "record.id") != rid:
            raise BadUserInput(f"record.id {str(changes.id)[:40]} is not the id being updated ({rid})")
        restoring = changes.deleted_at is not KEEP
        # Read once to learn the table (verification needs it); the row is read again, locked, below.
        found = await Record.get_or_none(id=rid)
        self._check_found(caller, found, rid, changes.table, restoring)
        assert found is not None
        # Before any file is looked at in storage; checked again on the locked row below.
        self.access.check_change(caller, found.table, found.owner)
        tdef = self.uploads.table(found.table)
        plain, files = split(tdef, as_writes(changes.properties) + as_writes(properties))
        cleared = [name for name, value in files.items() if not value]
        # (The access check above also runs before the server fetches or renders anything for value_upload.)
        to_create = _to_create(files)
        now = self.uploads.clock()
        async with (
            self.uploads.creating(caller, tdef, to_create) as created,
            self.uploads.saving(caller, tdef, {**_given(files), **created}, rid) as verified,
        ):
            async with in_transaction():
                locked = await Record.select_for_update().get_or_none(id=rid)
                # Checked again on the locked row: a delete may have committed since the first read.
                self._check_found(caller, locked, rid, changes.table, restoring)
                assert locked is not None
                self.access.check_change(caller, locked.table, locked.owner)
                locked.owner = self._owner(caller, changes.user_id, locked.owner, creating=False)
                if changes.external_id is not KEEP:
                    locked.external_id = external_id(changes.external_id)
                if changes.created_at is not KEEP:
                    created_at = self._time(changes.created_at, "created_at")
                    if created_at is None:
                        raise BadUserInput("created_at cannot be null")
                    locked.created_at = created_at
                if changes.deleted_at is not KEEP:
                    locked.deleted_at = self._time(changes.deleted_at, "deleted_at")
                locked.updated_at = self._time(changes.updated_at, "updated_at") or now
                locked.properties = apply(tdef, locked.properties, plain)
                await locked.save()
                discarded = await self._release(locked.id, cleared)
                await self._attach(locked, verified)
                keep = [v.upload.id for v in verified.values()]
                discarded += await self._release(locked.id, list(verified), keep=keep)
        for name in files:
            self.publish(locked.id, name)
        if restoring:
            self.publish(locked.id, None)
        await self.uploads.discard(discarded)
        return await self._view(locked)

    async def delete(self, caller: Caller, record_id: str, table: str | None = None) -> RecordView:
        """Soft delete, as platformOS: the record gets deleted_at and leaves every query that does
        not ask for deleted records; its files stay until it is purged (restore: deleted_at null)."""
        rid = parse_id(record_id)
        async with in_transaction():
            locked = await Record.select_for_update().get_or_none(id=rid)
            self._check_found(caller, locked, rid, table, restoring=False)
            assert locked is not None
            self.access.check_change(caller, locked.table, locked.owner)
            locked.deleted_at = self.uploads.clock()
            await locked.save(update_fields=["deleted_at"])
        self.publish(locked.id, None)
        return await self._view(locked)

    async def purge_deleted(self, now: datetime | None = None) -> int:
        """Remove for good the records deleted more than `purge_after` ago, with their files (after
        the transaction commits; the sweep retries files storage could not delete). Returns how
        many records went. A record restored meanwhile (deleted_at null or later) is kept."""
        cutoff = (now or self.uploads.clock()) - self.purge_after
        purged = 0
        while True:
            candidates = [
                int(str(i))
                for i in await Record.filter(deleted_at__lt=cutoff)
                .order_by("deleted_at")
                .limit(PURGE_BATCH)
                .values_list("id", flat=True)
            ]
            if not candidates:
                return purged
            async with in_transaction():
                # Whole rows: Tortoise drops FOR UPDATE from values_list queries. Locked and checked
                # again, so a record restored since the candidates were listed is left alone.
                locked = await Record.select_for_update().filter(id__in=candidates, deleted_at__lt=cutoff)
                ids = [r.id for r in locked]
                discarded: list[int] = []
                for rid in ids:
                    discarded += await self._release(rid, None)
                if ids:
                    await Record.filter(id__in=ids, deleted_at__lt=cutoff).delete()
            await self.uploads.discard(discarded)
            purged += len(ids)
            if len(candidates) < PURGE_BATCH:
                return purged

    async def purge_periodically(self, interval: float = PURGE_INTERVAL) -> None:
        """Purge every `interval` seconds, forever (the worker runs it beside the sweep); a failed
        pass is logged and the next one runs as usual. Cancel the task to stop."""
        while True:
            try:
                purged = await self.purge_deleted()
                if purged:
                    log.info("purged %d record(s) deleted more than %s ago", purged, self.purge_after)
            except Exception:
                log.exception("purging deleted records failed; retrying in %ss", interval)
            await asyncio.sleep(interval)

    @staticmethod
    def _owner(caller: Caller, given: Any, current: str | None, *, creating: bool) -> str | None:
        """platformOS's user_id is the record's owner. With auth on, a new record is the caller's,
        user_id can only name the caller, and only the owner may give it (no one takes over a record
        another may change too, or one without owner); without auth it is whatever the client says."""
        if caller.subject is not None:
            if given is not KEEP and (given is None or str(given) != caller.subject):
                raise Forbidden("user_id is the record's owner: with auth on it can only be your own user id")
            if creating:
                return caller.subject
            if given is not KEEP and current != caller.subject:
                raise Forbidden("only the record's owner may set its user_id")
            return current
        if given is KEEP:
            return current
        if given is None:
            return None
        text = str(given).strip()
        if not text or len(text) > 255:
            raise BadUserInput("user_id must be 1 to 255 characters (or null)")
        return text

    @staticmethod
    def _time(raw: Any, what: str) -> datetime | None:
        if raw is KEEP or raw is None:
            return None
        return to_utc(timestamp(raw, what))

    def _check_found(self, caller: Caller, record: Record | None, rid: int, table: str | None, restoring: bool) -> None:
        """A record the caller may not read answers exactly as one that does not exist (before
        anything that depends on its state, deleted or not), so its existence does not leak."""
        if (
            record is None
            or (table is not None and record.table != table)
            or not self.access.can_read(caller, record.table, record.owner)
        ):
            where = f" in table {table[:100]!r}" if table is not None else ""
            raise RecordNotFound(f"no record with id {rid}{where}")
        if record.deleted_at is not None and not restoring:
            raise RecordNotFound(
                f"record {rid} is deleted; restore it with record_update(record: {{deleted_at: null}})"
            )

    async def _attach(self, record: Record, verified: dict[str, Verified]) -> dict[str, UploadView]:
        """Attach the verified uploads inside the transaction; the views of those attached now."""
        views: dict[str, UploadView] = {}
        for name, item in verified.items():
            view = await self.uploads.attach(item, record.id)
            if view is not None:
                views[name] = view
        return views

    async def _release(self, record_id: int, names: list[str] | None, keep: Sequence[int] = ()) -> list[int]:
        """Detach the record's uploads (all, or of `names`) except `keep`; they become `discarded`."""
        query = Upload.filter(record_id=record_id, status=UploadStatus.ATTACHED)
        if names is not None:
            if not names:
                return []
            query = query.filter(property_name__in=names)
        if keep:
            query = query.exclude(id__in=list(keep))
        ids = [int(str(i)) for i in await query.values_list("id", flat=True)]
        if ids:
            await Upload.filter(id__in=ids).update(status=UploadStatus.DISCARDED, record_id=None)
        return ids

    # -- reads ---------------------------------------------------------------------------------
    async def get(self, caller: Caller, record_id: str) -> RecordView | None:
        """A live record by id that `caller` may read (deleted ones are found through
        records(filter: {deleted_at: ...})); None as well when it may not, so existence does not leak."""
        record = await Record.get_or_none(id=parse_id(record_id), deleted_at=None)
        if record is None or not self.access.can_read(caller, record.table, record.owner):
            return None
        return await self._view(record)

    async def get_many(self, record_ids: Sequence[int]) -> dict[int, RecordView]:
        """The live (not deleted) records among `record_ids`, by id, whoever may read them (the caller
        of live status is checked once, when it starts following): three queries for any number."""
        records = await Record.filter(id__in=list(record_ids), deleted_at=None)
        return {view.record.id: view for view in await self._views(records)}

    async def list_page(
        self,
        caller: Caller,
        filter: Mapping[str, Any] | None,
        sort: Sequence[Any] | None,
        page: int,
        per_page: int,
        *,
        with_total: bool = True,
    ) -> RecordPage:
        """One page of `records(filter:, sort:, page:, per_page:)` among the records `caller` may
        read. The count runs only when the client asks for total_entries or total_pages;
        has_next_page comes from one extra row (both under the same read rule)."""
        if page < 1:
            raise BadUserInput(f"page must be 1 or more, got {page}")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise BadUserInput(f"per_page must be between 1 and {MAX_PER_PAGE}, got {per_page}")
        query = build_query(self.tables, filter, sort, reads=self.access.reads(caller))
        dialect = _dialect()
        page_sql, page_params = select_page(query, dialect, per_page + 1, (page - 1) * per_page)
        total: int | None = None
        if with_total:
            count_sql, count_params = select_count(query, dialect)
            # Independent: on PostgreSQL they run side by side on two pooled connections.
            counted, rows = await asyncio.gather(_select(count_sql, count_params), _select(page_sql, page_params))
            total = int(counted[0]["n"])
        else:
            rows = await _select(page_sql, page_params)
        records = _records(rows[:per_page])
        return RecordPage(await self._views(records), page, per_page, len(rows) > per_page, total)

    async def related(self, caller: Caller, spec: RelatedSpec, parents: Sequence[Record]) -> list[list[RecordView]]:
        """related_record(s) for every record of a page at once: each parent's records (of
        spec.tables, that `caller` may read, matching spec.filter, in spec.sort order, at most
        spec.limit) whose foreign_property equals the parent's join_on_property (or is one of its
        elements)."""
        if not 1 <= spec.limit <= MAX_RELATED_LIMIT:
            raise BadUserInput(f"limit must be between 1 and {MAX_RELATED_LIMIT}, got {spec.limit}")
        query, scope = related_query(self.tables, spec.tables, spec.filter, spec.sort, reads=self.access.reads(caller))
        foreign = join_side(self.tables, spec.foreign_property, scope, "foreign_property")
        if foreign.type == "array":
            raise BadUserInput("foreign_property: join on the related record's id or a scalar property")
        wanted: list[set[Any]] = []
        for parent in parents:
            local = join_side(self.tables, spec.join_on_property, [parent.table], "join_on_property")
            joined = (_as_foreign(foreign, value) for value in _local_values(parent, local))
            wanted.append({value for value in joined if value is not None})
        values = sorted(set().union(*wanted), key=repr) if wanted else []
        if not values:
            return [[] for _ in parents]
        if len(values) * spec.limit > MAX_RELATED_ROWS:
            raise BadUserInput(
                f"related records: {len(values)} join values with limit {spec.limit} could read more than "
                f"{MAX_RELATED_ROWS} records; lower per_page or limit"
            )
        sql, params = select_related(query, _dialect(), foreign, values, spec.limit)
        views = await self._views(_records(await _select(sql, params)))
        keyed = [(_foreign_value(foreign, v.record), v) for v in views]
        return [[v for key, v in keyed if key in want][: spec.limit] for want in wanted]

    async def _view(self, record: Record) -> RecordView:
        return (await self._views([record]))[0]

    async def _views(self, records: list[Record]) -> list[RecordView]:
        """Two queries for any number of records, side by side: their uploads, and those uploads'
        versions (selected through the same condition on the upload, so neither waits for the other)."""
        if not records:
            return []
        ids = [r.id for r in records]
        uploads, versions = await asyncio.gather(
            Upload.filter(record_id__in=ids, status=UploadStatus.ATTACHED),
            UploadVersion.filter(upload__record_id__in=ids, upload__status=UploadStatus.ATTACHED).order_by("id"),
        )
        by_upload: dict[int, list[UploadVersion]] = {}
        for v in versions:
            by_upload.setdefault(v.upload_id, []).append(v)
        by_record: dict[int, dict[str, UploadView]] = {r.id: {} for r in records}
        for u in uploads:
            assert u.record_id is not None
            by_record[u.record_id][u.property_name] = UploadView(u, by_upload.get(u.id, []))
        return [RecordView(r, by_record[r.id]) for r in records]

    # -- indexes -------------------------------------------------------------------------------
    async def ensure_indexes(self) -> list[str]:
        """Create the per-property indexes the tables imply (app/record_indexes.py) that the
        database lacks; returns their names. Safe to run from several processes at once."""
        dialect = _dialect()
        conn = connections.get("default")
        if dialect == POSTGRES:
            rows = await conn.execute_query_dict(
                "SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE t.relname = 'records' AND c.relname LIKE $1",
                [PREFIX + "%"],
            )
        else:
            rows = await conn.execute_query_dict(
                "SELECT name, 1 AS valid FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' "
                "AND name LIKE ?1",
                [PREFIX + "%"],
            )
        existing = {str(r["name"]): bool(r["valid"]) for r in rows}
        wanted = property_indexes(self.tables)
        created: list[str] = []
        for index in wanted:
            if existing.get(index.name):
                continue
            try:
                if index.name in existing:
                    # A concurrent build that failed leaves an invalid index that IF NOT EXISTS would keep.
                    await conn.execute_script(index.drop(dialect))
                await conn.execute_script(index.create(dialect))
            except Exception as exc:  # noqa: BLE001 - another process may be building the same index
                log.warning("could not create index %s on records(%s.%s): %r", index.name, index.table, index.prop, exc)
                continue
            created.append(index.name)
            log.info("created index %s for records of %s by %s", index.name, index.table, index.prop)
        unused = sorted(set(existing) - {i.name for i in wanted})
        if unused:
            log.info(
                "indexes of properties no table declares any more (drop them when no process needs them): %s",
                ", ".join(unused),
            )
        return created


def _local_values(record: Record, side: JoinSide) -> list[Any]:
    if side.kind == "id":
        return [record.id]
    if side.kind == "column":
        value = getattr(record, side.name)
        return [] if value is None else [value]
    value = record.properties.get(side.name)
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def _as_foreign(foreign: JoinSide, value: Any) -> Any:
    """A join value as the related side stores it, or None when it cannot match anything."""
    try:
        if foreign.kind == "id":
            return parse_id(value)
        if foreign.kind == "column":
            return str(value)
        return coerce_plain(foreign.type, value if isinstance(value, str) else str(value), "join value")
    except BadUserInput:
        return None


def _foreign_value(foreign: JoinSide, record: Record) -> Any:
    if foreign.kind == "id":
        return record.id
    if foreign.kind == "column":
        return getattr(record, foreign.name)
    return record.properties.get(foreign.name)
