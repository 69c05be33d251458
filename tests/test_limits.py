"""The limits a hostile client runs into: GraphQL document size and shape, request body size,
introspection and GraphiQL switches, masked internal errors, CORS, and per-caller presign limits."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.models import Upload
from tests.conftest import BACKEND, Harness
from tests.gql import IMAGE_PRESIGN, RECORDS, TABLES
from tests.large import MIB, MP_CREATE, PUT_PRESIGN, schema_dir

PRESIGN_VARS = {"table": "photos", "prop": "image"}


def code_of(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


async def test_deep_queries_are_refused_before_any_resolver(harness_factory: Any) -> None:
    h: Harness = await harness_factory(GRAPHQL_MAX_DEPTH=3)
    variables = {"table": "photos", "prop": "image"}
    body = await h.gql(RECORDS, variables)
    assert code_of(body) == "GRAPHQL_VALIDATION_FAILED"
    assert "depth" in body["errors"][0]["message"]
    assert body.get("data") is None
    assert (await h.ok("{ tables { name } }"))["tables"]


async def test_default_depth_fits_the_real_queries(h: Harness) -> None:
    data = await h.ok(RECORDS, {"table": "photos", "prop": "image"})
    assert data["records"]["total_entries"] == 0


async def test_a_repeated_document_is_validated_once(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The depth and alias rules are part of the validation cache's key: built per request they would
    make every request miss the cache and pay graphql-core's full validation again."""
    import strawberry.schema.schema as strawberry_schema

    import app.graphql.pipeline as pipeline

    calls: list[int] = []
    real = pipeline.validate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "validate", counting)
    monkeypatch.setattr(strawberry_schema, "validate", counting)  # Strawberry's own step must not run either
    query = "query RepeatedDocument { tables { name properties { name } } }"
    for _ in range(3):
        assert (await h.ok(query))["tables"]
    assert len(calls) == 1
    # The cached verdict still refuses: a document over the alias limit stays refused when repeated.
    flood = "{ " + " ".join(f"a{i}: tables {{ name }}" for i in range(31)) + " }"
    for _ in range(2):
        assert code_of(await h.gql(flood)) == "GRAPHQL_VALIDATION_FAILED"


async def test_alias_flood_is_refused(h: Harness) -> None:
    flood = "{ " + " ".join(f"a{i}: tables {{ name }}" for i in range(31)) + " }"
    body = await h.gql(flood)
    assert code_of(body) == "GRAPHQL_VALIDATION_FAILED"
    assert "aliases" in body["errors"][0]["message"]
    assert (await h.ok("{ " + " ".join(f"a{i}: tables {{ name }}" for i in range(30)) + " }"))["a29"]


async def test_token_flood_is_refused(h: Harness) -> None:
    flood = "{ tables { " + "name " * 3000 + "} }"
    body = await h.gql(flood)
    assert code_of(body) == "GRAPHQL_PARSE_FAILED"
    assert "tokens" in body["errors"][0]["message"]


async def test_oversized_body_gets_413_json(h: Harness) -> None:
    big = {"query": TABLES, "variables": {"pad": "x" * (1_048_576 + 1)}}
    response = await h.http.post("/graphql", json=big)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_oversized_chunked_body_without_length_gets_413(harness_factory: Any) -> None:
    h: Harness = await harness_factory(MAX_BODY_BYTES=4096)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ tables { name } }", "variables": {"pad": "'
        for _ in range(10):
            yield b"x" * 1024
        yield b'"}}'

    response = await h.http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_lying_content_length_is_refused(h: Harness) -> None:
    response = await h.http.post("/graphql", content=b"{}", headers={"content-length": "-1"})
    assert response.status_code in (400, 413)
    small = await h.http.post("/graphql", json={"query": TABLES})
    assert small.status_code == 200


async def test_introspection_and_graphiql_are_on_in_development(h: Harness) -> None:
    assert (await h.ok("{ __schema { queryType { name } } }"))["__schema"]["queryType"]["name"] == "Query"
    page = await h.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_introspection_and_graphiql_can_be_switched_off(harness_factory: Any) -> None:
    h: Harness = await harness_factory(GRAPHQL_INTROSPECTION="false", GRAPHIQL="false")
    body = await h.gql("{ __schema { types { name } } }")
    assert code_of(body) == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in body["errors"][0]["message"].lower()
    body = await h.gql('{ __type(name: "Record") { fields { name } } }')
    assert code_of(body) == "GRAPHQL_VALIDATION_FAILED"
    page = await h.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert (await h.ok(TABLES))["tables"]  # ordinary queries still work


