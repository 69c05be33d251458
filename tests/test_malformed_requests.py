"""Malformed requests, as a hostile client sends them: each answers 400 with a code, logs one line
(the access line, no traceback), and changes nothing. tests/test_http_fuzz.py sends thousands more of
their kind to the real server over a socket."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from app.jsonbody import MAX_DEPTH
from app.models import Record, Upload
from tests.conftest import Harness
from tests.gql import IMAGE_PRESIGN

JSON = {"content-type": "application/json"}
TABLES = "{ tables { name } }"
OPERATION = json.dumps({"query": TABLES}).encode()


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore")):  # the test's own client
            self.records.append(record)


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


# (name, how to send it): bodies of every kind the issue lists, and their relatives.
GRAPHQL_POSTS: list[tuple[str, dict[str, Any]]] = [
    ("number", {"content": b"5"}),
    ("string", {"content": b'"{ tables { name } }"'}),
    ("null", {"content": b"null"}),
    ("true", {"content": b"true"}),
    ("batch", {"content": json.dumps([{"query": TABLES}]).encode()}),
    ("empty", {"content": b""}),
    ("truncated", {"content": b'{"query": "{ tables'}),
    ("latin-1", {"content": '{"query": "{ tables { name } } # é"}'.encode("latin-1")}),
    ("utf-16", {"content": json.dumps({"query": TABLES}).encode("utf-16")}),
    ("bom", {"content": b"\xef\xbb\xbf" + OPERATION}),
    ("lone surrogate", {"content": b'{"query": "{ tables { name } }", "variables": {"a": "\\udc00"}}'}),
    (
        "variables nested 200,000 deep",
        {"content": b'{"query": "{ tables { name } }", "variables": {"a": ' + nested(200_000) + b"}}"},
    ),
    (
        "variables nested past the limit",
        {"content": b'{"query": "{ tables { name } }", "variables": {"a": ' + nested(MAX_DEPTH) + b"}}"},
    ),
    ("huge integer", {"content": b'{"query": "{ tables { name } }", "variables": {"a": ' + b"9" * 5000 + b"}}"}),
    ("overflowing float", {"content": b'{"query": "{ tables { name } }", "variables": {"a": 1e400}}'}),
    ("NaN", {"content": b'{"query": "{ tables { name } }", "variables": {"a": NaN}}'}),
    ("duplicate key", {"content": b'{"query": "{ tables { name } }", "query": "mutation { x }"}'}),
    ("query not a string", {"content": b'{"query": ["{ tables { name } }"]}'}),
    ("no query", {"content": b'{"variables": {}}'}),
    ("variables not an object", {"content": b'{"query": "{ tables { name } }", "variables": [1]}'}),
    ("extensions not an object", {"content": b'{"query": "{ tables { name } }", "extensions": "x"}'}),
    ("operationName a number", {"content": b'{"query": "{ tables { name } }", "operationName": 5}'}),
    ("operationName an object", {"content": b'{"query": "{ tables { name } }", "operationName": {"a": 1}}'}),
    ("unknown operationName", {"content": b'{"query": "query A { tables { name } }", "operationName": "B"}'}),
    ("no content type", {"content": OPERATION, "headers": {}}),
    ("text/plain", {"content": OPERATION, "headers": {"content-type": "text/plain"}}),
    ("application/jsonx", {"content": OPERATION, "headers": {"content-type": "application/jsonx"}}),
    ("charset utf-16", {"content": OPERATION, "headers": {"content-type": "application/json; charset=utf-16"}}),
    ("form", {"data": {"query": TABLES}, "headers": {}}),
    (
        "multipart (GraphQL multipart request spec)",
        {"files": {"operations": (None, json.dumps({"query": TABLES})), "map": (None, "{}")}, "headers": {}},
    ),
]


async def test_malformed_graphql_posts(h: Harness, log_lines: Lines) -> None:
    for name, kwargs in GRAPHQL_POSTS:
        response = await h.http.post("/graphql", **{"headers": JSON, **kwargs})
        assert_refused(name, response, log_lines)
    await assert_nothing_changed()


GRAPHQL_GETS: list[tuple[str, dict[str, str] | str]] = [
    ("variables nested 2,000 deep", {"query": TABLES, "variables": '{"a": ' + nested(2000).decode() + "}"}),
    ("variables a number", {"query": TABLES, "variables": "5"}),
    ("variables not JSON", {"query": TABLES, "variables": "{a: 1}"}),
    ("extensions a list", {"query": TABLES, "extensions": "[1]"}),
    ("query twice", f"query={TABLES}&query=mutation%20%7B%20x%20%7D"),
    ("a mutation", {"query": 'mutation { record_delete(id: "1") { id } }'}),
    ("no query", {"variables": "{}"}),
]


async def test_malformed_graphql_gets(h: Harness, log_lines: Lines) -> None:
    for name, params in GRAPHQL_GETS:
        query = params if isinstance(params, str) else urlencode(params)
        response = await h.http.get(f"/graphql?{query}", headers={"accept": "application/json"})
        assert_refused(name, response, log_lines)
    await assert_nothing_changed()


REST_POSTS: list[tuple[str, bytes]] = [
    ("nested 30,000 deep", b'{"table": ' + nested(30_000) + b"}"),
    ("a list", b'[{"table": "documents"}]'),
    ("null", b"null"),
    ("not UTF-8", b'{"table": "\xff"}'),
    ("duplicate key", b'{"table": "documents", "table": "photos"}'),
    ("huge integer", b'{"table": "documents", "size": ' + b"1" * 5000 + b"}"),
    ("Infinity", b'{"table": "documents", "size": Infinity}'),
]


async def test_malformed_rest_posts(h: Harness, log_lines: Lines) -> None:
    for path in ("/upload/init", "/upload/confirm"):
        for name, body in REST_POSTS:
            response = await h.http.post(path, content=body, headers=JSON)
            assert response.status_code == 400, (path, name, response.text)
            assert response.json()["error"]["code"] == "BAD_USER_INPUT", (path, name, response.text)
            assert_one_line(f"{path}: {name}", log_lines, 400)
    await assert_nothing_changed()


def assert_refused(name: str, response: Any, log_lines: Lines) -> None:
    assert response.status_code == 400, (name, response.text)
    body = response.json()
    assert set(body) == {"errors"}, (name, body)
    assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED"), (name, body)
    assert "Traceback" not in response.text
    assert_one_line(name, log_lines, 400)


def assert_one_line(name: str, log_lines: Lines, status: int) -> None:
    """Exactly the access line of this request, then forget it for the next one."""
    lines = [(r.name, r.getMessage()) for r in log_lines.records]
    assert len(lines) == 1 and lines[0][0] == "app.access" and f" {status} " in lines[0][1], (name, lines)
    assert not any(r.exc_info for r in log_lines.records), name
    log_lines.records.clear()


async def assert_nothing_changed() -> None:
    assert await Record.all().count() == 0
    assert await Upload.all().count() == 0


async def test_the_server_still_answers_after_malformed_requests(h: Harness) -> None:
    for _, kwargs in GRAPHQL_POSTS[:12]:
        await h.http.post("/graphql", **{**kwargs, "headers": JSON})
    assert (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image"}))["image_presign_url"]["key"]


async def test_json_within_the_limits_is_accepted(h: Harness) -> None:
    """The strict decoder refuses only what it must: deep-but-allowed nesting, escaped brackets in
    strings, surrogate pairs, big-but-finite numbers and a GET's `variables=null` all pass."""
    # The body's object and `variables` are two levels: MAX_DEPTH in all.
    inner = json.loads(nested(MAX_DEPTH - 2))
    variables = {"a": inner, "b": "[[[[{{{{" * 100, "c": "\U0001f600", "d": 1e308, "e": 10**100}
    body = json.dumps({"query": TABLES, "variables": variables})
    assert "\\ud83d\\ude00" in body  # json.dumps escapes the emoji as a surrogate pair
    response = await h.http.post("/graphql", content=body.encode(), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["tables"]
    params = urlencode({"query": TABLES, "variables": "null"})
    response = await h.http.get(f"/graphql?{params}", headers={"accept": "application/json"})
    assert response.status_code == 200 and response.json()["data"]["tables"], response.text
