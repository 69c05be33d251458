"""Pure: a validated record query (app/record_filter.py) as SQL for SQLite or PostgreSQL.

Values are always bound parameters (numbered: `?N` on SQLite, `$N` on PostgreSQL), so the SQL of a
query does not grow with the length of its lists. Table and property names are written into the SQL
as literals instead: they are validated names (lower-case letters, digits, `_`), and the planners
only use a partial or expression index when the query spells the same literal the index does
(`"table" = 'photos'`, `properties->'price'`, `json_extract(properties, '$.price')`).

Property values live in `records.properties` (JSONB on PostgreSQL, JSON text on SQLite) and are
compared as JSON values (PostgreSQL) or as what json_extract returns (SQLite): numbers as numbers,
strings as strings. A missing property sorts as the smallest value on both databases (first when
ascending, last when descending), which is the order their indexes keep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.record_filter import (
    AllOf,
    AnyOf,
    ArrayTest,
    Column,
    Compare,
    Condition,
    InValues,
    IsNull,
    JoinSide,
    Match,
    Not,
    Prop,
    RecordQuery,
    Related,
    SortKey,
    TableIn,
    Target,
    UploadExists,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_NOT_NULL_COLUMNS = {"id", "table", "created_at", "updated_at"}
SQLITE, POSTGRES = "sqlite", "postgres"


def literal_name(name: str) -> str:
    """A table or property name as an SQL string literal; only validated names get here."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a validated name")
    return f"'{name}'"


def sqlite_time(value: datetime) -> str:
    """A timestamp as Tortoise stores it in SQLite (UTC, `str(datetime)`), so text comparisons are
    time comparisons."""
    return str(value.astimezone(UTC))


