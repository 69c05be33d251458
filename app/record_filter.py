"""Pure: platformOS's `records` filter and sort, validated against the table definitions.

Input is the plain shape of `RecordsFilterInput` / `RecordsSortInput` (dicts and lists, field names
as in platformOS's SDL, null fields already left out: a null filter field is no condition, as in
platformOS, where documents pass `value: $maybe_null`). Output is a small condition tree
(app/record_sql.py renders it for SQLite or PostgreSQL) whose values are typed by the property's
declared type, so `value: "42"` on an integer property compares as 42.

Everything a hostile client could use to make the query unbounded is capped here: list sizes,
string lengths, `or` / `related_records` nesting, the number of conditions and sort keys. Every
refusal is a BadUserInput (or TableNotFound) that says what to change.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.access import ReadScope
from app.errors import BadUserInput, TableNotFound
from app.tables import PLAIN_TYPES, PropertyDef, TableDef

MAX_PER_PAGE = 1000
MAX_LIST = 1000  # value_in, not_value_in, array_* and id lists
MAX_TEXT = 4096  # one filter string
MAX_NESTING = 4  # `or` and `related_records` inside one another
MAX_CONDITIONS = 200  # leaves of one filter, `or` branches and related filters included
MAX_SORT_KEYS = 8
MAX_ORDER_BY_VALUES = 100
MAX_INT = 2**63

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# -- the condition tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A built-in column: `id` (integer), `table`, `owner`, `external_id` (text), timestamps."""

    name: str
    kind: str  # id | text | time


@dataclass(frozen=True)
class Prop:
    """A plain property in `properties`, with the type its values were coerced to."""

    name: str
    type: str


Target = Column | Prop

ID = Column("id", "id")
TABLE = Column("table", "text")
OWNER = Column("owner", "text")
EXTERNAL_ID = Column("external_id", "text")
CREATED_AT = Column("created_at", "time")
UPDATED_AT = Column("updated_at", "time")
DELETED_AT = Column("deleted_at", "time")


@dataclass(frozen=True)
class Compare:
    target: Target
    op: str  # = < <= > >=
    value: Any


@dataclass(frozen=True)
class InValues:
    target: Target
    values: tuple[Any, ...]


@dataclass(frozen=True)
class IsNull:
    target: Target


@dataclass(frozen=True)
class Match:
    """Text matching on a string property or text column."""

    target: Target
    mode: str  # contains | starts | ends
    text: str
    case_sensitive: bool


@dataclass(frozen=True)
class ArrayTest:
    """On an array property: contains_all, overlaps, equals, subset (value_in), has (value)."""

    target: Prop
    mode: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class UploadExists:
    name: str


