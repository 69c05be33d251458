"""The pure query side of records (app/record_filter.py, app/record_sql.py): what a platformOS filter
means, and SQL whose text never carries a client's value."""

from __future__ import annotations

import pytest

from app.access import Access
from app.errors import BadUserInput
from app.record_filter import (
    CREATED_AT,
    DELETED_AT,
    ID,
    AllOf,
    IsNull,
    Prop,
    SortKey,
    build_query,
    with_tiebreak,
)
from app.record_sql import POSTGRES, SQLITE, literal_name, select_count, select_page
from app.tables import parse_table
from app.uploads import Caller

TABLES = {
    t.name: t
    for t in (
        parse_table(
            {"name": "a", "properties": [{"name": "x", "type": "string"}, {"name": "n", "type": "integer"}]}, "a"
        ),
        parse_table({"name": "b", "properties": [{"name": "x", "type": "integer"}]}, "b"),
    )
}

# The rules of who reads what are tests/test_access.py's: here every record is readable.
READ_ALL = Access(TABLES, auth=False, anonymous_reads="all").reads(Caller())


def test_deleted_records_are_left_out_unless_the_filter_names_deleted_at() -> None:
    plain = build_query(TABLES, {"table": {"value": "a"}}, None, reads=READ_ALL)
    assert isinstance(plain.condition, AllOf) and plain.condition.items[0] == IsNull(DELETED_AT)
    for filter in ({"deleted_at": {"exists": True}}, {"or": [{"deleted_at": {"lt": "2026-01-01"}}, {}]}):
        query = build_query(TABLES, filter, None, reads=READ_ALL)
        assert IsNull(DELETED_AT) not in getattr(query.condition, "items", ())


def test_orders_end_with_unique_keys_in_the_direction_of_the_last() -> None:
    assert with_tiebreak(()) == (SortKey(CREATED_AT, True), SortKey(ID, True))
    by_prop = with_tiebreak((SortKey(Prop("n", "integer"), False),))
    assert by_prop[1:] == (SortKey(CREATED_AT, False), SortKey(ID, False))
    assert with_tiebreak((SortKey(CREATED_AT, False),)) == (SortKey(CREATED_AT, False), SortKey(ID, False))


def test_a_property_of_two_types_needs_a_table_or_property_type() -> None:
    with pytest.raises(BadUserInput, match="filter on one table or give property_type"):
        build_query(TABLES, {"properties": [{"name": "x", "value": "1"}]}, None, reads=READ_ALL)
    build_query(TABLES, {"properties": [{"name": "x", "value": "1", "property_type": "integer"}]}, None, reads=READ_ALL)
    build_query(TABLES, {"table": {"value": "b"}, "properties": [{"name": "x", "value": "1"}]}, None, reads=READ_ALL)
    with pytest.raises(BadUserInput, match="not a valid integer"):
        build_query(
            TABLES, {"table": {"value": "b"}, "properties": [{"name": "x", "value": "one"}]}, None, reads=READ_ALL
        )


def test_blank_values_are_no_condition_unless_allow_empty() -> None:
    blank = build_query(
        TABLES, {"table": {"value": "a"}, "properties": [{"name": "x", "value": ""}]}, None, reads=READ_ALL
    )
    unfiltered = build_query(TABLES, {"table": {"value": "a"}}, None, reads=READ_ALL)
    assert blank == unfiltered
    meant = build_query(
        TABLES,
        {"table": {"value": "a"}, "properties": [{"name": "x", "value": "", "allow_empty": True}]},
        None,
        reads=READ_ALL,
    )
    assert meant != unfiltered


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES])
def test_client_values_are_parameters_and_lists_stay_bounded(dialect: str) -> None:
    hostile = "x'); DROP TABLE records; --"
    query = build_query(
        TABLES,
        {
            "table": {"value": "a"},
            "properties": [{"name": "x", "value": hostile}, {"name": "x", "contains": "50%_off\\"}],
            "external_id": {"value_in": [hostile] * 1000},
        },
        [{"properties": [{"name": "n", "order": "DESC"}]}],
        reads=READ_ALL,
    )
    sql, params = select_page(query, dialect, 21, 40)
    assert hostile not in sql and "DROP" not in sql
    assert "'a'" in sql and "LIMIT 21 OFFSET 40" in sql
    assert any(hostile in str(p) for p in params)
    count_sql, _ = select_count(query, dialect)
    assert count_sql.startswith('SELECT COUNT(*) AS "n" FROM "records" r0 WHERE')
    # A thousand values: one array parameter on PostgreSQL, a thousand placeholders on SQLite.
    assert len(params) == (1002 if dialect == SQLITE else 3)
    # LIKE's wildcards in a client's text are escaped: 50%_off\ matches itself only.
    assert "%50\\%\\_off\\\\%" in params


def test_only_validated_names_are_written_into_sql() -> None:
    assert literal_name("photos") == "'photos'"
    for bad in ("Photos", "a'b", "x y", "", "a" * 64):
        with pytest.raises(ValueError):
            literal_name(bad)