@dataclass
class Sql:
    dialect: str
    params: list[Any] = field(default_factory=list)
    aliases: int = 0

    def param(self, value: Any, cast: str = "") -> str:
        self.params.append(value)
        n = len(self.params)
        return f"${n}{cast}" if self.dialect == POSTGRES else f"?{n}"

    def alias(self) -> str:
        self.aliases += 1
        return f"r{self.aliases}"

    # -- expressions -----------------------------------------------------------------------------
    def prop(self, name: str, alias: str) -> str:
        if self.dialect == POSTGRES:
            return f'({alias}."properties"->{literal_name(name)})'
        return f"json_extract({alias}.\"properties\", '$.{name}')"

    def prop_text(self, name: str, alias: str) -> str:
        if self.dialect == POSTGRES:
            return f'({alias}."properties"->>{literal_name(name)})'
        return f"CAST({self.prop(name, alias)} AS TEXT)"

    def expr(self, target: Target, alias: str) -> str:
        if isinstance(target, Column):
            return f'{alias}."{target.name}"'
        return self.prop(target.name, alias)

    def value(self, target: Target, value: Any) -> str:
        if isinstance(target, Prop):
            if self.dialect == POSTGRES:
                return self.param(json.dumps(value), "::jsonb")
            return self.param(int(value) if isinstance(value, bool) else value)
        if target.kind == "time":
            return self.param(value, "::timestamptz") if self.dialect == POSTGRES else self.param(sqlite_time(value))
        if self.dialect == POSTGRES:
            return self.param(value, "::bigint" if target.kind == "id" else "::text")
        return self.param(value)

    def in_values(self, target: Target, values: Sequence[Any], alias: str) -> str:
        expr = self.expr(target, alias)
        if self.dialect == POSTGRES:
            if isinstance(target, Prop):
                return f"{expr} = ANY({self.param([json.dumps(v) for v in values], '::jsonb[]')})"
            cast = "::bigint[]" if target.kind == "id" else "::text[]"
            return f"{expr} = ANY({self.param(list(values), cast)})"
        if not values:
            return "1 = 0"
        # One placeholder per value (at most MAX_LIST): SQLite plans an IN list on an index, not a subquery.
        return f"{expr} IN ({', '.join(self.value(target, v) for v in values)})"

    # -- conditions ------------------------------------------------------------------------------
    def condition(self, c: Condition, alias: str) -> str:
        if isinstance(c, AllOf):
            return "(" + " AND ".join(self.condition(i, alias) for i in c.items) + ")" if c.items else "1 = 1"
        if isinstance(c, AnyOf):
            return "(" + " OR ".join(self.condition(i, alias) for i in c.items) + ")" if c.items else "1 = 0"
        if isinstance(c, Not):
            return f"NOT ({self.condition(c.item, alias)})"
        if isinstance(c, Compare):
            return f"{self.expr(c.target, alias)} {c.op} {self.value(c.target, c.value)}"
        if isinstance(c, InValues):
            return self.in_values(c.target, c.values, alias)
        if isinstance(c, IsNull):
            return f"{self.expr(c.target, alias)} IS NULL"
        if isinstance(c, TableIn):
            if not c.tables:
                return "1 = 0"
            names = ", ".join(literal_name(t) for t in c.tables)
            return f'{alias}."table" = {names}' if len(c.tables) == 1 else f'{alias}."table" IN ({names})'
        if isinstance(c, Match):
            return self.match(c, alias)
        if isinstance(c, ArrayTest):
            return self.array_test(c, alias)
        if isinstance(c, UploadExists):
            return (
                f'EXISTS (SELECT 1 FROM "uploads" u WHERE u."record_id" = {alias}."id" '
                f'AND u."property_name" = {literal_name(c.name)} AND u."status" = \'attached\')'
            )
        if isinstance(c, Related):
            inner = self.alias()
            join = self.join(c.local, alias, c.foreign, inner)
            return f'EXISTS (SELECT 1 FROM "records" {inner} WHERE {join} AND {self.condition(c.condition, inner)})'
        raise TypeError(f"unknown condition {c!r}")

    def match(self, c: Match, alias: str) -> str:
        text = (
            self.prop_text(c.target.name, alias)
            if isinstance(c.target, Prop) and self.dialect == POSTGRES
            else self.expr(c.target, alias)
        )
        if self.dialect == POSTGRES or not c.case_sensitive:
            escaped = c.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = {"contains": f"%{escaped}%", "starts": f"{escaped}%", "ends": f"%{escaped}"}[c.mode]
            if self.dialect == POSTGRES:
                return f"{text} {'LIKE' if c.case_sensitive else 'ILIKE'} {self.param(pattern, '::text')}"
            # SQLite's LIKE ignores ASCII case only.
            return f"{text} LIKE {self.param(pattern)} ESCAPE '\\'"
        needle = self.param(c.text)
        if c.mode == "contains":
            return f"instr({text}, {needle}) > 0"
        if c.mode == "starts":
            return f"substr({text}, 1, length({needle})) = {needle}"
        return f"substr({text}, length({text}) - length({needle}) + 1) = {needle}"

    def array_test(self, c: ArrayTest, alias: str) -> str:
        name, values = c.target.name, list(c.values)
        if self.dialect == POSTGRES:
            expr = self.prop(name, alias)
            if c.mode in ("has", "contains_all"):
                # Containment on the whole document is what the GIN index on `properties` serves.
                return f'{alias}."properties" @> {self.param(json.dumps({name: values}), "::jsonb")}'
            if c.mode == "overlaps":
                return f"{expr} ?| {self.param(values, '::text[]')}"
            if c.mode == "equals":
                return f"{expr} = {self.param(json.dumps(values), '::jsonb')}"
            return f"(jsonb_typeof({expr}) = 'array' AND {expr} <@ {self.param(json.dumps(values), '::jsonb')})"
        each = f"json_each({alias}.\"properties\", '$.{name}') e"
        listed = f"(SELECT value FROM json_each({self.param(json.dumps(values))}))"
        if c.mode == "has":
            return f"EXISTS (SELECT 1 FROM {each} WHERE e.type = 'text' AND e.value IN {listed})"
        if c.mode == "overlaps":
            return f"EXISTS (SELECT 1 FROM {each} WHERE e.type = 'text' AND e.value IN {listed})"
        if c.mode == "contains_all":
            wanted = self.param(len(set(values)))
            return (
                f"(SELECT count(DISTINCT e.value) FROM {each} WHERE e.type = 'text' AND e.value IN {listed}) = {wanted}"
            )
        is_array = f"json_type({alias}.\"properties\", '$.{name}') = 'array'"
        if c.mode == "subset":
            return (
                f"({is_array} AND NOT EXISTS (SELECT 1 FROM {each} WHERE e.type != 'text' OR e.value NOT IN {listed}))"
            )
        # equals: same length, and the same string at every position
        given = self.param(json.dumps(values))
        length = f"json_array_length({alias}.\"properties\", '$.{name}') = json_array_length({given})"
        differs = (
            f"NOT EXISTS (SELECT 1 FROM {each} JOIN json_each({given}) f ON e.key = f.key "
            "WHERE e.type != 'text' OR e.value IS NOT f.value)"
        )
        return f"({is_array} AND {length} AND {differs})"

    # -- joins between records -------------------------------------------------------------------
    def side_text(self, side: JoinSide, alias: str) -> str:
        if side.kind == "id":
            return f'{alias}."id"::text' if self.dialect == POSTGRES else f'CAST({alias}."id" AS TEXT)'
        if side.kind == "column":
            return f'{alias}."{side.name}"'
        return self.prop_text(side.name, alias)

    def int_of(self, text: str) -> str:
        """`text` as a bigint when it is one, else NULL (never a cast error)."""
        if self.dialect == POSTGRES:
            return f"(CASE WHEN {text} ~ '^-?[0-9]{{1,18}}$' THEN ({text})::bigint END)"
        digits = f"ltrim({text}, '-')"
        return (
            f"(CASE WHEN {digits} GLOB '[0-9]*' AND {digits} NOT GLOB '*[^0-9]*' AND length({digits}) <= 18 "
            f"THEN CAST({text} AS INTEGER) END)"
        )

    def local_values(self, local: JoinSide, alias: str) -> tuple[str, str]:
        """For an array property: (FROM clause of its elements, an element's text)."""
        if self.dialect == POSTGRES:
            expr = self.prop(local.name, alias)
            return (
                f"jsonb_array_elements_text(CASE WHEN jsonb_typeof({expr}) = 'array' THEN {expr} "
                "ELSE '[]'::jsonb END) AS el(v)",
                "el.v",
            )
        return f"json_each({alias}.\"properties\", '$.{local.name}') el", "CAST(el.value AS TEXT)"

    def foreign_equals(self, foreign: JoinSide, alias: str, text: str) -> str:
        """The related record's side equals the value whose text is `text`, in a form its index serves."""
        if foreign.kind == "id":
            return f'{alias}."id" = {self.int_of(text)}'
        if foreign.kind == "column":
            return f'{alias}."{foreign.name}" = {text}'
        expr = self.prop(foreign.name, alias)
        if foreign.type == "string":
            return f"{expr} = to_jsonb({text})" if self.dialect == POSTGRES else f"{expr} = {text}"
        if foreign.type == "integer":
            number = self.int_of(text)
            return f"{expr} = to_jsonb({number})" if self.dialect == POSTGRES else f"{expr} = {number}"
        return f"{self.side_text(foreign, alias)} = {text}"

    def join(self, local: JoinSide, local_alias: str, foreign: JoinSide, foreign_alias: str) -> str:
        if local.kind == "prop" and local.type == "array":
            source, element = self.local_values(local, local_alias)
            return f"EXISTS (SELECT 1 FROM {source} WHERE {self.foreign_equals(foreign, foreign_alias, element)})"
        if local.kind == "id" and foreign.kind == "id":
            return f'{foreign_alias}."id" = {local_alias}."id"'
        return self.foreign_equals(foreign, foreign_alias, self.side_text(local, local_alias))

    # -- order -----------------------------------------------------------------------------------
    def order(self, keys: Sequence[SortKey], alias: str) -> str:
        parts: list[str] = []
        for key in keys:
            expr = self.expr(key.target, alias)
            if key.values:
                whens = " ".join(f"WHEN {self.value(key.target, v)} THEN {i}" for i, v in enumerate(key.values))
                parts.append(f"CASE {expr} {whens} ELSE {len(key.values)} END")
            direction = "DESC" if key.descending else "ASC"
            nullable = not (isinstance(key.target, Column) and key.target.name in _NOT_NULL_COLUMNS)
            if self.dialect == POSTGRES and nullable:
                direction += " NULLS LAST" if key.descending else " NULLS FIRST"
            parts.append(f"{expr} {direction}")
        return ", ".join(parts)