# Misspelt names in each place graphql-core suggests a name from the schema: a field, an argument, a
# type, an input field in a literal and an input field in the variables (coerced at execution).
MISSPELT = [
    ("{ tabels { name } }", None, "tables"),
    ("{ record(idd: 1) { id } }", None, "id"),
    ("query($t: Strin) { tables { name } }", None, "String"),
    (
        'mutation { image_presign_url(options: {model_property: {model_schema_name: "photos", property_name: "image"},'
        ' file_nam: "a.png"}) { key } }',
        None,
        "file_name",
    ),
    (IMAGE_PRESIGN, {**PRESIGN_VARS, "len": {"gtee": 1}}, "gte"),
]


@pytest.mark.parametrize(("introspection", "suggested"), [("true", True), ("false", False)])
async def test_no_name_suggestions_without_introspection(
    harness_factory: Any, introspection: str, suggested: bool
) -> None:
    """With introspection off the schema is not for the asking: errors must not spell its names out."""
    h: Harness = await harness_factory(GRAPHQL_INTROSPECTION=introspection)
    for query, variables, name in MISSPELT:
        body = await h.gql(query, variables)
        assert body["errors"], body
        assert {e["extensions"]["code"] for e in body["errors"]} <= {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}
        messages = " ".join(e["message"] for e in body["errors"])
        assert ("Did you mean" in messages) is suggested, messages
        assert (f"'{name}'" in messages) is suggested, messages
    assert await Upload.all().count() == 0


@pytest.mark.skipif(BACKEND != "sqlite", reason="breaks the SQLite file behind the app's back")
@pytest.mark.parametrize("debug", [False, True])
async def test_internal_errors_are_masked_outside_debug(harness_factory: Any, debug: bool) -> None:
    h: Harness = await harness_factory(DEBUG=str(debug).lower())
    # A real fault the app cannot expect: the records table vanished (e.g. a botched migration).
    path = h.settings.database_url[len("sqlite://") :]
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE records")
    body = await h.gql(RECORDS, {"table": "photos", "prop": "image"})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    text = str(body)
    if debug:
        assert "records" in error["message"]
    else:
        assert error["message"] == "Internal server error; it has been logged"
        assert "Traceback" not in text and "no such table" not in text and 'File "' not in text


