"""Pure: platformOS's record writes (`RecordInputType`, `PropertyInputType`) as domain values, and
what each property operation does to a record's stored values.

A `PropertyInputType` carries exactly one of `value`, `value_int`, `value_float`, `value_boolean`,
`value_array`, `value_json`, `value_upload`, `array_append`, `array_remove`, `increment`, `decrement`;
with none of them (every field null) it clears the property, as `value: null` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import BadUserInput, PropertyNotFound
from app.record_filter import MAX_INT, coerce_plain, parse_instant
from app.tables import PropertyDef, TableDef
from app.value_upload import ValueUpload

MAX_STRING = 65_536
MAX_ARRAY = 10_000
MAX_JSON_BYTES = 1_048_576
OPERATIONS = (
    "value",
    "value_int",
    "value_float",
    "value_boolean",
    "value_array",
    "value_json",
    "value_upload",
    "array_append",
    "array_remove",
    "increment",
    "decrement",
)


class _Keep:
    """A RecordInputType field that was not given: the record keeps what it has."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass(frozen=True)
class PropertyWrite:
    name: str
    op: str = "value"  # one of OPERATIONS; value None clears
    value: Any = None


def property_write(name: str, given: Mapping[str, Any]) -> PropertyWrite:
    """The one operation of a PropertyInputType (`given`: its fields, nulls included)."""
    chosen = [(op, given[op]) for op in OPERATIONS if given.get(op) is not None]
    if len(chosen) > 1:
        raise BadUserInput(
            f"property {name[:100]!r}: give one of {', '.join(OPERATIONS)}, not {' and '.join(op for op, _ in chosen)}"
        )
    return PropertyWrite(name, *chosen[0]) if chosen else PropertyWrite(name)


@dataclass(frozen=True)
class RecordChanges:
    """A RecordInputType: properties to write and the built-in fields that were given (KEEP: not)."""

    properties: tuple[PropertyWrite, ...] = ()
    table: str | None = None
    user_id: Any = KEEP
    external_id: Any = KEEP
    created_at: Any = KEEP
    updated_at: Any = KEEP
    deleted_at: Any = KEEP
    id: Any = KEEP


def as_writes(properties: Sequence[PropertyWrite | tuple[str, str | None]]) -> tuple[PropertyWrite, ...]:
    """(name, value) pairs, as REST sends them, are `value` writes."""
    return tuple(p if isinstance(p, PropertyWrite) else PropertyWrite(p[0], "value", p[1]) for p in properties)


def timestamp(raw: Any, what: str) -> datetime:
    """A JSONDate input: an ISO 8601 date-time (a date alone is its midnight, UTC)."""
    if isinstance(raw, datetime):
        return raw
    return parse_instant(raw, what)[0]


