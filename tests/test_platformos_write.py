"""platformOS compatibility: writing records as platformOS documents do (RecordInputType and every
PropertyInputType form), soft delete as its guide describes it, and user_id as the owner."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import platformos_docs as docs
from tests.conftest import Harness
from tests.test_auth import SECRET, bearer

WRITE = """mutation($id: ID!, $record: RecordInputType!) {
  record_update(id: $id, record: $record, form_name: "employee_form", _index_update: false) {
    id table created_at updated_at deleted_at user_id external_id properties
    name: property(name: "name") age: property_int(name: "age") discount: property_float(name: "discount")
    enabled: property_boolean(name: "enabled") when: property(name: "last_time_active")
  }
}"""
CREATE = """mutation($record: RecordInputType!) {
  record_create(record: $record, form_name: "employee_form") {
    id table created_at updated_at deleted_at user_id external_id properties
  }
}"""


@pytest.fixture
async def pos(harness_factory: Any) -> Harness:
    harness: Harness = await harness_factory(SCHEMA_DIR=str(docs.SCHEMA_DIR))
    return harness


async def employee(h: Harness, **record: Any) -> dict[str, Any]:
    created: dict[str, Any] = (await h.ok(CREATE, {"record": {"table": "employee", **record}}))["record_create"]
    return created


async def update(h: Harness, record_id: str, *props: dict[str, Any], **fields: Any) -> dict[str, Any]:
    updated: dict[str, Any] = (await h.ok(WRITE, {"id": record_id, "record": {"properties": list(props), **fields}}))[
        "record_update"
    ]
    return updated


async def test_every_property_input_form(pos: Harness) -> None:
    record = await employee(pos, properties=[{"name": "name", "value": "Ann"}, {"name": "age", "value": "30"}])
    assert record["properties"] == {"name": "Ann", "age": 30}
    rid = record["id"]
    changed = await update(
        pos,
        rid,
        {"name": "age", "value_int": 31},
        {"name": "discount", "value_float": 0.25},
        {"name": "enabled", "value_boolean": True},
        {"name": "last_time_active", "value": "2026-03-01T10:00:00+01:00"},
    )
    assert (changed["age"], changed["discount"], changed["enabled"]) == (31, 0.25, True)
    assert changed["when"] == "2026-03-01T09:00:00+00:00"
    counted = await update(pos, rid, {"name": "age", "increment": 2}, {"name": "discount", "decrement": 0.05})
    assert (counted["age"], round(counted["discount"], 2)) == (33, 0.2)
    fresh = await employee(pos, properties=[{"name": "age", "decrement": 1}])
    assert fresh["properties"] == {"age": -1}  # a missing counter starts from 0
    as_json = await update(pos, rid, {"name": "age", "value_json": 40}, {"name": "name", "value_json": {"first": "A"}})
    assert as_json["age"] == 40 and as_json["properties"]["name"] == {"first": "A"}
    cleared = await update(pos, rid, {"name": "discount", "value": None}, {"name": "enabled"})
    assert "discount" not in cleared["properties"] and "enabled" not in cleared["properties"]

    roles = """mutation($id: ID!, $props: [PropertyInputType]) { record_update(id: $id, record: {table: "profile",
      properties: $props}) { roles: property_array(name: "roles") data: property_json(name: "roles") } }"""
    profile = {"table": "profile", "properties": [{"name": "roles", "value_array": ["a"]}]}
    pid = (await pos.ok(CREATE, {"record": profile}))["record_create"]["id"]
    steps: list[tuple[dict[str, Any], list[str]]] = [
        ({"name": "roles", "array_append": "b"}, ["a", "b"]),
        ({"name": "roles", "array_append": "a"}, ["a", "b", "a"]),
        ({"name": "roles", "array_remove": "a"}, ["b"]),
        ({"name": "roles", "value_json": ["x", "y"]}, ["x", "y"]),
        ({"name": "roles", "value": '["z"]'}, ["z"]),
    ]
    for prop, expected in steps:
        assert (await pos.ok(roles, {"id": pid, "props": [prop]}))["record_update"]["roles"] == expected


@pytest.mark.parametrize(
    ("prop", "says"),
    [
        ({"name": "age", "value_int": 1, "value": "1"}, "give one of"),
        ({"name": "name", "value_int": 3}, "value_int applies to integer, float"),
        ({"name": "age", "increment": 0.5}, "whole number"),
        ({"name": "name", "value_array": ["a"]}, "value_array applies to array"),
        ({"name": "name", "array_append": "a"}, "array_append applies to array"),
        ({"name": "enabled", "value": "maybe"}, "not a valid boolean"),
        ({"name": "age", "value_json": "old"}, "must be a number"),
        ({"name": "last_time_active", "value": "soon"}, "ISO 8601"),
    ],
)
async def test_wrong_property_forms_are_refused_and_change_nothing(
    pos: Harness, prop: dict[str, Any], says: str
) -> None:
    record = await employee(pos, properties=[{"name": "name", "value": "Ann"}, {"name": "age", "value_int": 3}])
    body = await pos.gql(WRITE, {"id": record["id"], "record": {"properties": [prop]}})
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and says in error["message"], error
    again = (await pos.ok("query($id: ID!) { record(id: $id) { properties } }", {"id": record["id"]}))["record"]
    assert again["properties"] == {"name": "Ann", "age": 3}


async def test_record_fields_table_id_and_timestamps(pos: Harness) -> None:
    imported = await employee(
        pos,
        external_id="crm-7",
        created_at="2020-05-01T08:00:00Z",
        updated_at="2020-05-02T08:00:00Z",
        properties=[{"name": "name", "value": "Old"}],
    )
    assert (imported["created_at"], imported["updated_at"]) == ("2020-05-01T08:00:00Z", "2020-05-02T08:00:00Z")
    assert imported["external_id"] == "crm-7" and imported["user_id"] is None
    rid = imported["id"]
    same = await update(pos, rid, {"name": "name", "value": "New"}, table="employee", id=rid, external_id=None)
    assert same["name"] == "New" and same["external_id"] is None and same["created_at"] == imported["created_at"]
    assert same["updated_at"] > "2026"  # an update without updated_at stamps the time of the change
    stamped = await update(pos, rid, updated_at="2021-01-01", created_at="2019-12-31T23:00:00-01:00")
    assert (stamped["created_at"], stamped["updated_at"]) == ("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z")

    for record, code in [
        ({"table": "status"}, "RECORD_NOT_FOUND"),
        ({"id": "999"}, "BAD_USER_INPUT"),
        ({"created_at": None}, "BAD_USER_INPUT"),
        ({"external_id": "x" * 256}, "BAD_USER_INPUT"),
    ]:
        assert await pos.error_code(WRITE, {"id": rid, "record": record}) == code, record
    assert await pos.error_code(CREATE, {"record": {"table": "employee", "id": "5"}}) == "BAD_USER_INPUT"
    assert await pos.error_code(CREATE, {"record": {"properties": []}}) == "BAD_USER_INPUT"
    assert await pos.error_code(CREATE, {"record": {"table": "employee", "created_at": "then"}}) == "BAD_USER_INPUT"
    wrong_table = 'mutation($id: ID!) { record_delete(id: $id, table: "status") { id } }'
    assert await pos.error_code(wrong_table, {"id": rid}) == "RECORD_NOT_FOUND"
    assert await pos.error_code(WRITE, {"id": "123456", "record": {}}) == "RECORD_NOT_FOUND"


async def test_soft_delete_as_the_data_removal_guide_describes(pos: Harness) -> None:
    kept = await employee(pos, properties=[{"name": "name", "value": "kept"}])
    gone = await employee(pos, properties=[{"name": "name", "value": "gone"}])
    deleted = (await pos.ok(docs.DEFAULT_DELETE, {"id": gone["id"]}))["record_delete"]
    assert deleted["id"] == gone["id"] and deleted["deleted_at"].endswith("Z")

    listed = (await pos.ok(docs.CRUD_SEARCH, {}))["employees"]["results"]
    assert [r["id"] for r in listed] == [kept["id"]]
    assert (await pos.ok(docs.DELETED_RECORDS))["records"]["results"] == [deleted]
    assert (await pos.ok("query($id: ID!) { record(id: $id) { id } }", {"id": gone["id"]}))["record"] is None
    # A deleted record is not found by updates and deletes, except to restore or re-date it.
    assert await pos.error_code(WRITE, {"id": gone["id"], "record": {"properties": []}}) == "RECORD_NOT_FOUND"
    assert await pos.error_code(docs.DEFAULT_DELETE, {"id": gone["id"]}) == "RECORD_NOT_FOUND"

    await pos.ok(docs.UNDELETE, {"id": gone["id"]})
    assert {r["id"] for r in (await pos.ok(docs.CRUD_SEARCH, {}))["employees"]["results"]} == {kept["id"], gone["id"]}
    assert (await pos.ok(docs.DELETED_RECORDS))["records"]["results"] == []

    records = pos.app.state.services.records
    await pos.ok(docs.DEFAULT_DELETE, {"id": gone["id"]})
    assert await records.purge_deleted() == 0  # deleted just now: kept for 30 days
    await pos.ok(docs.MANUAL_PURGE_DATE, {"id": gone["id"]})
    assert (await pos.ok(docs.DELETED_RECORDS))["records"]["results"][0]["deleted_at"] == "2020-03-15T14:28:48.153000Z"
    assert await records.purge_deleted() == 1
    assert (await pos.ok(docs.DELETED_RECORDS))["records"]["results"] == []
    assert await pos.error_code(docs.UNDELETE, {"id": gone["id"]}) == "RECORD_NOT_FOUND"
    only_deleted = {"deleted_at": {"lt": (datetime.now(UTC) + timedelta(days=1)).isoformat()}}
    query = "query($f: RecordsFilterInput) { records(per_page: 5, filter: $f) { total_entries } }"
    assert (await pos.ok(query, {"f": only_deleted}))["records"]["total_entries"] == 0


async def test_counters_and_array_appends_are_atomic(pos: Harness) -> None:
    record = await employee(pos, properties=[{"name": "age", "value_int": 0}])
    profile = (await pos.ok(CREATE, {"record": {"table": "profile"}}))["record_create"]["id"]
    roles = """mutation($id: ID!, $role: String) { record_update(id: $id, record: {
      properties: [{name: "roles", array_append: $role}]}) { id } }"""
    increment = {"id": record["id"], "record": {"properties": [{"name": "age", "increment": 1}]}}
    await asyncio.gather(
        *(pos.ok(WRITE, increment) for _ in range(20)),
        *(pos.ok(roles, {"id": profile, "role": f"r{i}"}) for i in range(20)),
    )
    assert (await update(pos, record["id"]))["age"] == 20
    read = 'query($id: ID!) { record(id: $id) { roles: property_array(name: "roles") } }'
    assert sorted((await pos.ok(read, {"id": profile}))["record"]["roles"]) == sorted(f"r{i}" for i in range(20))


async def test_user_id_is_the_owner(harness_factory: Any) -> None:
    anonymous: Harness = await harness_factory(SCHEMA_DIR=str(docs.SCHEMA_DIR))
    # Without auth user_id is data the client sets, as in the Uppy guide's record_create.
    record = await employee(anonymous, user_id="42")
    assert record["user_id"] == "42"
    assert (await update(anonymous, record["id"], user_id=None))["user_id"] is None

    authed: Harness = await harness_factory(SCHEMA_DIR=str(docs.SCHEMA_DIR), AUTH_JWT_SECRET=SECRET)
    mine = (await authed.ok(CREATE, {"record": {"table": "employee"}}, **bearer("alice")))["record_create"]
    assert mine["user_id"] == "alice"
    own = await authed.ok(CREATE, {"record": {"table": "employee", "user_id": "alice"}}, **bearer("alice"))
    assert own["record_create"]["user_id"] == "alice"
    for record_input in ({"table": "employee", "user_id": "bob"}, {"table": "employee", "user_id": None}):
        assert await authed.error_code(CREATE, {"record": record_input}, **bearer("alice")) == "FORBIDDEN"
    change_owner = {"id": mine["id"], "record": {"user_id": "bob"}}
    assert await authed.error_code(WRITE, change_owner, **bearer("alice")) == "FORBIDDEN"
    assert await authed.error_code(WRITE, {"id": mine["id"], "record": {}}, **bearer("bob")) == "FORBIDDEN"
    assert await authed.error_code(docs.DEFAULT_DELETE, {"id": mine["id"]}, **bearer("bob")) == "FORBIDDEN"
    assert await authed.error_code(WRITE, {"id": mine["id"], "record": {}}) == "UNAUTHENTICATED"
    by_owner = """query($u: ID!) { records(per_page: 10, filter: {user_id: {value: $u}}) { total_entries } }"""
    assert (await authed.ok(by_owner, {"u": "alice"}))["records"]["total_entries"] == 2


async def test_the_worker_purges_on_its_own(pos: Harness) -> None:
    """The periodic purge (run by the worker beside the sweep) removes a record dated for removal."""
    from app.models import Record

    gone = await employee(pos, properties=[{"name": "name", "value": "gone"}])
    await pos.ok(docs.DEFAULT_DELETE, {"id": gone["id"]})
    await pos.ok(docs.MANUAL_PURGE_DATE, {"id": gone["id"]})
    task = asyncio.create_task(pos.app.state.services.records.purge_periodically(interval=0.05))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while await Record.exists(id=int(gone["id"])):
            assert asyncio.get_running_loop().time() < deadline, "not purged"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