async def test_cors_preflight_allowed_and_denied(harness_factory: Any) -> None:
    h: Harness = await harness_factory(CORS_ORIGINS="https://app.example, https://admin.example")
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    ok = await h.http.options("/graphql", headers={"origin": "https://app.example", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    denied = await h.http.options("/graphql", headers={"origin": "https://evil.example", **preflight})
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    simple = await h.http.post("/graphql", json={"query": TABLES}, headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
    too_big = await h.http.post(
        "/graphql",
        content=b"x" * 2_000_000,
        headers={"origin": "https://app.example", "content-type": "application/json"},
    )
    assert too_big.status_code == 413
    assert too_big.headers["access-control-allow-origin"] == "https://app.example"


async def test_no_cors_headers_without_cors_origins(h: Harness) -> None:
    response = await h.http.post("/graphql", json={"query": TABLES}, headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("store", ["database", "process"])
async def test_presign_rate_limit_per_caller(harness_factory: Any, store: str) -> None:
    h: Harness = await harness_factory(PRESIGN_RATE_PER_MINUTE=3, PRESIGN_RATE_STORE=store)
    for _ in range(3):
        await h.ok(IMAGE_PRESIGN, PRESIGN_VARS)
    body = await h.gql(IMAGE_PRESIGN, PRESIGN_VARS)
    assert code_of(body) == "TOO_MANY_REQUESTS"
    assert "per minute" in body["errors"][0]["message"]
    assert await Upload.all().count() == 3
    assert (await h.ok(TABLES))["tables"]  # reads are not rate limited


async def test_pending_upload_cap(harness_factory: Any) -> None:
    h: Harness = await harness_factory(MAX_PENDING_UPLOADS=2)
    await h.ok(IMAGE_PRESIGN, PRESIGN_VARS)
    await h.ok(IMAGE_PRESIGN, PRESIGN_VARS)
    body = await h.gql(IMAGE_PRESIGN, PRESIGN_VARS)
    assert code_of(body) == "TOO_MANY_REQUESTS"
    assert "presigned but not yet saved" in body["errors"][0]["message"]
    assert await Upload.all().count() == 2
    # Expired uploads no longer count: the caller can go on once they lapse.
    await Upload.all().update(expires_at=await _past())
    assert (await h.ok(IMAGE_PRESIGN, PRESIGN_VARS))["image_presign_url"]


# Every way of issuing an upload counts against the same per-caller limits: a form POST, a PUT and a
# multipart upload (table `videos` of tests/large.py, which accepts files of 5 MiB and more).
PUT_FILE = {"file_name": "a.png", "content_type": "image/png", "size": 2048}
PUT_VARS = {"table": "photos", "prop": "image", "put": PUT_FILE}
MP_VARS = {"table": "videos", "prop": "clip", "name": "film.mp4", "type": "video/mp4", "size": 6 * MIB}
ISSUERS = [(IMAGE_PRESIGN, PRESIGN_VARS), (PUT_PRESIGN, PUT_VARS), (MP_CREATE, MP_VARS)]


async def test_put_and_multipart_share_the_presign_rate(harness_factory: Any, tmp_path: Any) -> None:
    h: Harness = await harness_factory(PRESIGN_RATE_PER_MINUTE=3, SCHEMA_DIR=schema_dir(tmp_path))
    for query, variables in ISSUERS:
        await h.ok(query, variables)
    for query, variables in ISSUERS:
        body = await h.gql(query, variables)
        assert code_of(body) == "TOO_MANY_REQUESTS", query
        assert "per minute" in body["errors"][0]["message"]
    assert await Upload.all().count() == 3
    assert await h.keys() == []  # a refused multipart create started nothing in storage


async def test_put_and_multipart_share_the_pending_cap(harness_factory: Any, tmp_path: Any) -> None:
    h: Harness = await harness_factory(MAX_PENDING_UPLOADS=3, SCHEMA_DIR=schema_dir(tmp_path))
    for query, variables in ISSUERS:
        await h.ok(query, variables)
    assert set(await Upload.all().values_list("method", flat=True)) == {"post", "put", "multipart"}
    for query, variables in ISSUERS:
        body = await h.gql(query, variables)
        assert code_of(body) == "TOO_MANY_REQUESTS", query
        assert "presigned but not yet saved" in body["errors"][0]["message"]
    assert await Upload.all().count() == 3


async def _past() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=1)


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's planner, which has no statistics to go by")
async def test_pending_cap_reads_the_callers_index_not_every_pending_upload(harness_factory: Any) -> None:
    """The cap's query runs at every presign: it must be an index search on this caller's pending
    uploads, stopped at the cap, whatever the number of other callers' pending uploads."""
    import logging

    from tortoise import connections

    sent: list[tuple[str, list[Any]]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg == "%s: %s" and isinstance(record.args, tuple):
                sent.append((str(record.args[0]), list(record.args[1])))

    h: Harness = await harness_factory(MAX_PENDING_UPLOADS=5)
    logger = logging.getLogger("tortoise.db_client")
    capture, level = Capture(), logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    try:
        await h.ok(IMAGE_PRESIGN, PRESIGN_VARS)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    # One statement writes the row and checks the cap; no other query touches the uploads table.
    (statement, values) = next((q, v) for q, v in sent if q.startswith('INSERT INTO "uploads"'))
    assert [q for q, _ in sent if '"uploads"' in q] == [statement]
    assert "LIMIT" in statement
    _, plan = await connections.get("default").execute_query(f"EXPLAIN QUERY PLAN {statement}", values)
    detail = " ".join(str(row["detail"]) for row in plan)
    assert "INDEX idx_uploads_owner_" in detail and "(owner=? AND status=? AND expires_at>?)" in detail, detail


def test_document_cache_is_bounded() -> None:
    """Repeated documents are remembered; the least recently used go first, and huge documents are
    never kept (a flood of unique megabyte documents must not fill memory)."""
    from graphql import parse

    from app.graphql.pipeline import MAX_CACHED_DOCUMENT, DocumentCache, _Entry

    cache = DocumentCache(maxsize=3)
    for name in ("a", "b", "c"):
        cache.put(f"{{ {name} }}", _Entry(parse(f"{{ {name} }}")))
    assert cache.get("{ a }") is not None  # now the most recently used
    cache.put("{ d }", _Entry(parse("{ d }")))
    assert cache.get("{ b }") is None and cache.get("{ a }") is not None and cache.get("{ d }") is not None
    huge = "{ a " + " " * MAX_CACHED_DOCUMENT + "}"
    cache.put(huge, _Entry(parse(huge)))
    assert cache.get(huge) is None
