"""Writing the row of a freshly presigned upload: one SQL statement, which also enforces the
caller's pending-upload cap when given one.

Why not `Upload.create`: every presign writes this row, and Tortoise spent about 0.5 ms of CPU per
presign building a model instance, validating its 27 fields and rendering the INSERT, plus another
query for the cap (bench/presign.py, py-spy). Here the statement text is built once per dialect and
column set, the values go through the model's own field converters (same validation, same stored
form: tests/test_issued.py compares rows with ones Tortoise writes), and the cap is a condition of the
INSERT itself, so it costs no extra round trip and two presigns of one caller on SQLite cannot both
slip past it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.models import Upload
from app.uploads.status import UploadStatus

# Postgres infers no types for parameters in a SELECT list: each gets its column's type.
_PG_TYPES = {"BigIntField": "bigint", "IntField": "integer", "JSONField": "jsonb", "DatetimeField": "timestamptz"}

_statements: dict[tuple[str, tuple[str, ...], bool, bool], str] = {}


def _statement(dialect: str, columns: tuple[str, ...], capped: bool, anonymous: bool) -> str:
    key = (dialect, columns, capped, anonymous)
    sql = _statements.get(key)
    if sql is not None:
        return sql
    fields = Upload._meta.fields_map
    postgres = dialect == "postgres"
    n = 0

    def param(cast: str = "") -> str:
        nonlocal n
        n += 1
        if not postgres:
            return "?"
        return f"${n}::{cast}" if cast else f"${n}"

    names = ", ".join(f'"{fields[c].source_field or c}"' for c in columns)
    params = ", ".join(param(_PG_TYPES.get(type(fields[c]).__name__, "varchar") if postgres else "") for c in columns)
    sql = f'INSERT INTO "uploads" ({names}) SELECT {params}'
    if capped:
        # Fewer than `cap` pending uploads of this caller; the inner LIMIT stops the index scan at the
        # cap, so the cost does not grow with the caller's (or anybody's) pending uploads.
        owner = '"owner" IS NULL' if anonymous else f'"owner" = {param("varchar")}'
        expires, limit, cap = param("timestamptz"), param("bigint"), param("bigint")
        sql += (
            f' WHERE (SELECT COUNT(*) FROM (SELECT 1 FROM "uploads" WHERE {owner} AND "status" = \'issued\''
            f' AND "expires_at" > {expires} LIMIT {limit}) AS "pending") < {cap}'
        )
    sql += ' RETURNING "id"'
    _statements[key] = sql
    return sql


async def insert_issued(values: dict[str, Any], *, cap: int | None = None, now: datetime | None = None) -> int | None:
    """Insert an issued upload with `values` (model field names; `status` and `created_at` are set
    here) and return its id. With `cap`, the row is only written while the owner in `values` has fewer
    than `cap` issued uploads that expire after `now`; None means it was not written."""
    row = {**values, "status": UploadStatus.ISSUED.value, "created_at": datetime.now(UTC)}
    columns = tuple(row)
    fields = Upload._meta.fields_map
    params: list[Any] = []
    for name in columns:
        field = fields[name]
        value = row[name]
        # Datetimes go to the driver as they are, as Tortoise passes them (its converter would try to
        # stamp auto_now fields on the model class).
        params.append(value if isinstance(value, datetime) or value is None else field.to_db_value(value, Upload))
    db = Upload._meta.db
    owner = row.get("owner")
    if cap is not None:
        if now is None:
            raise ValueError("a capped insert needs the current time")
        if owner is not None:
            params.append(owner)
        params += [now, cap, cap]
    sql = _statement(db.capabilities.dialect, columns, cap is not None, owner is None)
    rows = await db.execute_query_dict(sql, params)
    return int(rows[0]["id"]) if rows else None