def external_id(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if not text or len(text) > 255 or not text.isprintable():
        raise BadUserInput("external_id must be 1 to 255 printable characters (or null)")
    return text


def coerce(pdef: PropertyDef, value: str | None) -> Any:
    """A plain property's string `value` as its declared type; None clears it."""
    if value is None:
        return None
    where = f"property {pdef.name!r} ({pdef.type})"
    if len(value) > MAX_STRING:
        raise BadUserInput(f"{where}: value is longer than {MAX_STRING} characters")
    if pdef.type == "array":
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise BadUserInput(f'{where}: {value[:60]!r} is not a JSON array (e.g. ["a", 1]); or use value_array')
        return _bounded(items, where)
    return coerce_plain(pdef.type, value, where)


def _bounded(value: Any, where: str) -> Any:
    if isinstance(value, list) and len(value) > MAX_ARRAY:
        raise BadUserInput(f"{where}: an array holds at most {MAX_ARRAY} items")
    if len(json.dumps(value, ensure_ascii=False)) > MAX_JSON_BYTES:
        raise BadUserInput(f"{where}: the value is larger than {MAX_JSON_BYTES} bytes of JSON")
    return value


# An upload property's new value: an uploaded file's URL or key, a file for the server to create, or
# None to remove the file.
FileValue = str | ValueUpload | None


def split(tdef: TableDef, writes: Sequence[PropertyWrite]) -> tuple[list[PropertyWrite], dict[str, FileValue]]:
    """Plain writes (applied to the stored values) and upload values (a URL or key to verify, a
    value_upload to create, or None to remove the file), after checking every name and operation."""
    plain: list[PropertyWrite] = []
    files: dict[str, FileValue] = {}
    seen: set[str] = set()
    for write in writes:
        name = write.name
        if name in seen:
            raise BadUserInput(f"property {name[:100]!r} is given twice")
        seen.add(name)
        pdef = tdef.properties.get(name)
        if pdef is None:
            raise PropertyNotFound(
                f"table {tdef.name!r} has no property {name[:100]!r}; it has: {', '.join(tdef.properties)}"
            )
        if pdef.is_upload:
            if write.op == "value_upload":
                if not isinstance(write.value, ValueUpload):
                    raise BadUserInput(f"property {name!r}: value_upload must describe the file to create")
                write.value.check()
                files[name] = write.value
                continue
            if write.op != "value":
                raise BadUserInput(
                    f"property {name!r} is an upload ({pdef.type}): save the uploaded file's URL or key with value, "
                    "or create the file with value_upload"
                )
            if write.value is not None and not isinstance(write.value, str):
                raise BadUserInput(f"property {name!r}: value must be the uploaded file's URL or key")
            files[name] = write.value or None  # null or "" removes the file; anything else must verify
        else:
            check(pdef, write)
            plain.append(write)
    return plain, files


def check(pdef: PropertyDef, write: PropertyWrite) -> None:
    """Refuse an operation the property's type does not have, before anything is written."""
    allowed = {
        "value": PLAIN,
        "value_json": PLAIN,
        "value_upload": ("upload", "image", "attachment"),
        "value_int": ("integer", "float"),
        "value_float": ("integer", "float"),
        "increment": ("integer", "float"),
        "decrement": ("integer", "float"),
        "value_boolean": ("boolean",),
        "value_array": ("array",),
        "array_append": ("array",),
        "array_remove": ("array",),
    }[write.op]
    if pdef.type not in allowed:
        raise BadUserInput(
            f"property {pdef.name!r} is a {pdef.type} property; {write.op} applies to {', '.join(allowed)} properties"
        )


PLAIN = ("string", "integer", "float", "boolean", "datetime", "array")


def apply(tdef: TableDef, values: Mapping[str, Any], writes: Sequence[PropertyWrite]) -> dict[str, Any]:
    """The stored values after `writes` (checked by `split`). Array and counter operations read the
    current value, so callers apply them to the row they hold locked."""
    out = dict(values)
    for write in writes:
        pdef = tdef.properties[write.name]
        result = _result(pdef, out.get(write.name), write)
        if result is None:
            out.pop(write.name, None)
        else:
            out[write.name] = result
    return out


def _number(pdef: PropertyDef, value: float, where: str) -> int | float:
    """`value` as the property's number type; ints stay exact (no float rounding above 2**53)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise BadUserInput(f"{where}: the result is not a finite number")
    if pdef.type != "integer":
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise BadUserInput(f"{where}: {value} is not a whole number; the property is an integer")
        value = int(value)
    if not -MAX_INT <= value < MAX_INT:
        raise BadUserInput(f"{where}: {value} does not fit in 64 bits")
    return int(value)


def _result(pdef: PropertyDef, current: Any, write: PropertyWrite) -> Any:
    where = f"property {pdef.name!r} ({pdef.type})"
    op, value = write.op, write.value
    if op == "value":
        return coerce(pdef, value)
    if op in ("value_int", "value_float"):
        return _number(pdef, value, where)
    if op == "value_boolean":
        return bool(value)
    if op == "value_array":
        if not isinstance(value, list):
            raise BadUserInput(f"{where}: value_array must be a list")
        for item in value:
            if item is not None and len(item) > MAX_STRING:
                raise BadUserInput(f"{where}: an item is longer than {MAX_STRING} characters")
        return _bounded(list(value), where)
    if op == "value_json":
        if pdef.type == "array" and not isinstance(value, list):
            raise BadUserInput(f"{where}: value_json must be a JSON array for an array property")
        if pdef.type in ("string", "array"):
            # platformOS stores any JSON in a string property this way (read it with property_json).
            return _bounded(value, where)
        if pdef.type in ("integer", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadUserInput(f"{where}: value_json must be a number for a {pdef.type} property")
            return _number(pdef, value, where)
        if pdef.type == "boolean":
            if not isinstance(value, bool):
                raise BadUserInput(f"{where}: value_json must be true or false for a boolean property")
            return value
        return coerce_plain(pdef.type, value, where)
    items = list(current) if isinstance(current, list) else []
    if op in ("array_append", "array_remove"):
        if len(value) > MAX_STRING:
            raise BadUserInput(f"{where}: {op} takes a string of at most {MAX_STRING} characters")
        if op == "array_append":
            return _bounded([*items, value], where)
        return [item for item in items if item != value]
    # increment / decrement: a missing value counts from 0
    base = current if isinstance(current, (int, float)) and not isinstance(current, bool) else 0
    step = float(value) if op == "increment" else -float(value)
    if pdef.type == "integer":
        if not step.is_integer():
            raise BadUserInput(f"{where}: {op} by {value} would not leave a whole number; the property is an integer")
        return _number(pdef, int(base) + int(step), where)
    return _number(pdef, base + step, where)
