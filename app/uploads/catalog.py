"""Looking up tables and upload properties, with the errors a client gets for unknown names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.errors import PropertyNotFound, PropertyTypeMismatch, TableNotFound
from app.tables import UPLOAD_TYPES, PropertyDef, TableDef


class Catalog:
    def __init__(self, tables: Mapping[str, TableDef]) -> None:
        self.tables = tables

    def table(self, name: str) -> TableDef:
        table = self.tables.get(name)
        if table is None:
            raise TableNotFound(f"table {name[:100]!r} does not exist; known tables: {', '.join(sorted(self.tables))}")
        return table

    def upload_property(self, table: str, prop: str, accepts: Iterable[str] = UPLOAD_TYPES) -> PropertyDef:
        pdef = self.table(table).properties.get(prop)
        if pdef is None:
            raise PropertyNotFound(f"table {table!r} has no property {prop[:100]!r}")
        allowed = tuple(accepts)
        if pdef.type not in allowed:
            raise PropertyTypeMismatch(
                f"property {table}.{prop} is of type {pdef.type}; this operation accepts {' or '.join(allowed)}"
            )
        return pdef

    def property_of(self, table: str, prop: str) -> PropertyDef | None:
        """The property an upload was issued for, if the tables still declare it."""
        tdef = self.tables.get(table)
        return tdef.properties.get(prop) if tdef is not None else None
