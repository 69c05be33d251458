"""platformOS compatibility: real platformOS documents (tests/platformos_docs.py, each with its source)
read, filter, sort and page records on the real server, unchanged but for table and property names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import platformos_docs as docs
from tests.conftest import Harness


@pytest.fixture
async def pos(harness_factory: Any) -> Harness:
    harness: Harness = await harness_factory(SCHEMA_DIR=str(docs.SCHEMA_DIR))
    return harness


async def create(h: Harness, table: str, **properties: Any) -> str:
    """A record through RecordInputType, each value in the PropertyInputType field of its type."""
    props = []
    for name, value in properties.items():
        field = {bool: "value_boolean", int: "value_int", float: "value_float", list: "value_array"}.get(
            type(value), "value"
        )
        props.append({"name": name, field: value})
    query = """mutation($table: String, $props: [PropertyInputType]) {
      record_create(record: {table: $table, properties: $props}) { id } }"""
    record_id: str = (await h.ok(query, {"table": table, "props": props}))["record_create"]["id"]
    return record_id


async def test_crud_generator_create_search_update_delete(pos: Harness) -> None:
    made = []
    for name, age, enabled in (("Ann", 30, True), ("Bob", 45, False), ("Cy", 30, False)):
        record = (await pos.ok(docs.CRUD_CREATE, {"name": name, "age": age, "enabled": enabled}))["record"]
        assert (record["type"], record["name"], record["age"], record["enabled"]) == ("employee", name, age, enabled)
        assert record["deleted_at"] is None and record["created_at"].endswith("Z")
        made.append(record["id"])
    ann, bob, cy = made

    everyone = (await pos.ok(docs.CRUD_SEARCH, {}))["employees"]
    assert [r["name"] for r in everyone["results"]] == ["Cy", "Bob", "Ann"]  # created_at DESC
    assert (everyone["total_entries"], everyone["total_pages"]) == (3, 1)
    assert (everyone["has_previous_page"], everyone["has_next_page"]) == (False, False)

    # A null variable is no condition; "30" on an integer property compares as 30.
    thirty = (await pos.ok(docs.CRUD_SEARCH, {"age": "30"}))["employees"]["results"]
    assert [r["name"] for r in thirty] == ["Cy", "Ann"]
    off_thirty = (await pos.ok(docs.CRUD_SEARCH, {"age": "30", "enabled": "false"}))["employees"]["results"]
    assert [r["id"] for r in off_thirty] == [cy]
    assert [r["name"] for r in (await pos.ok(docs.CRUD_SEARCH, {"id": bob}))["employees"]["results"]] == ["Bob"]

    second = (await pos.ok(docs.CRUD_SEARCH, {"limit": 2, "page": 2}))["employees"]
    assert [r["id"] for r in second["results"]] == [ann]
    assert (second["has_previous_page"], second["has_next_page"], second["total_pages"]) == (True, False, 2)

    updated = (await pos.ok(docs.CRUD_UPDATE, {"id": bob, "name": "Bobby", "age": 46, "enabled": True}))["record"]
    assert (updated["name"], updated["age"], updated["enabled"]) == ("Bobby", 46, True)
    assert updated["updated_at"] >= updated["created_at"]

    assert (await pos.ok(docs.CRUD_DELETE, {"id": bob}))["record"] == {"id": bob}
    left = (await pos.ok(docs.CRUD_SEARCH, {}))["employees"]
    assert [r["id"] for r in left["results"]] == [cy, ann] and left["total_entries"] == 2


async def test_core_module_statuses(pos: Harness) -> None:
    base = {"reference_schema": "order", "payload": '{"a":1}', "requester_id": "7"}
    first = (
        await pos.ok(
            docs.STATUS_CREATE, {"name": "paid", "timestamp": "2026-01-31T12:00:00Z", "reference_id": "1", **base}
        )
    )["record"]
    assert first["timestamp"] == "2026-01-31T12:00:00+00:00" and first["type"] == "status"
    await pos.ok(
        docs.STATUS_CREATE, {"name": "shipped", "timestamp": "2026-02-01T09:30:00+02:00", "reference_id": "1", **base}
    )
    await pos.ok(docs.STATUS_CREATE, {"name": "paid", "timestamp": "2026-02-02", "reference_id": "2", **base})

    found = (await pos.ok(docs.STATUS_SEARCH, {"limit": 20, "page": 1, "name": "paid"}))["statuses"]
    assert [r["reference_id"] for r in found["results"]] == ["2", "1"] and found["current_page"] == 1
    # A datetime property compares as a time, whatever offset the filter writes it in.
    at = {"limit": 20, "page": 1, "timestamp": "2026-02-01T07:30:00Z"}
    assert [r["name"] for r in (await pos.ok(docs.STATUS_SEARCH, at))["statuses"]["results"]] == ["shipped"]
    one = (await pos.ok(docs.STATUS_SEARCH, {"limit": 1, "page": 1, "reference_id": "1"}))["statuses"]
    assert one["total_entries"] == 2 and one["has_next_page"] is True and one["has_previous_page"] is False

    assert (await pos.ok(docs.STATUS_DELETE, {"id": first["id"]}))["record_delete"] == {"id": first["id"]}
    assert (await pos.ok(docs.STATUS_SEARCH, {"limit": 20, "page": 1, "name": "paid"}))["statuses"][
        "total_entries"
    ] == 1


async def test_core_module_records_count(pos: Harness) -> None:
    ann = await create(pos, "profile", email="ann@example.com", first_name="Ann")
    await create(pos, "profile", email="ann@example.com", first_name="Annie")
    await create(pos, "profile", email="bob@example.com", first_name="Bob")
    variables = {
        "property_name": "email",
        "property_value": "ann@example.com",
        "scope_name": "first_name",
        "table": "profile",
        "exclude_name": "first_name",
    }
    assert (await pos.ok(docs.RECORDS_COUNT, variables))["records"]["total_entries"] == 2
    assert (await pos.ok(docs.RECORDS_COUNT, {**variables, "not_ids": [ann]}))["records"]["total_entries"] == 1
    assert (await pos.ok(docs.RECORDS_COUNT, {**variables, "ids": [ann]}))["records"]["total_entries"] == 1
    excluded = {**variables, "exclude_value": "Annie"}
    assert (await pos.ok(docs.RECORDS_COUNT, excluded))["records"]["total_entries"] == 1
    scoped = {**variables, "scope_value": "Bob"}
    assert (await pos.ok(docs.RECORDS_COUNT, scoped))["records"]["total_entries"] == 0


async def test_user_module_profiles(pos: Harness) -> None:
    people = [
        ("u1", "Ann", "ann@example.com", ["member"], "Ann Smith ann@example.com"),
        ("u2", "Bob", "bob@example.com", None, "Bob Jones bob@example.com"),
        ("u3", "Cy", "cy@example.com", ["admin", "member"], "Cy Smithers cy@example.com"),
    ]
    ids = []
    for user_id, first, email, roles, names in people:
        created = (
            await pos.ok(
                docs.PROFILE_CREATE,
                {
                    "uuid": f"uuid-{user_id}",
                    "user_id": user_id,
                    "first_name": first,
                    "email": email,
                    "roles": roles,
                    "c__names": names,
                },
            )
        )["record"]
        assert (created["type"], created["user_id"], created["roles"]) == ("profile", user_id, roles)
        assert created["otp_configured"] is None
        ids.append(created["id"])

    def names(data: dict[str, Any]) -> list[str]:
        return [r["first_name"] for r in data["records"]["results"]]

    assert names(await pos.ok(docs.PROFILE_SEARCH, {})) == ["Cy", "Bob", "Ann"]
    # contains is case-insensitive unless case_sensitive says otherwise
    assert names(await pos.ok(docs.PROFILE_SEARCH, {"query": "SMITH"})) == ["Cy", "Ann"]
    assert names(await pos.ok(docs.PROFILE_SEARCH, {"emails": ["bob@example.com", "cy@example.com"]})) == [
        "Cy",
        "Bob",
    ]
    assert names(await pos.ok(docs.PROFILE_SEARCH, {"not_ids": ids[:2]})) == ["Cy"]
    assert names(await pos.ok(docs.PROFILE_SEARCH, {"user_id": "u2", "email": "bob@example.com"})) == ["Bob"]
    oldest_first = {"sort": {"created_at": {"order": "ASC"}}}
    assert names(await pos.ok(docs.PROFILE_SEARCH, oldest_first)) == ["Ann", "Bob", "Cy"]
    by_name = {"sort": {"properties": [{"name": "first_name", "order": "DESC"}]}, "limit": 2}
    paged = await pos.ok(docs.PROFILE_SEARCH, by_name)
    assert names(paged) == ["Cy", "Bob"] and paged["records"]["total_pages"] == 2

    appended = (await pos.ok(docs.PROFILE_ROLE_APPEND, {"id": ids[1], "role": "admin"}))["record"]
    assert appended["roles"] == ["admin"]
    appended = (await pos.ok(docs.PROFILE_ROLE_APPEND, {"id": ids[1], "role": "editor"}))["record"]
    assert appended["roles"] == ["admin", "editor"]
    removed = (await pos.ok(docs.PROFILE_ROLE_REMOVE, {"id": ids[1], "role": "admin"}))["record"]
    assert removed["roles"] == ["editor"]


async def test_chat_module_conversations_and_messages(pos: Harness) -> None:
    async def conversation(participants: list[str]) -> str:
        variables = {"participant_ids": participants, "participant_read_ids": []}
        created = (await pos.ok(docs.CONVERSATION_CREATE, variables))["record_create"]
        assert created["participant_ids"] == participants
        return str(created["id"])

    ab = await conversation(["a", "b"])
    bc = await conversation(["b", "c"])
    for text, conv in (("hi b", ab), ("hi a", ab), ("yo", bc), ("bye b", ab)):
        sent = await pos.ok(docs.MESSAGE_CREATE, {"conversation_id": conv, "message": text, "autor_id": "a"})
        assert sent["record_create"]["properties"]["message"] == text

    def ids(data: dict[str, Any]) -> list[str]:
        return [r["id"] for r in data["conversations"]["results"]]

    assert ids(await pos.ok(docs.CONVERSATION_SEARCH, {"participant_id": ["b"]})) == [bc, ab]
    assert ids(await pos.ok(docs.CONVERSATION_SEARCH, {"participant_id": ["a", "b"]})) == [ab]
    # value_in on an array: the array is made of the given items
    assert ids(await pos.ok(docs.CONVERSATION_SEARCH, {"participant_ids": ["a", "b", "z"]})) == [ab]

    listed = (await pos.ok(docs.CONVERSATION_SEARCH, {"id": ab, "include_messages": True, "messages_limit": 2}))[
        "conversations"
    ]["results"][0]
    assert [m["message"] for m in listed["messages"]] == ["bye b", "hi a"]
    assert listed["last_message"]["message"] == "hi b"
    without = (await pos.ok(docs.CONVERSATION_SEARCH, {"id": ab}))["conversations"]["results"][0]
    assert "messages" not in without and without["last_message"]["message"] == "hi b"

    mine = (await pos.ok(docs.MESSAGE_SEARCH, {"participant_id": ["c"]}))["messages"]
    assert [m["message"] for m in mine["results"]] == ["yo"] and mine["total_entries"] == 1
    in_ab = (await pos.ok(docs.MESSAGE_SEARCH, {"conversation_id": [ab], "participant_id": ["a"]}))["messages"]
    assert [m["message"] for m in in_ab["results"]] == ["bye b", "hi a", "hi b"]


async def test_properties_guide_filters(pos: Harness) -> None:
    await create(
        pos, "employee", name="John", age=14, discount=0.2, enabled=True, last_time_active="2019-09-15T10:00:00"
    )
    await create(
        pos, "employee", name="Anna", age=35, discount=0.5, enabled=False, last_time_active="2019-10-05T08:00:00"
    )
    await create(pos, "employee", name="Zoe", age=61)
    typed = (await pos.ok(docs.GET_RECORDS_TYPED))["records"]["results"]
    assert {(r["name"], r["age"], r["enabled"]) for r in typed} == {
        ("John", 14, True),
        ("Anna", 35, False),
        ("Zoe", 61, None),
    }

    async def names(filter: dict[str, Any]) -> set[str]:
        rows = (await pos.ok(docs.PROPERTY_FILTERS, {"filter": filter}))["records"]["results"]
        return {r["first_name"] for r in rows}

    assert await names({"name": "name", "value": "John"}) == {"John"}
    assert await names({"name": "name", "not_value": "John"}) >= {"Anna", "Zoe"}
    assert await names({"name": "age", "value_int": 14}) == {"John"}
    assert await names({"name": "discount", "value_float": 0.2}) == {"John"}
    assert await names({"name": "enabled", "value_boolean": True}) == {"John"}
    assert await names({"name": "name", "value_in": ["John", "Anna"]}) == {"John", "Anna"}
    assert "John" not in await names({"name": "name", "not_value_in": ["John", "Anna"]})
    assert await names({"name": "enabled", "exists": True}) == {"John", "Anna"}
    assert await names({"name": "enabled", "exists": False}) >= {"Zoe"}
    window = {"name": "last_time_active", "range": {"lte": "2019-10-02T08:13:00", "gte": "2019-09-01T08:13:00"}}
    assert await names(window) == {"John"}
    adults = (await pos.ok(docs.GET_ALL_ADULTS_BELOW_60, {"adult_age_treshold": "18"}))["records"]["results"]
    assert [r["first_name"] for r in adults] == ["Anna"]
    everyone_below_60 = (await pos.ok(docs.GET_ALL_ADULTS_BELOW_60, {}))["records"]["results"]
    assert {r["first_name"] for r in everyone_below_60} == {"John", "Anna"}


async def test_related_records_guide(pos: Harness) -> None:
    companies = {}
    for n in (2, 3):
        companies[n] = await create(pos, "company", name=f"Company #{n}", url=f"company-{n}.com")
    for n, company in ((1, 2), (2, 3), (3, None)):
        fields = {"email": f"programmer-{n}@example.com", "title": "junior"}
        if company is not None:
            fields["company_id"] = companies[company]
        await create(pos, "programmer", **fields)
    page = (await pos.ok(docs.PROGRAMMERS))["programmers"]
    by_email = {r["properties"]["email"]: r["company"] for r in page["results"]}
    assert by_email["programmer-1@example.com"]["url"] == "company-2.com"
    assert by_email["programmer-2@example.com"]["properties"]["name"] == "Company #3"
    assert by_email["programmer-3@example.com"] is None and page["total_entries"] == 3

    found = (await pos.ok(docs.COMPANY, {"id": companies[2]}))["companies"]["results"]
    assert found == [{"table": "company", "id": companies[2], "deleted_at": None, "properties": found[0]["properties"]}]
    assert found[0]["properties"] == {"name": "Company #2", "url": "company-2.com"}


async def test_related_records_from_an_array_guide(pos: Harness) -> None:
    vips = [await create(pos, "programmer", title=f"vip {n}") for n in range(3)]
    company = await create(pos, "company", name="Acme")
    ranking = (await pos.ok(docs.CREATE_RANKING))["record_create"]["id"]
    await pos.ok(docs.UPDATE_RANKING, {"id": ranking, "companies": [company], "vips": vips[:2]})
    appended = await pos.ok(docs.APPEND_RANKING, {"id": ranking, "name": "vip_programmer_ids", "value": vips[2]})
    assert appended["record_update"]["property_array"] == vips
    result = (await pos.ok(docs.RANKINGS))["rankings"]["results"][0]
    assert sorted(v["title"] for v in result["vips"]) == ["vip 0", "vip 1", "vip 2"]
    assert result["companies"] == [{"name": "Acme"}]


async def test_blog_guide_ranges_and_sort_by_property(pos: Harness) -> None:
    for title, published in (("old", "2025-12-31T23:00:00Z"), ("jan", "2026-01-15T10:00:00Z"), ("feb", "2026-02-01")):
        await create(pos, "blog_post", title=title, slug=title, published_at=published, tags=["news"])
    await create(pos, "blog_post", title="draft", slug="draft")

    def titles(data: dict[str, Any]) -> list[str]:
        return [r["title"] for r in data["blog_posts"]["results"]]

    everything = await pos.ok(docs.GET_BLOG_POSTS, {})
    # Sorted by published_at DESC; a post without the property sorts as the smallest value.
    assert titles(everything) == ["feb", "jan", "old", "draft"]
    assert (everything["blog_posts"]["current_page"], everything["blog_posts"]["per_page"]) == (1, 20)
    assert titles(await pos.ok(docs.GET_BLOG_POSTS, {"published_at_gte": "2026-01-01"})) == ["feb", "jan"]
    # A date alone is its whole day: lte 2026-01-15 includes that day's 10:00.
    assert titles(await pos.ok(docs.GET_BLOG_POSTS, {"published_at_lte": "2026-01-15"})) == ["jan", "old"]
    assert titles(await pos.ok(docs.GET_BLOG_POSTS, {"published_at_lt": "2026-01-15T10:00:00Z"})) == ["old"]
    assert titles(await pos.ok(docs.GET_BLOG_POSTS, {"published_at_gt": "2026-01-15"})) == ["feb"]
    assert titles(await pos.ok(docs.GET_BLOG_POSTS, {"tags": ["news", "tech"]})) == ["feb", "jan", "old"]
    page = await pos.ok(docs.GET_BLOG_POSTS, {"per_page": 3, "page": 2})
    assert titles(page) == ["draft"] and page["blog_posts"]["has_previous_page"] is True


async def test_payments_module_related_by_a_property_named_external_id(pos: Harness) -> None:
    create_transaction = """mutation($amount: Int, $payable: [String]) { record_create(record: {table: "transaction",
      properties: [{name: "amount_cents", value_int: $amount}, {name: "currency", value: "usd"},
                   {name: "payable_ids", value_array: $payable}]}) { id } }"""
    paid = (await pos.ok(create_transaction, {"amount": 1200, "payable": ["o1", "o2"]}))["record_create"]["id"]
    await pos.ok(create_transaction, {"amount": 500, "payable": ["o3"]})
    for n in range(2):
        request = {"external_id": paid, "request_url": f"https://gw/{n}", "request_data": "{}", "name": "charge"}
        assert (await pos.ok(docs.GATEWAY_REQUEST_CREATE, request))["record"]["external_id"] == paid

    found = await pos.ok(docs.TRANSACTION_SEARCH, {"payable_ids": ["o2"], "with_gateway_requests": True})
    (transaction,) = found["transactions"]["results"]
    assert (transaction["id"], transaction["amount_cents"], transaction["payable_ids"]) == (paid, 1200, ["o1", "o2"])
    assert [g["request_url"] for g in transaction["gateway_requests"]] == ["https://gw/1", "https://gw/0"]
    by_amount = (await pos.ok(docs.TRANSACTION_SEARCH, {"amount_cents": "500", "currency": "usd"}))["transactions"]
    assert by_amount["total_entries"] == 1 and "gateway_requests" not in by_amount["results"][0]


async def test_json_kept_in_a_string_property(pos: Harness) -> None:
    data = {"charges_enabled": True, "requirements": {"due": ["tos"]}, "n": 3}
    created = (
        await pos.ok(docs.CONNECTED_ACCOUNT_CREATE, {"account_id": "acct_1", "reference_id": "r1", "data": data})
    )["record"]
    assert created["data"] == data and created["table"] == "connected_account"
    read = (await pos.ok(docs.OBJECT_READ, {"id": created["id"]}))["records"]["results"][0]
    assert read["options"] == data
    assert json.loads(read["data"]) == data  # property gives the JSON as text


async def test_or_dates_user_id_and_external_id_filters(pos: Harness) -> None:
    create_with = """mutation($name: String, $user: ID, $ext: ID, $at: JSONDate) { record_create(record: {
      table: "employee", user_id: $user, external_id: $ext, created_at: $at,
      properties: [{name: "name", value: $name}]}) { id user_id external_id created_at } }"""
    a = await pos.ok(create_with, {"name": "a", "user": "7", "ext": "crm-1", "at": "2026-01-01T10:00:00Z"})
    b = await pos.ok(create_with, {"name": "b", "user": "8", "ext": "crm-2", "at": "2026-01-02T10:00:00Z"})
    c = await pos.ok(create_with, {"name": "c", "at": "2026-01-03T10:00:00+01:00"})
    assert a["record_create"]["user_id"] == "7" and a["record_create"]["external_id"] == "crm-1"
    assert c["record_create"]["created_at"] == "2026-01-03T09:00:00Z"
    query = """query($f: RecordsFilterInput, $s: [RecordsSortInput!]) {
      records(per_page: 10, filter: $f, sort: $s) { results { name: property(name: "name") } } }"""

    async def names(f: dict[str, Any], s: Any = None) -> list[str]:
        return [r["name"] for r in (await pos.ok(query, {"f": f, "s": s}))["records"]["results"]]

    assert await names({"user_id": {"value": "7"}}) == ["a"]
    assert await names({"user_id": {"value_in": ["7", "8"]}}) == ["b", "a"]
    assert await names({"external_id": {"starts_with": "CRM-"}, "user_id": {"not_value_in": ["8"]}}) == ["a"]
    assert await names({"created_at": {"gte": "2026-01-02", "lt": "2026-01-03T09:00:00Z"}}) == ["b"]
    assert await names({"created_at": {"value": "2026-01-03"}}) == ["c"]
    either = {"or": [{"user_id": {"value": "7"}}, {"properties": [{"name": "name", "value": "c"}]}]}
    assert await names(either, [{"id": {"order": "ASC"}}]) == ["a", "c"]
    ids = [a["record_create"]["id"], c["record_create"]["id"], b["record_create"]["id"]]
    assert await names({"table": {"value": "employee"}}, [{"id": {"order": "ASC", "order_by_values": ids}}]) == [
        "a",
        "c",
        "b",
    ]
    assert await names({"id": {"range": {"gt": ids[0]}}}, [{"updated_at": {"order": "ASC"}}]) == ["b", "c"]
    assert await names({"table": {"not_value_in": ["employee"]}}) == []


@pytest.mark.parametrize(
    ("arguments", "variables", "code", "says"),
    [
        ("per_page: 1001", {}, "BAD_USER_INPUT", "per_page must be between 1 and 1000"),
        ("per_page: 5, page: 0", {}, "BAD_USER_INPUT", "page must be 1 or more"),
        ('per_page: 5, filter: {properties: [{name: "nope", value: "x"}]}', {}, "BAD_USER_INPUT", "'nope'"),
        ('per_page: 5, filter: {properties: [{name: "name", value_int: 3}]}', {}, "BAD_USER_INPUT", "value_int"),
        ('per_page: 5, filter: {properties: [{name: "name", range: {gt: "a"}}]}', {}, "BAD_USER_INPUT", "range"),
        ('per_page: 5, filter: {properties: [{name: "age", value: "old"}]}', {}, "BAD_USER_INPUT", "not a valid"),
        ('per_page: 5, filter: {table: {value: "nope"}}', {}, "TABLE_NOT_FOUND", "does not exist"),
        ('per_page: 5, filter: {created_at: {gt: "yesterday"}}', {}, "BAD_USER_INPUT", "ISO 8601"),
        ('per_page: 5, filter: {id: {value: "abc"}}', {}, "BAD_USER_INPUT", "not a record id"),
        ('per_page: 5, filter: {user_id: {range: {gt: "1"}}}', {}, "BAD_USER_INPUT", "opaque"),
        ('per_page: 5, sort: {created_at: {order: ASC, order_by_values: ["x"]}}', {}, "BAD_USER_INPUT", "id and"),
        ('per_page: 5, sort: {properties: {name: "roles", order: ASC}}', {}, "BAD_USER_INPUT", "scalar"),
        ('per_page: 5, filter: {properties: [{name: "upload", value: "x"}]}', {}, "BAD_USER_INPUT", "exists only"),
        (
            "per_page: 5, filter: $f",
            {"f": {"properties": [{"name": "name", "value_in": ["x"] * 1001}]}},
            "BAD_USER_INPUT",
            "at most 1000",
        ),
        (
            "per_page: 5, filter: $f",
            {"f": {"or": [{"or": [{"or": [{"or": [{"or": [{}]}]}]}]}]}},
            "BAD_USER_INPUT",
            "nest at most",
        ),
        (
            "per_page: 5, filter: $f",
            {"f": {"properties": [{"name": "name", "value": str(i)} for i in range(201)]}},
            "BAD_USER_INPUT",
            "more than 200 conditions",
        ),
        (
            'per_page: 5, filter: {properties: [{name: "name", contains: $long}]}',
            {"long": "x" * 5000},
            "BAD_USER_INPUT",
            "longer than 4096",
        ),
    ],
)
async def test_bad_filters_are_refused_with_a_reason(
    pos: Harness, arguments: str, variables: dict[str, Any], code: str, says: str
) -> None:
    declared = ", ".join(f"${name}: {'RecordsFilterInput' if name == 'f' else 'String'}" for name in variables)
    query = (
        f"query{f'({declared})' if declared else ''} {{ records({arguments}) {{ total_entries results {{ id }} }} }}"
    )
    body = await pos.gql(query, variables)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code, error
    assert says in error["message"], error["message"]
