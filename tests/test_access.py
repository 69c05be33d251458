"""Per-table read and write rules (`access` in the table YAML) as a hostile client tries them, with JWT
auth on: another user's `documents` (`read: owner`) never show up, not in lists, counts, related
records, record(id:), nor through filters that could probe their existence; anonymous callers see
public tables only; writes follow the write rule; anonymous mode says what cannot hold."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from app.access import Access
from app.errors import Forbidden, Unauthenticated
from app.main import create_app
from app.models import Record, Upload
from app.record_filter import build_query
from app.record_sql import POSTGRES, select_page
from app.settings import ROOT, Settings, SettingsError
from app.tables import load_tables, parse_table
from app.uploads import Caller
from tests import files
from tests.conftest import Harness, post_form
from tests.gql import ATTACHMENT_PRESIGN
from tests.large import put
from tests.test_auth import SECRET, bearer
from tests.test_query_count import count_queries

LIST = """query($filter: RecordsFilterInput, $sort: [RecordsSortInput!], $per_page: Int = 50, $page: Int = 1) {
  records(filter: $filter, sort: $sort, per_page: $per_page, page: $page) {
    total_entries total_pages has_next_page results { id } } }"""
ONE = "query($id: ID!) { record(id: $id) { id properties } }"
WITH_FILE = 'query($id: ID!) { record(id: $id) { id properties file: property_upload(name: "resume") { url } } }'
CREATE = """mutation($table: String!, $props: [PropertyInputType], $ext: ID) {
  record_create(record: {table: $table, properties: $props, external_id: $ext}) { id user_id } }"""
UPDATE = """mutation($id: ID!, $props: [PropertyInputType]) {
  record_update(id: $id, record: {properties: $props}) { id properties } }"""
TAKE_OVER = "mutation($id: ID!, $me: ID) { record_update(id: $id, record: {user_id: $me}) { id user_id } }"
RESTORE = "mutation($id: ID!) { record_update(id: $id, record: {deleted_at: null}) { id } }"
DELETE = "mutation($id: ID!, $table: String) { record_delete(id: $id, table: $table) { id } }"
RELATED = """query($id: ID!, $tables: [String]!, $on: String!, $foreign: String!) { record(id: $id) {
  related_records(table: $tables, join_on_property: $on, foreign_property: $foreign) { id }
  first: related_record(table: $tables, join_on_property: $on, foreign_property: $foreign) { id } } }"""

DOCS = {"table": {"value": "documents"}}
# A photo whose caption is a document's title: joins that could reveal whether such a document exists.
BY_TITLE = {"join": {"join_on_property": "caption", "foreign_property": "title"}}


class World:
    """Alice's documents (one deleted), Bob's document, a photo of each; ids by name."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.ids: dict[str, str] = {}

    async def create(self, name: str, who: str, table: str, text: str, ext: str | None = None) -> str:
        prop = "title" if table == "documents" else "caption"
        variables = {"table": table, "props": [{"name": prop, "value": text}], "ext": ext}
        created = (await self.h.ok(CREATE, variables, **bearer(who)))["record_create"]
        assert created["user_id"] == who
        self.ids[name] = created["id"]
        return str(created["id"])

    async def build(self) -> World:
        await self.create("A1", "alice", "documents", "alice secret CV", ext="ext-a1")
        await self.create("A2", "alice", "documents", "alice letter")
        await self.h.ok(DELETE, {"id": self.ids["A2"]}, **bearer("alice"))
        await self.create("B1", "bob", "documents", "bob CV")
        await self.create("P1", "alice", "photos", "alice secret CV")
        await self.create("P2", "bob", "photos", "bob CV")
        return self

    def names(self, results: list[dict[str, Any]]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id[r["id"]] for r in results}

    async def seen(self, filter: Any, headers: dict[str, str], sort: Any = None) -> set[str]:
        """The records a filter returns to a caller; its count must agree, or it would leak."""
        page = (await self.h.ok(LIST, {"filter": filter, "sort": sort}, **headers))["records"]
        assert page["total_entries"] == len(page["results"]) and not page["has_next_page"], page
        assert page["total_pages"] == (1 if page["results"] else 0)
        return self.names(page["results"])


