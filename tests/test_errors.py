"""One error mapping: every code is defined once in app/errors.py and documented in docs/errors.md;
each transport answers errors in its one body shape (GraphQL: `{"errors": [...]}`, REST and every
other route: `{"error": {...}}`), with the status and headers of app/errors.py."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from typing import Any

import app
from app import errors
from app.settings import ROOT
from tests.conftest import Harness


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def test_every_code_is_defined_once_with_a_one_line_doc() -> None:
    for info in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(info.name)
    classes = _all_subclasses(errors.AppError)
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if c.__module__ != errors.__name__]
    assert not outside, f"error classes belong in app/errors.py: {outside}"
    rows = errors.describe()
    codes = [r.code for r in rows]
    assert len(codes) == len(set(codes)) == len(classes)
    for row in rows:
        assert row.doc and "\n" not in row.doc and row.doc.endswith("."), row
        assert 400 <= row.http_status <= 599, row
    # No module spells a code out instead of naming its class.
    for path in (ROOT / "app").rglob("*.py"):
        if path == ROOT / "app" / "errors.py":
            continue
        literals = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not literals & set(codes), f"{path.relative_to(ROOT)} spells out {literals & set(codes)}"


def graphql_error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"errors"}, body
    (error,) = body["errors"]
    assert set(error) == {"message", "extensions"} and error["extensions"] == {"code": code}, body
    message: str = error["message"]
    return message


def rest_error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


async def test_each_transport_answers_in_its_own_shape(harness_factory: Any) -> None:
    h: Harness = await harness_factory(MAX_BODY_BYTES=4096, GRAPHIQL="false")
    too_big = {"content": b"{" + b" " * 5000 + b"}", "headers": {"content-type": "application/json"}}
    # The body limit answers in the shape of the route it protects.
    assert "4096" in graphql_error(await h.http.post("/graphql", **too_big), 413, "PAYLOAD_TOO_LARGE")
    assert "4096" in rest_error(await h.http.post("/upload/init", **too_big), 413, "PAYLOAD_TOO_LARGE")
    assert "4096" in rest_error(await h.http.post("/upload/confirm", **too_big), 413, "PAYLOAD_TOO_LARGE")

    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        response = await h.http.request(method, "/graphql")
        graphql_error(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "GET, POST"
    response = await h.http.get("/upload/init")
    rest_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    rest_error(await h.http.post("/healthz"), 405, "METHOD_NOT_ALLOWED")
    rest_error(await h.http.post("/static/app.js"), 405, "METHOD_NOT_ALLOWED")
    rest_error(await h.http.get("/no/such/path"), 404, "NOT_FOUND")
    rest_error(await h.http.get("/static/no-such-file.js"), 404, "NOT_FOUND")
    graphql_error(await h.http.get("/graphql", headers={"accept": "text/html"}), 404, "NOT_FOUND")  # GraphiQL off


async def test_rate_limited_rest_answers_carry_retry_after(harness_factory: Any) -> None:
    h: Harness = await harness_factory(PRESIGN_RATE_PER_MINUTE=1)
    body = {"table": "documents", "property_name": "resume", "file_name": "a.pdf", "content_type": "application/pdf"}
    assert (await h.http.post("/upload/init", json=body | {"size": 2048})).status_code == 200
    response = await h.http.post("/upload/init", json=body | {"size": 2048})
    assert "per minute" in rest_error(response, 429, "TOO_MANY_REQUESTS")
    assert 1 <= int(response.headers["retry-after"]) <= 60
