"""Use cases of records: create, update, delete, read, list; uploads are verified before saving."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from app.errors import BadUserInput, Forbidden, PropertyNotFound, RecordNotFound, UploadAlreadyAttached
from app.events import Publish
from app.models import Record, Upload, UploadVersion
from app.tables import PropertyDef, TableDef
from app.uploads import Caller, Uploads, UploadView, Verified, version_key

MAX_PER_PAGE = 100
MAX_IDS = 100
MAX_STRING = 65_536


@dataclass
class RecordView:
    record: Record
    uploads: dict[str, UploadView]


@dataclass
class RecordPage:
    results: list[RecordView]
    total_entries: int
    page: int
    per_page: int

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total_entries / self.per_page) if self.total_entries else 0

    @property
    def has_next_page(self) -> bool:
        return self.page < self.total_pages


def parse_id(raw: str | int) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise BadUserInput(f"id {str(raw)[:40]!r} is not a record id (a positive integer)") from None
    if not 0 < value < 2**63:
        raise BadUserInput(f"id {value} is out of range")
    return value


def coerce(pdef: PropertyDef, value: str | None) -> Any:
    """A plain property's string value as its declared type; None clears it."""
    if value is None:
        return None
    where = f"property {pdef.name!r} ({pdef.type})"
    if len(value) > MAX_STRING:
        raise BadUserInput(f"{where}: value is longer than {MAX_STRING} characters")
    try:
        if pdef.type == "string":
            return value
        if pdef.type == "integer":
            number = int(value.strip())
            if not -(2**63) <= number < 2**63:
                raise ValueError
            return number
        if pdef.type == "float":
            result = float(value)
            if not math.isfinite(result):
                raise ValueError
            return result
        if pdef.type == "boolean":
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError
            return lowered == "true"
        if pdef.type == "datetime":
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).isoformat()
        if pdef.type == "array":
            items = json.loads(value)
            if not isinstance(items, list):
                raise ValueError
            return items
    except ValueError:
        pass
    examples = {
        "integer": "42",
        "float": "1.5",
        "boolean": "true",
        "datetime": "2026-01-31T12:00:00Z",
        "array": '["a", 1]',
    }
    raise BadUserInput(f"{where}: {value[:60]!r} is not a valid {pdef.type} (e.g. {examples.get(pdef.type, '')})")