@dataclass(frozen=True)
class TableIn:
    tables: tuple[str, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class JoinSide:
    """One side of a join between records: `id`, a built-in text column, or a property."""

    kind: str  # id | column | prop
    name: str
    type: str  # for a property: its type; id: "integer"; column: "string"


@dataclass(frozen=True)
class Related:
    """EXISTS a related record (in `tables`, matching `condition`) whose `foreign` side equals
    this record's `local` side (an element of it, when `local` is an array property)."""

    local: JoinSide
    foreign: JoinSide
    condition: Condition


Condition = Compare | InValues | IsNull | Match | ArrayTest | UploadExists | TableIn | Not | AllOf | AnyOf | Related

TRUE = AllOf(())
FALSE = AnyOf(())


@dataclass(frozen=True)
class SortKey:
    target: Target
    descending: bool
    # order_by_values: the listed values first, in that order, then the rest
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class RecordQuery:
    condition: Condition
    order: tuple[SortKey, ...]
    # The tables the query can return (None: any), for callers that need to know (indexes, docs).
    tables: frozenset[str] | None = None


# -- values --------------------------------------------------------------------------------------


def parse_id(raw: Any, what: str = "id") -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise BadUserInput(f"{what} {str(raw)[:40]!r} is not a record id (a positive integer)") from None
    if not 0 < value < MAX_INT:
        raise BadUserInput(f"{what} {value} is out of range")
    return value


def to_utc(value: datetime) -> datetime:
    """Aware datetimes in UTC; naive ones are taken as UTC (platformOS stores UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_instant(raw: Any, what: str) -> tuple[datetime, datetime | None]:
    """An ISO 8601 date-time, or a date standing for its whole UTC day: (start, end or None)."""
    text = str(raw).strip()
    if len(text) > 64:
        raise BadUserInput(f"{what}: {text[:40]!r}... is not an ISO 8601 date or date-time")
    try:
        if _DATE_ONLY.match(text):
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            try:
                return start, start + timedelta(days=1)
            except OverflowError:
                return start, None
        return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))), None
    except ValueError:
        raise BadUserInput(
            f"{what}: {text[:40]!r} is not an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)"
        ) from None


def datetime_text(value: datetime) -> str:
    """How a datetime property is stored: UTC ISO 8601. Text order is time order (a whole second
    is written without a fraction, and '+' sorts before '.')."""
    return to_utc(value).isoformat()


def coerce_plain(ptype: str, value: Any, where: str) -> Any:
    """A filter or property value (usually a string, as platformOS passes them) as `ptype`."""
    examples = {"integer": "42", "float": "1.5", "boolean": "true", "datetime": "2026-01-31T12:00:00Z"}
    try:
        if ptype == "string":
            if isinstance(value, (dict, list)):
                raise ValueError
            return value if isinstance(value, str) else json.dumps(value)
        if ptype == "integer":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                value = int(value)
            number = int(str(value).strip())
            if not -MAX_INT <= number < MAX_INT:
                raise ValueError
            return number
        if ptype == "float":
            if isinstance(value, bool):
                raise ValueError
            result = float(str(value).strip()) if isinstance(value, str) else float(value)
            if not math.isfinite(result):
                raise ValueError
            return result
        if ptype == "boolean":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError
            return lowered == "true"
        if ptype == "datetime":
            return datetime_text(parse_instant(value, where)[0])
    except (ValueError, TypeError, OverflowError):
        pass
    raise BadUserInput(f"{where}: {str(value)[:60]!r} is not a valid {ptype} (e.g. {examples.get(ptype, '')})")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadUserInput(f"{where} must be a string")
    if len(value) > MAX_TEXT:
        raise BadUserInput(f"{where} is longer than {MAX_TEXT} characters")
    return value


def _items(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadUserInput(f"{where} must be a list")
    if len(value) > MAX_LIST:
        raise BadUserInput(f"{where} has {len(value)} items; at most {MAX_LIST} are allowed")
    return value


# -- parsing -------------------------------------------------------------------------------------

_FILTER_KEYS = {
    "created_at",
    "deleted_at",
    "external_id",
    "id",
    "or",
    "properties",
    "related_records",
    "table",
    "updated_at",
    "user_id",
}
_STRING_FILTER_KEYS = {
    "case_sensitive",
    "contains",
    "ends_with",
    "exact",
    "not_contains",
    "not_ends_with",
    "not_starts_with",
    "not_value",
    "not_value_in",
    "starts_with",
    "value",
    "value_in",
}
_ID_FILTER_KEYS = {"value", "value_in", "not_value_in", "range"}
_DATE_FILTER_KEYS = {"exists", "gt", "gte", "lt", "lte", "not_value", "not_value_in", "value", "value_in"}
_RANGE_KEYS = ("gt", "gte", "lt", "lte")
_PROPERTY_FILTER_KEYS = {
    "allow_empty",
    "array_contains",
    "array_overlaps",
    "case_sensitive",
    "contains",
    "ends_with",
    "exists",
    "name",
    "not_array_contains",
    "not_array_overlaps",
    "not_contains",
    "not_ends_with",
    "not_starts_with",
    "not_value",
    "not_value_array",
    "not_value_boolean",
    "not_value_float",
    "not_value_in",
    "not_value_int",
    "property_type",
    "range",
    "starts_with",
    "value",
    "value_array",
    "value_boolean",
    "value_float",
    "value_in",
    "value_int",
}
_SORT_COLUMNS = {"created_at": CREATED_AT, "updated_at": UPDATED_AT, "deleted_at": DELETED_AT, "id": ID}
_SORT_KEYS = {*_SORT_COLUMNS, "external_id", "properties"}
_OP = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _mapping(value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadUserInput(f"{where} must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise BadUserInput(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return value


def _or_null(target: Target, condition: Condition) -> Condition:
    """A negated condition that also holds where the value is missing (SQL's NOT would drop them)."""
    return AnyOf((IsNull(target), Not(condition)))


def _like_ops(target: Target, raw: Mapping[str, Any], where: str, add: Callable[[Condition], None]) -> None:
    """contains / starts_with / ends_with and their negations, case-insensitive unless asked."""
    sensitive = bool(raw.get("case_sensitive"))
    for key, mode in (("contains", "contains"), ("starts_with", "starts"), ("ends_with", "ends")):
        for negated in (False, True):
            name = f"not_{key}" if negated else key
            if name in raw:
                text = _text(raw[name], f"{where}.{name}")
                match = Match(target, mode, text, sensitive)
                add(_or_null(target, match) if negated else match)


def read_condition(reads: ReadScope, scope: frozenset[str], table_named: bool) -> Condition:
    """What the caller may read among the records of `scope`, as a condition ANDed with the whole
    filter (no `or` or `not` of the client's reaches it). `table_named`: the query already holds
    `table IN scope`. A scope with tables but none readable is refused rather than answered empty,
    with what would help (a token); the refusal depends on the tables' rules only."""
    whole, owned = scope & reads.whole, scope & reads.owned
    if not whole and not owned:
        if scope:
            raise reads.refusal(scope)
        return TRUE  # no table at all: the table condition already matches nothing
    if not owned:
        # Records of tables no YAML declares have no rule: they are nobody's, so even "every table"
        # is spelled out unless the query names its tables already.
        return TRUE if whole == scope and table_named else TableIn(tuple(sorted(whole)))
    assert reads.subject is not None, "only signed-in callers own records"
    mine = AllOf((TableIn(tuple(sorted(owned))), Compare(OWNER, "=", reads.subject)))
    return AnyOf((TableIn(tuple(sorted(whole))), mine)) if whole else mine


@dataclass
class _Parser:
    tables: Mapping[str, TableDef]
    reads: ReadScope
    conditions: int = 0
    mentions_deleted: bool = False
    notes: list[str] = field(default_factory=list)

    def count(self, where: str) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise BadUserInput(f"{where}: the filter has more than {MAX_CONDITIONS} conditions; split the query")

    # -- RecordsFilterInput ----------------------------------------------------------------------
    def filter(self, raw: Any, scope: frozenset[str], where: str, depth: int) -> tuple[Condition, frozenset[str]]:
        if depth > MAX_NESTING:
            raise BadUserInput(f"{where}: `or` and `related_records` nest at most {MAX_NESTING} levels deep")
        raw = _mapping(raw, where, _FILTER_KEYS)
        conditions: list[Condition] = []

        def add(condition: Condition) -> None:
            self.count(where)
            conditions.append(condition)

        if "table" in raw:
            named = self.table_filter(raw["table"], f"{where}.table")
            scope = scope & named
            add(TableIn(tuple(sorted(scope))))
        if "id" in raw:
            self.id_filter(ID, raw["id"], f"{where}.id", add)
        if "user_id" in raw:
            self.id_filter(OWNER, raw["user_id"], f"{where}.user_id", add)
        if "external_id" in raw:
            self.string_filter(EXTERNAL_ID, raw["external_id"], f"{where}.external_id", add)
        for name, column in (("created_at", CREATED_AT), ("updated_at", UPDATED_AT), ("deleted_at", DELETED_AT)):
            if name in raw:
                self.mentions_deleted |= name == "deleted_at"
                self.date_filter(column, raw[name], f"{where}.{name}", add)
        for index, item in enumerate(_items(raw.get("properties", []), f"{where}.properties")):
            self.property_filter(item, scope, f"{where}.properties[{index}]", add)
        for index, item in enumerate(_items(raw.get("related_records", []), f"{where}.related_records")):
            add(self.related_filter(item, scope, f"{where}.related_records[{index}]", depth))
        branches = _items(raw.get("or", []), f"{where}.or")
        if branches:
            parsed = [self.filter(b, scope, f"{where}.or[{i}]", depth + 1)[0] for i, b in enumerate(branches)]
            conditions.append(AnyOf(tuple(parsed)))
        return (conditions[0] if len(conditions) == 1 else AllOf(tuple(conditions))), scope

    def table_filter(self, raw: Any, where: str) -> frozenset[str]:
        """A StringFilter over table names, decided here against the declared tables."""
        raw = _mapping(raw, where, _STRING_FILTER_KEYS)
        names = set(self.tables)
        for key in ("value", "exact"):
            if key in raw:
                names &= {self.known_table(raw[key], f"{where}.{key}")}
        if "value_in" in raw:
            names &= {self.known_table(t, f"{where}.value_in") for t in _items(raw["value_in"], f"{where}.value_in")}
        if "not_value" in raw:
            names -= {_text(raw["not_value"], f"{where}.not_value")}
        if "not_value_in" in raw:
            names -= {_text(t, f"{where}.not_value_in") for t in _items(raw["not_value_in"], f"{where}.not_value_in")}
        sensitive = bool(raw.get("case_sensitive"))

        def fold(text: str) -> str:
            return text if sensitive else text.lower()

        tests: dict[str, Callable[[str, str], bool]] = {
            "contains": lambda name, text: text in name,
            "starts_with": lambda name, text: name.startswith(text),
            "ends_with": lambda name, text: name.endswith(text),
        }
        for key, test in tests.items():
            for negated in (False, True):
                label = f"not_{key}" if negated else key
                if label in raw:
                    text = fold(_text(raw[label], f"{where}.{label}"))
                    names = {n for n in names if test(fold(n), text) != negated}
        return frozenset(names)

    def known_table(self, raw: Any, where: str) -> str:
        name = _text(raw, where)
        if name not in self.tables:
            raise TableNotFound(
                f"{where}: table {name[:100]!r} does not exist; known tables: {', '.join(sorted(self.tables))}"
            )
        return name

    def id_filter(self, column: Column, raw: Any, where: str, add: Callable[[Condition], None]) -> None:
        """UniqIdFilter on `id` (integers) or `user_id` (opaque strings: no range)."""
        raw = _mapping(raw, where, _ID_FILTER_KEYS)

        def value(item: Any, label: str) -> Any:
            if column.kind == "id":
                return parse_id(item, label)
            return _text(str(item), label)

        if "value" in raw:
            add(Compare(column, "=", value(raw["value"], f"{where}.value")))
        if "value_in" in raw:
            items = _items(raw["value_in"], f"{where}.value_in")
            add(InValues(column, tuple(value(i, f"{where}.value_in") for i in items)))
        if "not_value_in" in raw:
            items = _items(raw["not_value_in"], f"{where}.not_value_in")
            values = tuple(value(i, f"{where}.not_value_in") for i in items)
            add(_or_null(column, InValues(column, values)) if column.kind != "id" else Not(InValues(column, values)))
        if "range" in raw:
            if column.kind != "id":
                raise BadUserInput(f"{where}.range: user ids are opaque strings; use value or value_in")
            bounds = _mapping(raw["range"], f"{where}.range", set(_RANGE_KEYS))
            for key in _RANGE_KEYS:
                if bounds.get(key) is not None:
                    add(Compare(column, _OP[key], parse_id(bounds[key], f"{where}.range.{key}")))

    def string_filter(self, column: Column, raw: Any, where: str, add: Callable[[Condition], None]) -> None:
        raw = _mapping(raw, where, _STRING_FILTER_KEYS)
        for key in ("value", "exact"):
            if key in raw:
                add(Compare(column, "=", _text(raw[key], f"{where}.{key}")))
        if "value_in" in raw:
            items = _items(raw["value_in"], f"{where}.value_in")
            add(InValues(column, tuple(_text(i, f"{where}.value_in") for i in items)))
        if "not_value" in raw:
            add(_or_null(column, Compare(column, "=", _text(raw["not_value"], f"{where}.not_value"))))
        if "not_value_in" in raw:
            items = _items(raw["not_value_in"], f"{where}.not_value_in")
            add(_or_null(column, InValues(column, tuple(_text(i, f"{where}.not_value_in") for i in items))))
        _like_ops(column, raw, where, add)

    def date_filter(self, column: Column, raw: Any, where: str, add: Callable[[Condition], None]) -> None:
        """DateFilter on a timestamp column; a date alone stands for its whole UTC day."""
        raw = _mapping(raw, where, _DATE_FILTER_KEYS)

        def day_or_instant(item: Any, label: str) -> Condition:
            start, end = parse_instant(item, label)
            if end is None:
                return Compare(column, "=", start)
            return AllOf((Compare(column, ">=", start), Compare(column, "<", end)))

        if "exists" in raw:
            exists = IsNull(column)
            add(Not(exists) if raw["exists"] else exists)
        if "value" in raw:
            add(day_or_instant(raw["value"], f"{where}.value"))
        if "value_in" in raw:
            items = _items(raw["value_in"], f"{where}.value_in")
            add(AnyOf(tuple(day_or_instant(i, f"{where}.value_in") for i in items)))
        if "not_value" in raw:
            add(_or_null(column, day_or_instant(raw["not_value"], f"{where}.not_value")))
        if "not_value_in" in raw:
            items = _items(raw["not_value_in"], f"{where}.not_value_in")
            add(_or_null(column, AnyOf(tuple(day_or_instant(i, f"{where}.not_value_in") for i in items))))
        for key in _RANGE_KEYS:
            if key in raw:
                start, end = parse_instant(raw[key], f"{where}.{key}")
                # A date bound covers its whole day: lte 2026-01-31 includes that day's evening.
                if end is not None and key in ("gt", "lte"):
                    add(Compare(column, ">=" if key == "gt" else "<", end))
                else:
                    add(Compare(column, _OP[key], start))

    # -- PropertyFilterInput ---------------------------------------------------------------------
    def resolve_property(self, name: Any, scope: frozenset[str], where: str, wanted_type: Any = None) -> PropertyDef:
        return resolve_property(self.tables, name, scope, where, wanted_type)

    def property_filter(self, raw: Any, scope: frozenset[str], where: str, add: Callable[[Condition], None]) -> None:
        raw = dict(_mapping(raw, where, _PROPERTY_FILTER_KEYS))
        pdef = self.resolve_property(raw.get("name"), scope, where, raw.get("property_type"))
        allow_empty = bool(raw.get("allow_empty"))
        if not allow_empty:
            # platformOS ignores a blank filter value (documents pass form params as they are)
            # unless allow_empty says "" is meant.
            for key in (
                "value",
                "not_value",
                "contains",
                "not_contains",
                "starts_with",
                "not_starts_with",
                "ends_with",
                "not_ends_with",
            ):
                if raw.get(key) == "":
                    del raw[key]
        if "exists" in raw:
            exists: Condition = UploadExists(pdef.name) if pdef.is_upload else Not(IsNull(Prop(pdef.name, pdef.type)))
            add(exists if raw["exists"] else Not(exists))
        given = sorted(k for k in raw if k not in ("name", "exists", "allow_empty", "property_type", "case_sensitive"))
        if pdef.is_upload:
            if given:
                raise BadUserInput(
                    f"{where}: {pdef.name} is an upload property ({pdef.type}); filter it with exists only"
                )
            return
        target = Prop(pdef.name, pdef.type)
        for key in given:
            self.property_op(target, key, raw, where, add, allow_empty)

    def property_op(
        self,
        target: Prop,
        key: str,
        raw: Mapping[str, Any],
        where: str,
        add: Callable[[Condition], None],
        allow_empty: bool,
    ) -> None:
        ptype, label = target.type, f"{where}.{key}"
        value = raw[key]

        def refuse(allowed: str) -> BadUserInput:
            return BadUserInput(f"{label}: {target.name} is a {ptype} property; {key} applies to {allowed}")

        if key in ("value", "not_value"):
            if ptype == "array":
                condition: Condition = ArrayTest(target, "has", (_text(value, label),))
            elif value == "" and allow_empty:
                condition = AnyOf((IsNull(target), Compare(target, "=", "")))
            elif ptype == "datetime":
                condition = self.datetime_equal(target, value, label)
            else:
                condition = Compare(target, "=", coerce_plain(ptype, _text(value, label), label))
            add(condition if key == "value" else _or_null(target, condition))
        elif key in ("value_in", "not_value_in"):
            items = [_text(i, label) for i in _items(value, label)]
            if ptype == "array":
                condition = ArrayTest(target, "subset", tuple(items))
            elif ptype == "datetime":
                condition = AnyOf(tuple(self.datetime_equal(target, i, label) for i in items))
            else:
                condition = InValues(target, tuple(coerce_plain(ptype, i, label) for i in items))
            add(condition if key == "value_in" else _or_null(target, condition))
        elif key in ("value_int", "not_value_int", "value_float", "not_value_float"):
            if ptype not in ("integer", "float"):
                raise refuse("integer and float properties")
            number = coerce_plain("float", value, label)
            condition = Compare(target, "=", int(number) if number.is_integer() and abs(number) < 2**53 else number)
            add(condition if key.startswith("value") else _or_null(target, condition))
        elif key in ("value_boolean", "not_value_boolean"):
            if ptype != "boolean":
                raise refuse("boolean properties")
            condition = Compare(target, "=", bool(value))
            add(condition if key == "value_boolean" else _or_null(target, condition))
        elif key in (
            "value_array",
            "not_value_array",
            "array_contains",
            "not_array_contains",
            "array_overlaps",
            "not_array_overlaps",
        ):
            if ptype != "array":
                raise refuse("array properties")
            mode = {"value_array": "equals", "array_contains": "contains_all", "array_overlaps": "overlaps"}[
                key.removeprefix("not_")
            ]
            condition = ArrayTest(target, mode, tuple(_text(i, label) for i in _items(value, label)))
            add(_or_null(target, condition) if key.startswith("not_") else condition)
        elif key == "range":
            if ptype not in ("integer", "float", "datetime"):
                raise BadUserInput(
                    f"{label}: {target.name} is a {ptype} property; range applies to integer, float and datetime "
                    "properties (use value, value_in or starts_with on strings)"
                )
            self.range_filter(target, value, label, add)
        elif key in ("contains", "not_contains", "starts_with", "not_starts_with", "ends_with", "not_ends_with"):
            if ptype != "string":
                raise refuse("string properties")
            _like_ops(target, {key: value, "case_sensitive": raw.get("case_sensitive")}, where, add)

    def datetime_equal(self, target: Prop, raw: Any, where: str) -> Condition:
        start, end = parse_instant(_text(raw, where), where)
        if end is None:
            return Compare(target, "=", datetime_text(start))
        return AllOf((Compare(target, ">=", datetime_text(start)), Compare(target, "<", datetime_text(end))))

    def range_filter(self, target: Prop, raw: Any, where: str, add: Callable[[Condition], None]) -> None:
        bounds = _mapping(raw, where, set(_RANGE_KEYS))
        for key in _RANGE_KEYS:
            if bounds.get(key) is None:
                continue
            label = f"{where}.{key}"
            if target.type == "datetime":
                start, end = parse_instant(_text(bounds[key], label), label)
                if end is not None and key in ("gt", "lte"):
                    add(Compare(target, ">=" if key == "gt" else "<", datetime_text(end)))
                else:
                    add(Compare(target, _OP[key], datetime_text(start)))
            else:
                # Numbers compare as numbers whichever of the two a property holds.
                number = coerce_plain("float", _text(bounds[key], label), label)
                add(Compare(target, _OP[key], int(number) if number.is_integer() and abs(number) < 2**53 else number))

    # -- related_records -------------------------------------------------------------------------
    def related_filter(self, raw: Any, scope: frozenset[str], where: str, depth: int) -> Condition:
        raw = _mapping(raw, where, {"filter", "join"})
        join = _mapping(raw.get("join"), f"{where}.join", {"foreign_property", "join_on_property", "property_type"})
        if "foreign_property" not in join:
            raise BadUserInput(f"{where}.join.foreign_property is required")
        everything = frozenset(self.tables)
        saved = self.mentions_deleted
        self.mentions_deleted = False
        condition, inner_scope = self.filter(raw.get("filter", {}), everything, f"{where}.filter", depth + 1)
        # The related record must be one the caller may read, or the filter would probe the rest.
        condition = AllOf((read_condition(self.reads, inner_scope, inner_scope != everything), condition))
        if not self.mentions_deleted:
            condition = AllOf((IsNull(DELETED_AT), condition))
        self.mentions_deleted = saved
        local = self.join_side(join.get("join_on_property", "id"), scope, f"{where}.join.join_on_property")
        foreign = self.join_side(join["foreign_property"], inner_scope, f"{where}.join.foreign_property")
        if foreign.type == "array":
            raise BadUserInput(f"{where}.join.foreign_property: join on the related record's id or a scalar property")
        return Related(local, foreign, condition)

    def join_side(self, raw: Any, scope: frozenset[str], where: str) -> JoinSide:
        return join_side(self.tables, raw, scope, where)


def resolve_property(
    tables: Mapping[str, TableDef], name: Any, scope: frozenset[str], where: str, wanted_type: Any = None
) -> PropertyDef:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadUserInput(f"{where}.name {str(name)[:100]!r} is not a property name")
    found = {tables[t].properties[name].type: tables[t].properties[name] for t in scope if name in tables[t].properties}
    if not found:
        in_scope = ", ".join(sorted(scope)) or "none (the table filter matches no table)"
        raise BadUserInput(f"{where}: no table in the query has a property {name!r}; tables: {in_scope}")
    if wanted_type is not None:
        if wanted_type not in found:
            raise BadUserInput(
                f"{where}.property_type {str(wanted_type)[:40]!r}: {name!r} is declared as "
                f"{' and '.join(sorted(found))} in the tables of this query"
            )
        return found[wanted_type]
    if len(found) > 1:
        raise BadUserInput(
            f"{where}: property {name!r} is {' in some tables and '.join(sorted(found))} in others; "
            "filter on one table or give property_type"
        )
    return next(iter(found.values()))


def join_side(tables: Mapping[str, TableDef], raw: Any, scope: Iterable[str], where: str) -> JoinSide:
    """A property of the tables in `scope` wins over a built-in column of the same name (platformOS
    modules join on properties called external_id or user_id); `id` is always the record id."""
    name = _text(raw, where)
    if name == "id":
        return JoinSide("id", "id", "integer")
    types = {tables[t].properties[name].type for t in scope if name in tables[t].properties}
    if types:
        if len(types) > 1:
            raise BadUserInput(f"{where}: {name!r} is {' in some tables and '.join(sorted(types))} in others")
        ptype = types.pop()
        if ptype not in PLAIN_TYPES:
            raise BadUserInput(f"{where}: {name!r} is an upload property; join on id or a plain property")
        return JoinSide("prop", name, ptype)
    if name in ("external_id", "user_id"):
        return JoinSide("column", "owner" if name == "user_id" else name, "string")
    raise BadUserInput(f"{where}: no table in the query has a property {name[:100]!r} to join on")


def _sort_column(name: str) -> Column:
    return EXTERNAL_ID if name == "external_id" else _SORT_COLUMNS[name]


def _parse_sort(
    tables: Mapping[str, TableDef], raw: Sequence[Any] | None, scope: frozenset[str]
) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for index, item in enumerate(_items(list(raw or []), "sort")):
        where = f"sort[{index}]"
        item = _mapping(item, where, _SORT_KEYS)
        for name in sorted(
            item, key=["id", "created_at", "updated_at", "deleted_at", "external_id", "properties"].index
        ):
            if name == "properties":
                for pindex, prop in enumerate(_items(item[name], f"{where}.properties")):
                    label = f"{where}.properties[{pindex}]"
                    prop = _mapping(prop, label, {"name", "order"})
                    pdef = resolve_property(tables, prop.get("name"), scope, label)
                    if pdef.is_upload or pdef.type == "array":
                        raise BadUserInput(f"{label}: {pdef.name} is an {pdef.type} property; sort by a scalar one")
                    keys.append(SortKey(Prop(pdef.name, pdef.type), _descending(prop.get("order"), label)))
                continue
            spec = _mapping(item[name], f"{where}.{name}", {"order", "order_by_values"})
            column = _sort_column(name)
            values: tuple[Any, ...] = ()
            if "order_by_values" in spec:
                listed = _items(spec["order_by_values"], f"{where}.{name}.order_by_values")
                if len(listed) > MAX_ORDER_BY_VALUES:
                    raise BadUserInput(f"{where}.{name}.order_by_values: at most {MAX_ORDER_BY_VALUES} values")
                if column is ID:
                    values = tuple(parse_id(v, f"{where}.id.order_by_values") for v in listed)
                elif column is EXTERNAL_ID:
                    values = tuple(_text(v, f"{where}.external_id.order_by_values") for v in listed)
                else:
                    raise BadUserInput(f"{where}.{name}.order_by_values applies to id and external_id")
            keys.append(SortKey(column, _descending(spec.get("order"), f"{where}.{name}"), values))
        if len(keys) > MAX_SORT_KEYS:
            raise BadUserInput(f"sort: at most {MAX_SORT_KEYS} sort keys")
    return tuple(keys)


def _descending(order: Any, where: str) -> bool:
    if order not in ("ASC", "DESC"):
        raise BadUserInput(f"{where}.order must be ASC or DESC")
    return order == "DESC"


def with_tiebreak(keys: Sequence[SortKey]) -> tuple[SortKey, ...]:
    """Pages must not overlap: id ends every order, after created_at when the last key is a
    property, in the direction of the last key, which is the column order of the indexes
    (table, <column>, id) and (<property>, created_at, id). No sort at all: newest first."""
    if not keys:
        return (SortKey(CREATED_AT, True), SortKey(ID, True))
    last = keys[-1]
    out = list(keys)
    for column in (CREATED_AT, ID) if isinstance(last.target, Prop) else (ID,):
        if not any(k.target == column and not k.values for k in out):
            out.append(SortKey(column, last.descending))
    return tuple(out)


def build_query(
    tables: Mapping[str, TableDef], filter: Mapping[str, Any] | None, sort: Sequence[Any] | None, *, reads: ReadScope
) -> RecordQuery:
    """The validated query of `records(filter:, sort:)` for a caller who may read `reads`. Deleted
    records are left out unless the filter says something about deleted_at, as platformOS does."""
    parser = _Parser(tables, reads)
    everything = frozenset(tables)
    condition, scope = parser.filter(filter or {}, everything, "filter", 0) if filter else (TRUE, everything)
    condition = AllOf((read_condition(reads, scope, scope != everything), condition))
    if not parser.mentions_deleted:
        condition = AllOf((IsNull(DELETED_AT), condition))
    order = with_tiebreak(_parse_sort(tables, sort, scope))
    return RecordQuery(condition, order, scope if scope != everything else None)


def related_query(
    tables: Mapping[str, TableDef],
    table_names: Sequence[str],
    filter: Mapping[str, Any] | None,
    sort: Sequence[Any] | None,
    *,
    reads: ReadScope,
) -> tuple[RecordQuery, frozenset[str]]:
    """The query of `related_record(s)(table:, filter:, sort:)`: like `records`, within `table_names`."""
    names = [name for name in table_names if name]
    if not names:
        raise BadUserInput("table must name at least one table")
    parser = _Parser(tables, reads)
    scope = frozenset(parser.known_table(n, "table") for n in names)
    condition, scope = parser.filter(filter or {}, scope, "filter", 1) if filter else (TRUE, scope)
    condition = AllOf((TableIn(tuple(sorted(scope))), read_condition(reads, scope, True), condition))
    if not parser.mentions_deleted:
        condition = AllOf((IsNull(DELETED_AT), condition))
    return RecordQuery(condition, with_tiebreak(_parse_sort(tables, sort, scope)), scope), scope
