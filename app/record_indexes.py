"""Pure: the per-property indexes the table YAML implies, as DDL for SQLite or PostgreSQL.

A static migration cannot know which properties a deployment declares, and an index over
`properties->'x'` across every table would hold one entry per record of every table for every
declared name. So each scalar property of each table gets a partial expression index over live
records of its own table:

    (value of the property, created_at, id) WHERE "table" = '<table>' AND "deleted_at" IS NULL

which serves an equality or range filter on the property with the default order (created_at, id)
in either direction, and an order by the property (created_at and id break ties, as
app/record_filter.py orders them). Arrays are served by the GIN index on `properties` (PostgreSQL);
upload properties live in `uploads`. The index name carries a digest of its definition, so a
changed definition makes a new index instead of silently keeping an old one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.record_sql import POSTGRES, literal_name
from app.tables import TableDef

INDEXED_TYPES = ("string", "integer", "float", "boolean", "datetime")
_VERSION = "1"
PREFIX = "rec_"


@dataclass(frozen=True)
class PropertyIndex:
    name: str
    table: str
    prop: str

    def create(self, dialect: str) -> str:
        where = f'WHERE "table" = {literal_name(self.table)} AND "deleted_at" IS NULL'
        if dialect == POSTGRES:
            # CONCURRENTLY: building it on a big table does not block writes (it cannot run in a transaction).
            return (
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{self.name}" ON "records" '
                f'(("properties"->{literal_name(self.prop)}) NULLS FIRST, "created_at", "id") {where}'
            )
        return (
            f'CREATE INDEX IF NOT EXISTS "{self.name}" ON "records" '
            f'(json_extract("properties", \'$.{self.prop}\'), "created_at", "id") {where}'
        )

    def drop(self, dialect: str) -> str:
        concurrently = "CONCURRENTLY " if dialect == POSTGRES else ""
        return f'DROP INDEX {concurrently}IF EXISTS "{self.name}"'


def index_name(table: str, prop: str) -> str:
    digest = hashlib.sha256(f"{_VERSION}:{table}:{prop}".encode()).hexdigest()[:8]
    return f"{PREFIX}{table[:24]}_{prop[:24]}_{digest}"


def property_indexes(tables: Mapping[str, TableDef]) -> list[PropertyIndex]:
    return [
        PropertyIndex(index_name(t.name, p.name), t.name, p.name)
        for t in sorted(tables.values(), key=lambda t: t.name)
        for p in t.properties.values()
        if p.type in INDEXED_TYPES
    ]


def missing(wanted: Iterable[PropertyIndex], existing: Iterable[str]) -> list[PropertyIndex]:
    have = set(existing)
    return [i for i in wanted if i.name not in have]