def select_page(query: RecordQuery, dialect: str, limit: int, offset: int) -> tuple[str, list[Any]]:
    sql = Sql(dialect)
    where = sql.condition(query.condition, "r0")
    order = sql.order(query.order, "r0")
    return (
        f'SELECT r0.* FROM "records" r0 WHERE {where} ORDER BY {order} LIMIT {int(limit)} OFFSET {int(offset)}',
        sql.params,
    )


def select_count(query: RecordQuery, dialect: str) -> tuple[str, list[Any]]:
    sql = Sql(dialect)
    where = sql.condition(query.condition, "r0")
    return f'SELECT COUNT(*) AS "n" FROM "records" r0 WHERE {where}', sql.params


def select_related(
    query: RecordQuery, dialect: str, foreign: JoinSide, values: Sequence[Any], per_value: int
) -> tuple[str, list[Any]]:
    """Records matching `query` whose `foreign` side is one of `values`, at most `per_value` for
    each value (in the query's order), all in the query's order: one statement for a whole page."""
    sql = Sql(dialect)
    if foreign.kind == "id":
        target: Target = Column("id", "id")
    elif foreign.kind == "column":
        target = Column(foreign.name, "text")
    else:
        target = Prop(foreign.name, foreign.type)
    where = sql.condition(query.condition, "r0")
    among = sql.in_values(target, values, "r0")
    partition = sql.expr(target, "r0")
    inner_order = sql.order(query.order, "r0")
    outer_order = sql.order(query.order, "s")
    return (
        f'SELECT * FROM (SELECT r0.*, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {inner_order}) AS "_rn" '
        f'FROM "records" r0 WHERE {where} AND {among}) s WHERE s."_rn" <= {int(per_value)} ORDER BY {outer_order}',
        sql.params,
    )
