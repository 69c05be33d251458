"""The REST flow over HTTP: POST /upload/init, PUT the file to storage with the given headers,
POST /upload/confirm; errors as {"error": {"code", "message"}} with the matching HTTP status."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests import files
from tests.conftest import Harness
from tests.gql import RECORD
from tests.large import download, put


def init_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "table": "documents",
        "property_name": "resume",
        "file_name": "CV 2026.pdf",
        "content_type": "application/pdf",
        "size": 2048,
    }
    return body | overrides


async def error(h: Harness, path: str, status: int, code: str, **kwargs: Any) -> str:
    response = await h.http.post(path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    message: str = body["error"]["message"]
    return message


async def test_init_put_confirm_end_to_end(harness_factory: Any) -> None:
    # Anonymous mode has no owners: only ANONYMOUS_READS=all reads documents (`read: owner`) back.
    h: Harness = await harness_factory(ANONYMOUS_READS="all")
    data = files.pdf()
    response = await h.http.post("/upload/init", json=init_body(size=len(data)))
    assert response.status_code == 200, response.text
    init = response.json()
    assert set(init) == {"upload_url", "method", "headers", "key", "url", "expires_at"}
    assert init["method"] == "PUT"
    assert init["key"].startswith("cache/documents/resume/") and init["key"].endswith("/CV 2026.pdf")
    assert init["headers"]["Content-Type"] == "application/pdf"
    assert init["headers"]["Content-Length"] == str(len(data))
    assert init["headers"]["x-amz-acl"] == "private"
    assert init["headers"]["Content-Disposition"] == "attachment"

    assert (await put(init["upload_url"], data, init["headers"])).status_code == 200

    response = await h.http.post(
        "/upload/confirm",
        json={"table": "documents", "property_name": "resume", "key": init["key"], "properties": {"title": "CV"}},
    )
    assert response.status_code == 200, response.text
    saved = response.json()
    assert set(saved) == {"id", "url", "size", "content_type", "scan_status"}
    assert saved["scan_status"] is None  # not scanned (tests/test_scanning_flow.py has résumés that are)
    assert saved["size"] == len(data) and saved["content_type"] == "application/pdf"
    assert "X-Amz-Signature" in parse_qs(urlsplit(saved["url"]).query)  # private: a signed GET
    got = await download(saved["url"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"].startswith('attachment; filename="CV 2026.pdf"')

    record = (await h.ok(RECORD, {"id": saved["id"], "prop": "resume"}))["record"]
    assert record["properties"]["title"] == "CV"
    assert record["upload"]["size"] == len(data)

    # Confirming the same key into a new record again is refused.
    again = {"table": "documents", "property_name": "resume", "key": init["key"]}
    await error(h, "/upload/confirm", 409, "UPLOAD_ALREADY_ATTACHED", json=again)


async def test_confirm_checks_what_storage_holds(h: Harness) -> None:
    data = files.pdf()
    init = (await h.http.post("/upload/init", json=init_body(size=len(data)))).json()
    confirm = {"table": "documents", "property_name": "resume", "key": init["key"]}
    await error(h, "/upload/confirm", 422, "UPLOAD_NOT_FOUND", json=confirm)
    # moto does not enforce the signed Content-Type; confirm does.
    headers = init["headers"] | {"Content-Type": "text/html"}
    assert (await put(init["upload_url"], data, headers)).status_code == 200
    await error(h, "/upload/confirm", 415, "CONTENT_TYPE_NOT_ALLOWED", json=confirm)
    assert await h.keys() == []


async def test_errors_are_json_with_codes(h: Harness) -> None:
    await error(h, "/upload/init", 404, "TABLE_NOT_FOUND", json=init_body(table="nope"))
    await error(h, "/upload/init", 404, "PROPERTY_NOT_FOUND", json=init_body(property_name="nope"))
    await error(h, "/upload/init", 422, "PROPERTY_TYPE_MISMATCH", json=init_body(property_name="title"))
    await error(h, "/upload/init", 413, "UPLOAD_TOO_LARGE", json=init_body(size=5 * 1024 * 1024 + 1))
    await error(h, "/upload/init", 415, "CONTENT_TYPE_NOT_ALLOWED", json=init_body(content_type="image/png"))
    for bad in ({"size": "2048"}, {"size": True}, {"size": -1}, {"table": 7}, {"file_name": ""}):
        await error(h, "/upload/init", 400, "BAD_USER_INPUT", json=init_body(**bad))
    await error(h, "/upload/init", 400, "BAD_USER_INPUT", json=[init_body()])
    await error(
        h, "/upload/init", 400, "BAD_USER_INPUT", content=b"{not json", headers={"content-type": "application/json"}
    )
    await error(h, "/upload/init", 400, "BAD_USER_INPUT", data={"table": "documents"})  # a form, not JSON
    huge = init_body(file_name="x" * 70_000)
    await error(h, "/upload/init", 413, "PAYLOAD_TOO_LARGE", json=huge)

    confirm = {"table": "documents", "property_name": "resume", "key": "documents/resume/nope/x.pdf"}
    await error(h, "/upload/confirm", 422, "FOREIGN_UPLOAD", json=confirm)
    outside = confirm | {"key": "https://evil.example.com/documents/resume/" + "0" * 32 + "/x.pdf"}
    await error(h, "/upload/confirm", 422, "FOREIGN_UPLOAD", json=outside)
    await error(h, "/upload/confirm", 400, "BAD_USER_INPUT", json=confirm | {"properties": {"title": 5}})
    await error(h, "/upload/confirm", 400, "BAD_USER_INPUT", json={"table": "documents", "property_name": "resume"})
    response = await h.http.get("/upload/init")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "POST"


async def test_rest_needs_a_token_when_auth_is_on(harness_factory: Any) -> None:
    import time

    import jwt

    secret = "s" * 40
    h: Harness = await harness_factory(AUTH_JWT_SECRET=secret)
    anonymous = await h.http.post("/upload/init", json=init_body())
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHENTICATED"
    forged = await h.http.post("/upload/init", json=init_body(), headers={"Authorization": "Bearer not.a.jwt"})
    assert forged.status_code == 401
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, secret, algorithm="HS256")
    ok = await h.http.post("/upload/init", json=init_body(), headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["method"] == "PUT"
