"""related_record(s) for a whole page at once: one batch per field of the document.

graphql-core resolves the items of a list one after the other in the same tick; each item's
related field only registers its record here, and one call to the records use case answers all of
them (a constant number of queries for the page, as for `records` itself).
"""

from __future__ import annotations

from collections.abc import Awaitable

from strawberry.dataloader import DataLoader

from app.graphql.context import Context
from app.models import Record
from app.records import Records, RecordView, RelatedSpec
from app.uploads import Caller


class RelatedLoader:
    def __init__(self, records: Records, caller: Caller, spec: RelatedSpec) -> None:
        self.records = records
        self.caller = caller
        self.spec = spec
        self.parents: dict[int, Record] = {}
        self.loader: DataLoader[int, list[RecordView]] = DataLoader(self._load)

    def load(self, record: Record) -> Awaitable[list[RecordView]]:
        self.parents[record.id] = record
        return self.loader.load(record.id)

    async def _load(self, ids: list[int]) -> list[list[RecordView]]:
        return await self.records.related(self.caller, self.spec, [self.parents[i] for i in ids])


def related_loader(context: Context, spec: RelatedSpec) -> RelatedLoader:
    """The request's loader for this field (same tables, join, filter, sort and limit)."""
    loader = context.loaders.get(spec.key)
    if not isinstance(loader, RelatedLoader):
        loader = context.loaders[spec.key] = RelatedLoader(context.records, context.caller, spec)
    return loader