@pytest.fixture
async def authed(harness_factory: Any) -> Harness:
    harness: Harness = await harness_factory(AUTH_JWT_SECRET=SECRET)
    return harness


@pytest.fixture
async def world(authed: Harness) -> World:
    return await World(authed).build()


def _probes(w: World) -> list[tuple[Any, Any, set[str], set[str]]]:
    """(filter, sort, what Bob sees, what Alice sees): every filter that could tell Bob that one of
    Alice's documents exists, next to the same filter run by Alice, which shows the filter works."""
    a1, a2, b1 = w.ids["A1"], w.ids["A2"], w.ids["B1"]
    secret = [{"name": "title", "contains": "secret"}]
    return [
        (None, None, {"B1", "P1", "P2"}, {"A1", "P1", "P2"}),
        (DOCS, None, {"B1"}, {"A1"}),
        ({"id": {"value": a1}}, None, set(), {"A1"}),
        ({"id": {"value_in": [a1, a2, b1]}}, None, {"B1"}, {"A1"}),
        ({"id": {"range": {"gte": a1, "lte": a1}}}, None, set(), {"A1"}),
        ({**DOCS, "properties": [{"name": "title", "value": "alice secret CV"}]}, None, set(), {"A1"}),
        ({**DOCS, "properties": secret}, None, set(), {"A1"}),
        ({"properties": [{"name": "title", "starts_with": "alice"}]}, None, set(), {"A1"}),
        ({**DOCS, "properties": [{"name": "title", "exists": True}]}, None, {"B1"}, {"A1"}),
        ({"user_id": {"value": "alice"}}, None, {"P1"}, {"A1", "P1"}),
        ({**DOCS, "user_id": {"not_value_in": ["bob"]}}, None, set(), {"A1"}),
        ({"external_id": {"value": "ext-a1"}}, None, set(), {"A1"}),
        ({"or": [{**DOCS, "user_id": {"value": "alice"}}, {"id": {"value": a1}}]}, None, set(), {"A1"}),
        ({"or": [{**DOCS}, {"table": {"not_value": "documents"}}]}, None, {"B1", "P1", "P2"}, {"A1", "P1", "P2"}),
        ({"deleted_at": {"exists": True}}, None, set(), {"A2"}),
        (
            {**DOCS, "or": [{"deleted_at": {"exists": True}}, {"deleted_at": {"exists": False}}]},
            None,
            {"B1"},
            {"A1", "A2"},
        ),
        # Sorting brings nothing back that the filter left out.
        (DOCS, [{"id": {"order": "ASC", "order_by_values": [a1, a2]}}], {"B1"}, {"A1"}),
        (DOCS, [{"properties": [{"name": "title", "order": "DESC"}]}], {"B1"}, {"A1"}),
        # A photo whose caption is the title of a document the caller may read.
        ({"table": {"value": "photos"}, "related_records": [{**BY_TITLE, "filter": DOCS}]}, None, {"P2"}, {"P1"}),
        (
            {"table": {"value": "photos"}, "related_records": [{**BY_TITLE, "filter": {**DOCS, "properties": secret}}]},
            None,
            set(),
            {"P1"},
        ),
        # No table named inside: the related side still reads only what the caller may.
        ({"related_records": [{**BY_TITLE, "filter": {"properties": secret}}]}, None, set(), {"P1"}),
        (
            {
                "table": {"value": "photos"},
                "related_records": [{**BY_TITLE, "filter": {"user_id": {"value": "alice"}}}],
            },
            None,
            set(),
            {"P1"},
        ),
    ]