class Records:
    def __init__(self, uploads: Uploads, publish: Publish | None = None) -> None:
        self.uploads = uploads
        # Announces committed changes of a record's uploads to live subscribers (app/events.py).
        self.publish: Publish = publish or (lambda record_id, prop: None)

    # -- writes --------------------------------------------------------------------------------
    async def create(self, caller: Caller, table: str, properties: Sequence[tuple[str, str | None]]) -> RecordView:
        tdef = self.uploads.table(table)
        plain, files = self._split(tdef, properties)
        verified = await self._verify_all(caller, tdef, files, None)
        async with in_transaction():
            record = await Record.create(
                table=table, properties={k: v for k, v in plain.items() if v is not None}, owner=caller.subject
            )
            attached, views = await self._attach(record, tdef, verified)
        await self.uploads.attached(attached)
        # No publish: nobody can follow a record that did not exist (subscribing needs its id).
        # A new record holds exactly the uploads just attached, as just written: no need to read them back.
        return RecordView(record, views)

    async def update(self, caller: Caller, record_id: str, properties: Sequence[tuple[str, str | None]]) -> RecordView:
        record = await self._owned(caller, record_id)
        tdef = self.uploads.table(record.table)
        plain, files = self._split(tdef, properties)
        verified = await self._verify_all(caller, tdef, {k: v for k, v in files.items() if v}, record.id)
        cleared = [name for name, value in files.items() if not value]
        async with in_transaction():
            locked = await Record.select_for_update().get(id=record.id)
            values = dict(locked.properties)
            for name, value in plain.items():
                if value is None:
                    values.pop(name, None)
                else:
                    values[name] = value
            locked.properties = values
            await locked.save()
            discarded = await self._release(locked.id, cleared)
            attached, _ = await self._attach(locked, tdef, verified)
            discarded += await self._release(locked.id, list(verified), keep=[v.upload.id for v in verified.values()])
        for name in files:
            self.publish(locked.id, name)
        await self.uploads.discard(discarded)
        await self.uploads.attached(attached)
        return await self._view(locked)

    async def delete(self, caller: Caller, record_id: str) -> RecordView:
        record = await self._owned(caller, record_id)
        view = await self._view(record)
        async with in_transaction():
            discarded = await self._release(record.id, None)
            await Record.filter(id=record.id).delete()
        self.publish(record.id, None)
        await self.uploads.discard(discarded)
        return view

    def _split(
        self, tdef: TableDef, properties: Sequence[tuple[str, str | None]]
    ) -> tuple[dict[str, Any], dict[str, str | None]]:
        plain: dict[str, Any] = {}
        files: dict[str, str | None] = {}
        seen: set[str] = set()
        for name, value in properties:
            if name in seen:
                raise BadUserInput(f"property {name[:100]!r} is given twice")
            seen.add(name)
            pdef = tdef.properties.get(name)
            if pdef is None:
                raise PropertyNotFound(
                    f"table {tdef.name!r} has no property {name[:100]!r}; it has: {', '.join(tdef.properties)}"
                )
            if pdef.is_upload:
                files[name] = value or None  # null or "" clears; anything else must verify
            else:
                plain[name] = coerce(pdef, value)
        return plain, files

    async def _verify_all(
        self, caller: Caller, tdef: TableDef, files: dict[str, str | None], record_id: int | None
    ) -> dict[str, Verified]:
        verified: dict[str, Verified] = {}
        for name, value in files.items():
            if value:
                verified[name] = await self.uploads.verify(caller, tdef.name, tdef.properties[name], value, record_id)
        tokens = [v.upload.token for v in verified.values()]
        if len(set(tokens)) != len(tokens):
            raise UploadAlreadyAttached("the same file cannot be saved into two properties")
        return verified

    async def _attach(
        self, record: Record, tdef: TableDef, verified: dict[str, Verified]
    ) -> tuple[list[int], dict[str, UploadView]]:
        """Mark uploads attached inside the transaction. The conditional update makes a concurrent
        save of the same upload lose cleanly instead of attaching it twice. Returns the uploads that
        have versions to build, and the views of the uploads attached now (as written)."""
        attached: list[int] = []
        views: dict[str, UploadView] = {}
        now = self.uploads.clock()
        for name, item in verified.items():
            if item.head is None:  # already attached here: idempotent
                continue
            content_type = item.head.content_type.split(";", 1)[0].strip().lower()
            changes: dict[str, Any] = {
                "status": "attached",
                "record_id": record.id,
                "key": item.key,
                "size": item.head.size,
                "content_type": content_type,
                "file_name": item.file_name,
                "attached_at": now,
            }
            count = await Upload.filter(id=item.upload.id, status="issued").update(**changes)
            if count != 1:
                raise UploadAlreadyAttached("this file was just saved by another request")
            for field_name, value in changes.items():
                setattr(item.upload, field_name, value)
            versions: list[UploadVersion] = []
            specs = self.uploads.versions_for(tdef.properties[name], content_type)
            if specs:
                versions = [
                    UploadVersion(upload_id=item.upload.id, name=s.name, key=version_key(item.key, s)) for s in specs
                ]
                await UploadVersion.bulk_create(versions)
                attached.append(item.upload.id)
            views[name] = UploadView(item.upload, versions)
        return attached, views

    async def _release(self, record_id: int, names: list[str] | None, keep: Sequence[int] = ()) -> list[int]:
        """Detach the record's uploads (all, or of `names`) except `keep`; they become `discarded`."""
        query = Upload.filter(record_id=record_id, status="attached")
        if names is not None:
            if not names:
                return []
            query = query.filter(property_name__in=names)
        if keep:
            query = query.exclude(id__in=list(keep))
        ids = [int(str(i)) for i in await query.values_list("id", flat=True)]
        if ids:
            await Upload.filter(id__in=ids).update(status="discarded", record_id=None)
        return ids

    async def _owned(self, caller: Caller, record_id: str) -> Record:
        record = await Record.get_or_none(id=parse_id(record_id))
        if record is None:
            raise RecordNotFound(f"no record with id {record_id}")
        if record.owner is not None and record.owner != caller.subject:
            raise Forbidden("this record belongs to another user")
        return record

    # -- reads ---------------------------------------------------------------------------------
    async def get(self, record_id: str) -> RecordView | None:
        record = await Record.get_or_none(id=parse_id(record_id))
        return None if record is None else await self._view(record)

    async def get_many(self, record_ids: Sequence[int]) -> dict[int, RecordView]:
        """The records among `record_ids` that exist, by id: three queries for any number of them."""
        records = await Record.filter(id__in=list(record_ids))
        return {view.record.id: view for view in await self._views(records)}

    async def list_page(self, table: str, ids: Sequence[str] | None, page: int, per_page: int) -> RecordPage:
        self.uploads.table(table)
        if page < 1:
            raise BadUserInput(f"page must be 1 or more, got {page}")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise BadUserInput(f"per_page must be between 1 and {MAX_PER_PAGE}, got {per_page}")
        query = Record.filter(table=table)
        if ids is not None:
            if len(ids) > MAX_IDS:
                raise BadUserInput(f"at most {MAX_IDS} ids per filter")
            query = query.filter(id__in=[parse_id(i) for i in ids])
        # The count and the page do not depend on each other: on PostgreSQL they run side by side on
        # two pooled connections (one round trip of wall time instead of two); SQLite serialises them.
        total, records = await asyncio.gather(
            query.count(), query.order_by("-id").offset((page - 1) * per_page).limit(per_page)
        )
        views = await self._views(records)
        return RecordPage(views, total, page, per_page)

    async def _view(self, record: Record) -> RecordView:
        return (await self._views([record]))[0]

    async def _views(self, records: list[Record]) -> list[RecordView]:
        """Two queries for any number of records, side by side: their uploads, and those uploads'
        versions (selected through the same condition on the upload, so neither waits for the other)."""
        if not records:
            return []
        ids = [r.id for r in records]
        uploads, versions = await asyncio.gather(
            Upload.filter(record_id__in=ids, status="attached"),
            UploadVersion.filter(upload__record_id__in=ids, upload__status="attached").order_by("id"),
        )
        by_upload: dict[int, list[UploadVersion]] = {}
        for v in versions:
            by_upload.setdefault(v.upload_id, []).append(v)
        by_record: dict[int, dict[str, UploadView]] = {r.id: {} for r in records}
        for u in uploads:
            assert u.record_id is not None
            by_record[u.record_id][u.property_name] = UploadView(u, by_upload.get(u.id, []))
        return [RecordView(r, by_record[r.id]) for r in records]