async def test_filters_sorts_and_counts_never_reveal_another_users_documents(world: World) -> None:
    for filter, sort, bob, alice in _probes(world):
        assert await world.seen(filter, bearer("bob"), sort) == bob, filter
        assert await world.seen(filter, bearer("alice"), sort) == alice, filter
    # One per page: Bob's only document leaves no next page, whatever Alice holds.
    page = (await world.h.ok(LIST, {"filter": DOCS, "per_page": 1}, **bearer("bob")))["records"]
    assert world.names(page["results"]) == {"B1"} and not page["has_next_page"] and page["total_entries"] == 1
    page2 = (await world.h.ok(LIST, {"filter": DOCS, "per_page": 1, "page": 2}, **bearer("bob")))["records"]
    assert page2["results"] == [] and page2["total_entries"] == 1


async def test_record_by_id_is_null_for_what_the_caller_may_not_read(world: World) -> None:
    h, ids = world.h, world.ids
    for who in (bearer("bob"), {}):
        for name in ("A1", "A2"):
            assert (await h.ok(ONE, {"id": ids[name]}, **who))["record"] is None
    # Exactly as for an id nobody has.
    assert (await h.ok(ONE, {"id": "987654"}, **bearer("bob")))["record"] is None
    assert (await h.ok(ONE, {"id": ids["B1"]}, **bearer("bob")))["record"]["properties"]["title"] == "bob CV"
    assert (await h.ok(ONE, {"id": ids["A1"]}, **bearer("alice")))["record"]["properties"]["title"] == (
        "alice secret CV"
    )
    assert (await h.ok(ONE, {"id": ids["P1"]}))["record"]["properties"]["caption"] == "alice secret CV"


async def test_anonymous_callers_read_public_tables_only(world: World) -> None:
    h, ids = world.h, world.ids
    assert await world.seen(None, {}) == {"P1", "P2"}
    assert await world.seen({"table": {"value_in": ["documents", "photos"]}}, {}) == {"P1", "P2"}
    assert await world.seen({"id": {"value": ids["A1"]}}, {}) == set()
    assert (
        await world.seen(
            {"related_records": [{**BY_TITLE, "filter": {"properties": [{"name": "title", "exists": True}]}}]}, {}
        )
        == set()
    )
    # Asking for documents alone: a token would help, and saying so reveals no record.
    for filter in (
        DOCS,
        {"table": {"value": "documents"}, "id": {"value": "987654"}},
        {"table": {"value": "photos"}, "related_records": [{**BY_TITLE, "filter": DOCS}]},
    ):
        body = await h.gql(LIST, {"filter": filter})
        assert body["data"] is None
        error = body["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED", error
        assert "documents (access.read: owner)" in error["message"] and "Bearer" in error["message"]


async def test_records_get_is_where_single_reads_are_checked(world: World) -> None:
    # Records.get serves record(id:) and whatever transport re-reads a record (subscriptions).
    records = world.h.app.state.services.records
    assert await records.get(Caller("bob"), world.ids["A1"]) is None
    assert await records.get(Caller(), world.ids["A1"]) is None
    view = await records.get(Caller("alice"), world.ids["A1"])
    assert view is not None and view.record.properties["title"] == "alice secret CV"
    assert (await records.get(Caller(), world.ids["P1"])) is not None


async def test_rest_confirms_into_the_callers_own_documents(world: World) -> None:
    h, data = world.h, files.pdf()
    init = {"table": "documents", "property_name": "resume", "file_name": "cv.pdf", "content_type": "application/pdf"}
    response = await h.http.post("/upload/init", json=init | {"size": len(data)}, headers=bearer("bob"))
    assert response.status_code == 200, response.text
    presigned = response.json()
    assert (await put(presigned["upload_url"], data, presigned["headers"])).status_code == 200
    confirm = {"table": "documents", "property_name": "resume", "key": presigned["key"], "properties": {"title": "b2"}}
    response = await h.http.post("/upload/confirm", json=confirm, headers=bearer("bob"))
    assert response.status_code == 200, response.text
    world.ids["B2"] = response.json()["id"]
    assert await world.seen(DOCS, bearer("bob")) == {"B1", "B2"}
    assert await world.seen(DOCS, bearer("alice")) == {"A1"}
    assert (await h.ok(WITH_FILE, {"id": world.ids["B2"]}, **bearer("alice")))["record"] is None


async def test_related_records_follow_the_read_rule(world: World) -> None:
    h, ids = world.h, world.ids
    by_title = {"id": ids["P1"], "tables": ["documents"], "on": "caption", "foreign": "title"}
    mine = (await h.ok(RELATED, by_title, **bearer("alice")))["record"]
    assert world.names(mine["related_records"]) == {"A1"} and mine["first"]["id"] == ids["A1"]
    others = (await h.ok(RELATED, by_title, **bearer("bob")))["record"]
    assert others["related_records"] == [] and others["first"] is None
    refused = await h.gql(RELATED, by_title)
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert refused["data"]["record"] is None or refused["data"]["record"]["related_records"] is None
    # Two tables: what the caller may not read is simply not there.
    by_owner = {"id": ids["P1"], "tables": ["documents", "photos"], "on": "user_id", "foreign": "user_id"}
    assert world.names((await h.ok(RELATED, by_owner, **bearer("alice")))["record"]["related_records"]) == {"A1", "P1"}
    assert world.names((await h.ok(RELATED, by_owner, **bearer("bob")))["record"]["related_records"]) == {"P1"}
    assert world.names((await h.ok(RELATED, by_owner))["record"]["related_records"]) == {"P1"}


async def test_changing_another_users_document_answers_as_for_a_missing_record(world: World) -> None:
    h, ids = world.h, world.ids

    async def refusal(query: str, variables: dict[str, Any]) -> tuple[str, str]:
        body = await h.gql(query, variables, **bearer("bob"))
        error = body["errors"][0]
        return error["extensions"]["code"], error["message"]

    missing = "987654"
    edit = [{"name": "title", "value": "pwned"}]
    for query, variables, absent in (
        (UPDATE, {"id": ids["A1"], "props": edit}, {"id": missing, "props": edit}),
        (DELETE, {"id": ids["A1"]}, {"id": missing}),
        (DELETE, {"id": ids["A1"], "table": "documents"}, {"id": missing, "table": "documents"}),
        # A deleted document of Alice's is not "deleted" to Bob: it is not there.
        (RESTORE, {"id": ids["A2"]}, {"id": missing}),
        (UPDATE, {"id": ids["A2"], "props": edit}, {"id": missing, "props": edit}),
        (TAKE_OVER, {"id": ids["A1"], "me": "bob"}, {"id": missing, "me": "bob"}),
    ):
        code, message = await refusal(query, variables)
        code_absent, message_absent = await refusal(query, absent)
        assert code == code_absent == "RECORD_NOT_FOUND"
        assert message.replace(variables["id"], missing) == message_absent
    a1, a2 = await Record.get(id=int(ids["A1"])), await Record.get(id=int(ids["A2"]))
    assert a1.properties["title"] == "alice secret CV" and a1.deleted_at is None and a1.owner == "alice"
    assert a2.deleted_at is not None
    # A photo is public: Bob sees it, so changing it is FORBIDDEN rather than missing.
    assert (await refusal(UPDATE, {"id": ids["P1"], "props": [{"name": "caption", "value": "x"}]}))[0] == "FORBIDDEN"
    assert (await refusal(DELETE, {"id": ids["P1"]}))[0] == "FORBIDDEN"
    # Alice still can.
    assert (await h.ok(UPDATE, {"id": ids["A1"], "props": edit}, **bearer("alice")))["record_update"]
    assert (await h.ok(RESTORE, {"id": ids["A2"]}, **bearer("alice")))["record_update"]["id"] == ids["A2"]


SHARED_YML = """
name: notes
access: {read: authenticated, write: authenticated}
properties:
  - {name: title, type: string}
"""
CVS_YML = """
name: cvs
access: {read: public}
properties:
  - {name: title, type: string}
  - {name: resume, type: attachment, options: {content_types: [application/pdf]}}
"""


@pytest.fixture
async def shared(harness_factory: Any, tmp_path: Path) -> Harness:
    (tmp_path / "notes.yml").write_text(SHARED_YML)
    (tmp_path / "cvs.yml").write_text(CVS_YML)
    harness: Harness = await harness_factory(AUTH_JWT_SECRET=SECRET, SCHEMA_DIR=str(tmp_path))
    return harness


async def test_write_authenticated_lets_signed_in_callers_change_but_not_take_over(shared: Harness) -> None:
    h = shared
    note = await h.ok(CREATE, {"table": "notes", "props": [{"name": "title", "value": "a"}]}, **bearer("alice"))
    nid = note["record_create"]["id"]
    listed = (await h.ok(LIST, {"filter": {"table": {"value": "notes"}}}, **bearer("bob")))["records"]
    assert [r["id"] for r in listed["results"]] == [nid] and listed["total_entries"] == 1
    changed = await h.ok(UPDATE, {"id": nid, "props": [{"name": "title", "value": "b"}]}, **bearer("bob"))
    assert changed["record_update"]["properties"]["title"] == "b"
    assert await h.error_code(TAKE_OVER, {"id": nid, "me": "bob"}, **bearer("bob")) == "FORBIDDEN"
    assert (await Record.get(id=int(nid))).owner == "alice"
    # Anonymous callers: a token would help; record(id:) is null; unfiltered lists leave notes out.
    assert await h.error_code(LIST, {"filter": {"table": {"value": "notes"}}}) == "UNAUTHENTICATED"
    assert (await h.ok(ONE, {"id": nid}))["record"] is None
    assert (await h.ok(LIST, {}))["records"]["results"] == []
    assert (await h.ok(DELETE, {"id": nid}, **bearer("bob")))["record_delete"]["id"] == nid


async def test_private_files_of_a_public_table_are_signed_for_their_owner_only(shared: Harness) -> None:
    h = shared
    variables = {"table": "cvs", "prop": "resume", "type": "application/pdf", "name": "cv.pdf"}
    presigned = (await h.ok(ATTACHMENT_PRESIGN, variables, **bearer("alice")))["attachment_presign_url"]
    assert (await post_form(presigned, files.pdf(), "cv.pdf", "application/pdf")).status_code == 201
    props = [{"name": "title", "value": "CV"}, {"name": "resume", "value": presigned["url"]}]
    cid = (await h.ok(CREATE, {"table": "cvs", "props": props}, **bearer("alice")))["record_create"]["id"]
    mine = (await h.ok(WITH_FILE, {"id": cid}, **bearer("alice")))["record"]
    assert "X-Amz-Signature" in mine["file"]["url"] and "X-Amz-Signature" in mine["properties"]["resume"]
    for who in (bearer("bob"), {}):
        seen = (await h.ok(WITH_FILE, {"id": cid}, **who))["record"]
        assert seen["properties"]["title"] == "CV" and seen["file"]["url"] is None
        assert seen["properties"]["resume"] is None


async def test_a_record_without_owner_is_nobodys(shared: Harness) -> None:
    # Saved without auth (before auth was turned on): under write: owner nobody may change or take it.
    h = shared
    orphan = await Record.create(table="cvs", properties={"title": "old"}, created_at=_now(), updated_at=_now())
    edit = {"id": str(orphan.id), "props": [{"name": "title", "value": "mine"}]}
    body = await h.gql(UPDATE, edit, **bearer("bob"))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and "no owner" in body["errors"][0]["message"]
    assert await h.error_code(TAKE_OVER, {"id": str(orphan.id), "me": "bob"}, **bearer("bob")) == "FORBIDDEN"
    assert await h.error_code(DELETE, {"id": str(orphan.id)}, **bearer("bob")) == "FORBIDDEN"
    assert (await Record.get(id=orphan.id)).owner is None


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_documents_page_costs_the_same_queries_for_2_or_12_own_records(world: World) -> None:
    h = world.h
    query = """{ records(filter: {table: {value: "documents"}}, per_page: 50) { total_entries results { id
      file: property_upload(name: "resume") { url }
      photos: related_records(table: "photos", join_on_property: "title", foreign_property: "caption") { id } } } }"""

    async def run(expected: int) -> int:
        with count_queries() as counter:
            page = (await h.ok(query, **bearer("alice")))["records"]
        assert page["total_entries"] == len(page["results"]) == expected
        return len(counter.statements)

    with_1 = await run(1)
    for i in range(10):
        await world.create(f"A{i + 10}", "alice", "documents", f"doc {i}")
    # count + page + uploads + versions, then the related photos + their uploads + versions
    assert await run(11) == with_1 == 7


async def test_no_presign_or_create_without_the_right_to_write(authed: Harness) -> None:
    h = authed
    presigns = [
        (ATTACHMENT_PRESIGN, {"table": "documents", "prop": "resume", "type": "application/pdf"}),
        (
            'mutation { property_upload_presigned_url(table: "documents", property_name: "resume", '
            'put: {file_name: "a.pdf", content_type: "application/pdf", size: 10}) { key } }',
            {},
        ),
        (
            'mutation { multipart_upload_create(table: "documents", property_name: "resume", file_name: "a.pdf", '
            'content_type: "application/pdf", size: 6000000) { key } }',
            {},
        ),
        (CREATE, {"table": "documents", "props": [{"name": "title", "value": "x"}]}),
    ]
    for query, variables in presigns:
        assert await h.error_code(query, variables) == "UNAUTHENTICATED"
    response = await h.http.post(
        "/upload/init",
        json={
            "table": "documents",
            "property_name": "resume",
            "file_name": "a.pdf",
            "content_type": "application/pdf",
            "size": 10,
        },
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert await Upload.all().count() == 0 and await Record.all().count() == 0


# -- anonymous mode ------------------------------------------------------------------------------


async def test_anonymous_mode_reads_public_tables_only_by_default(h: Harness) -> None:
    data = files.pdf()
    variables = {"table": "documents", "prop": "resume", "type": "application/pdf", "name": "cv.pdf"}
    presigned = (await h.ok(ATTACHMENT_PRESIGN, variables))["attachment_presign_url"]
    assert (await post_form(presigned, data, "cv.pdf", "application/pdf")).status_code == 201
    props = [{"name": "title", "value": "CV"}, {"name": "resume", "value": presigned["url"]}]
    create = CREATE.replace("{ id user_id }", '{ id file: property_upload(name: "resume") { url } }')
    created = (await h.ok(create, {"table": "documents", "props": props}))["record_create"]
    # Its creator gets the file back in the answer that saved it...
    assert "X-Amz-Signature" in created["file"]["url"]
    # ...and from then on nobody reads it: there are no identities to tell its owner by.
    assert (await h.ok(ONE, {"id": created["id"]}))["record"] is None
    assert (await h.ok(LIST, {}))["records"]["results"] == []
    body = await h.gql(LIST, {"filter": DOCS})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "anonymous mode" in body["errors"][0]["message"]
    edit = {"id": created["id"], "props": [{"name": "title", "value": "x"}]}
    assert await h.error_code(UPDATE, edit) == "RECORD_NOT_FOUND"
    assert await h.error_code(DELETE, {"id": created["id"]}) == "RECORD_NOT_FOUND"
    # Public tables work as ever, writes included.
    photo = (await h.ok(CREATE, {"table": "photos", "props": [{"name": "caption", "value": "c"}]}))["record_create"]
    assert [r["id"] for r in (await h.ok(LIST, {}))["records"]["results"]] == [photo["id"]]
    assert (await h.ok(UPDATE, {"id": photo["id"], "props": [{"name": "caption", "value": "d"}]}))["record_update"]


async def test_anonymous_reads_all_serves_everything(harness_factory: Any) -> None:
    h: Harness = await harness_factory(ANONYMOUS_READS="all")
    created = await h.ok(CREATE, {"table": "documents", "props": [{"name": "title", "value": "CV"}]})
    rid = created["record_create"]["id"]
    assert [r["id"] for r in (await h.ok(LIST, {"filter": DOCS}))["records"]["results"]] == [rid]
    assert (await h.ok(ONE, {"id": rid}))["record"]["properties"]["title"] == "CV"


def _messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "app"]


async def test_start_up_says_which_rules_cannot_hold(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app"):
        create_app(h.settings)
    warnings = [m for level, m in _messages(caplog) if level == logging.WARNING]
    documents = str(h.settings.schema_dir / "documents.yml")
    assert f"{documents}: access.read: owner cannot hold without auth: nobody reads the records of documents" in (
        "\n".join(warnings)
    )
    assert any(
        m.startswith("access.write (documents: owner, photos: owner) cannot hold without auth") for m in warnings
    )
    assert not any("photos.yml" in m for m in warnings)  # public, with public files: nothing that cannot hold

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app"):
        create_app(h.settings.with_changes(anonymous_reads="all"))
    assert any(
        m == f"{documents}: access.read: owner does not hold: ANONYMOUS_READS=all serves every record of documents "
        "and its private files (resume) to every caller"
        for _, m in _messages(caplog)
    )

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app"):
        create_app(
            h.settings.with_changes(auth_jwt_secret=Settings.from_env({"AUTH_JWT_SECRET": SECRET}).auth_jwt_secret)
        )
    messages = _messages(caplog)
    assert not [m for level, m in messages if level >= logging.WARNING]
    assert (logging.INFO, "table access: documents read: owner, write: owner; photos read: public, write: owner") in (
        messages
    )


def test_anonymous_reads_all_is_refused_with_auth() -> None:
    with pytest.raises(SettingsError, match="ANONYMOUS_READS=all applies only without auth"):
        Settings.from_env({"AUTH_JWT_SECRET": SECRET, "ANONYMOUS_READS": "all"})
    with pytest.raises(SettingsError, match="ANONYMOUS_READS='some' must be public or all"):
        Settings.from_env({"ANONYMOUS_READS": "some"})
    assert Settings.from_env({}).anonymous_reads == "public"


# -- the pure rules ------------------------------------------------------------------------------

TABLES = load_tables(ROOT / "app" / "schema")


def test_the_read_rule_is_one_condition_around_the_whole_filter() -> None:
    access = Access(TABLES, auth=True)
    hostile = {"or": [{"user_id": {"value": "alice"}}, {"id": {"value": "1"}}]}
    query = build_query(TABLES, hostile, None, reads=access.reads(Caller("bob")))
    sql, params = select_page(query, POSTGRES, 21, 0)
    where = sql.split(" WHERE ", 1)[1]
    # Bob's own documents, or any photo; then the client's `or` inside its own parentheses.
    assert where.startswith(
        """(r0."deleted_at" IS NULL AND ((r0."table" = 'photos' OR (r0."table" = 'documents' AND r0."owner" = $1"""
    ), where
    assert "bob" in params
    # Every table readable whole: no condition at all when the filter names the table.
    named = build_query(TABLES, {"table": {"value": "photos"}}, None, reads=access.reads(Caller()))
    assert "owner" not in select_page(named, POSTGRES, 1, 0)[0]


def test_write_rules() -> None:
    access = Access(TABLES, auth=True)
    with pytest.raises(Unauthenticated):
        access.check_create(Caller(), "documents")
    access.check_create(Caller("bob"), "documents")
    access.check_change(Caller("bob"), "documents", "bob")
    with pytest.raises(Forbidden, match="another user"):
        access.check_change(Caller("bob"), "photos", "alice")
    shared = {
        "notes": parse_table(
            {"name": "notes", "access": {"read": "authenticated", "write": "authenticated"}, "properties": []}, "n"
        )
    }
    Access(shared, auth=True).check_change(Caller("bob"), "notes", "alice")
    anonymous_mode = Access(TABLES, auth=False)
    anonymous_mode.check_create(Caller(), "documents")
    anonymous_mode.check_change(Caller(), "photos", "alice")
    assert not anonymous_mode.can_read(Caller(), "documents", None)
    assert Access(TABLES, auth=False, anonymous_reads="all").can_read(Caller(), "documents", None)
    # Records of a table no YAML declares (any more) are nobody's.
    assert not access.can_read(Caller("bob"), "gone", "bob")
