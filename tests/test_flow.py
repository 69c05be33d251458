"""The whole flow over HTTP, on moto and on SeaweedFS: presign through GraphQL, POST the form to storage
as a browser does (to a quarantine key), save the URL with record_create (verified, then promoted to
its permanent key), query it back, download through the resolved URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from app.models import Record
from tests import files
from tests.conftest import Harness, post_form, uploaded_key
from tests.gql import (
    ATTACHMENT_PRESIGN,
    IMAGE_PRESIGN,
    PROPERTY_PRESIGN,
    RECORD,
    RECORD_CREATE,
    RECORD_DELETE,
    RECORD_UPDATE,
    RECORDS,
    TABLES,
)

pytestmark = pytest.mark.backends("moto", "seaweedfs")


async def upload_photo(h: Harness, data: bytes | None = None, name: str = "cat.png", ctype: str = "image/png") -> str:
    data = data if data is not None else files.png()
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": ctype}))["image_presign_url"]
    response = await post_form(presigned, data, name, ctype)
    assert response.status_code == 201, response.text
    return f"{presigned['upload_url'].rstrip('/')}/{quote(uploaded_key(presigned, name))}"


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def test_image_round_trip(h: Harness) -> None:
    data = files.png(320, 200)
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert presigned["method"] == "POST"
    assert presigned["headers"] == {}
    # Clients only ever write to quarantine, as private objects; the save promotes the file.
    assert presigned["key"].startswith("cache/photos/image/") and presigned["key"].endswith("/${filename}")
    assert presigned["url"] is None  # the key is not exact until storage fills in the file name
    assert presigned["max_size"] == 10240 * 1024
    assert presigned["content_types"] == ["image/png"]
    payload = presigned["upload_url_payload"]
    assert payload["success_action_status"] == "201"
    assert payload["acl"] == "private"
    assert "Cache-Control" not in payload
    assert payload["Content-Type"] == "image/png"
    assert payload["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert "testing" not in str(payload.get("x-amz-signature")) and "AWS_SECRET" not in str(payload)

    response = await post_form(presigned, data, "holiday photo é.png", "image/png")
    assert response.status_code == 201
    url = f"{presigned['upload_url']}/{quote(uploaded_key(presigned, 'holiday photo é.png'))}"

    created = (
        await h.ok(
            RECORD_CREATE,
            {
                "table": "photos",
                "prop": "image",
                "props": [{"name": "caption", "value": "Hi"}, {"name": "image", "value": url}],
            },
        )
    )["record_create"]
    assert created["properties"]["caption"] == "Hi"
    upload = created["upload"]
    assert upload["file_name"] == "holiday photo é.png"
    assert upload["extension"] == "png"
    assert upload["size"] == len(data)
    assert upload["content_type"] == "image/png"
    assert [v["name"] for v in upload["version_details"]] == ["thumb", "medium", "large"]
    assert {v["status"] for v in upload["version_details"]} == {"pending"}
    assert upload["versions"] == {}

    fetched = (await h.ok(RECORD, {"id": created["id"], "prop": "image"}))["record"]
    # record_create answers with what it wrote, without reading it back: the same as a later read.
    assert fetched == created
    assert fetched["upload"]["url"] == upload["url"]
    assert created["properties"]["image"] == upload["url"]
    # Served from the permanent key, with the headers the server set; nothing is left in quarantine.
    permanent = uploaded_key(presigned, "holiday photo é.png").removeprefix("cache/")
    assert upload["url"] == f"{presigned['upload_url']}/{quote(permanent)}"
    got = await download(upload["url"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["cache-control"] == "max-age=315576000, public"
    assert got.headers["content-disposition"].startswith("inline; filename=")
    assert await h.keys() == [permanent]


async def test_private_document_gets_signed_url_with_disposition(harness_factory: Any) -> None:
    # Anonymous mode has no owners: only ANONYMOUS_READS=all reads documents (`read: owner`) back.
    h: Harness = await harness_factory(ANONYMOUS_READS="all")
    data = files.pdf()
    presigned = (
        await h.ok(
            ATTACHMENT_PRESIGN,
            # platformOS's content_disposition defaults to inline; download asks for an attachment.
            {
                "table": "documents",
                "prop": "resume",
                "type": "application/pdf",
                "name": "../../etc/Résumé 2026.pdf",
                "disp": "download",
            },
        )
    )["attachment_presign_url"]
    key = presigned["key"]
    assert key.startswith("cache/documents/resume/") and key.endswith("/Résumé 2026.pdf") and ".." not in key
    assert presigned["url"] is not None
    assert presigned["upload_url_payload"]["acl"] == "private"
    assert presigned["upload_url_payload"]["Content-Disposition"] == "attachment"
    assert (await post_form(presigned, data, "whatever.pdf", "application/pdf")).status_code == 201

    # The public-looking URL of a quarantined object does not serve it.
    assert (await download(presigned["url"])).status_code == 403

    created = (
        await h.ok(
            RECORD_CREATE,
            {
                "table": "documents",
                "prop": "resume",
                "props": [{"name": "title", "value": "CV"}, {"name": "resume", "value": presigned["url"]}],
            },
        )
    )["record_create"]
    signed = created["upload"]["url"]
    query = parse_qs(urlsplit(signed).query)
    assert query["X-Amz-Expires"] == ["900"]
    assert "X-Amz-Signature" in query
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf" in query["response-content-disposition"][0]
    got = await download(signed)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "X-Amz-Signature" in created["properties"]["resume"]
    # The promoted private file has no public URL either.
    assert (await download(signed.split("?", 1)[0])).status_code == 403

    short = await h.ok(
        'query($id: ID!) { record(id: $id) { property_upload(name: "resume", expires_in: 60) { url } } }',
        {"id": created["id"]},
    )
    assert parse_qs(urlsplit(short["record"]["property_upload"]["url"]).query)["X-Amz-Expires"] == ["60"]


async def test_property_upload_presigned_url_with_include_content_type(h: Harness) -> None:
    presigned = (await h.ok(PROPERTY_PRESIGN, {"table": "photos", "prop": "image", "include": True}))[
        "property_upload_presigned_url"
    ]
    assert presigned["upload_url_payload"]["Content-Type"] == ""
    data = files.jpeg()
    assert (await post_form(presigned, data, "a.jpg", "image/jpeg")).status_code == 201
    created = (
        await h.ok(
            RECORD_CREATE,
            {
                "table": "photos",
                "prop": "image",
                "props": [{"name": "image", "value": uploaded_key(presigned, "a.jpg")}],
            },
        )
    )["record_create"]
    assert created["upload"]["content_type"] == "image/jpeg"


async def test_form_posted_without_a_type_gets_its_type_from_the_bytes(h: Harness) -> None:
    """platformOS's default: include_content_type false, and the form carries no Content-Type field, so
    storage records a generic type. The save takes the real type from the bytes, and the promotion
    stores the file with it (the server sets the type and disposition; no bytes pass through the API)."""
    presigned = (await h.ok(PROPERTY_PRESIGN, {"table": "photos", "prop": "image"}))["property_upload_presigned_url"]
    assert "Content-Type" not in presigned["upload_url_payload"]
    data = files.jpeg()
    async with httpx.AsyncClient() as client:
        posted = await client.post(
            presigned["upload_url"],
            data=presigned["upload_url_payload"],
            files={"file": ("photo", data, "application/octet-stream")},
        )
    assert posted.status_code == 201, posted.text
    key = uploaded_key(presigned, "photo")
    created = (
        await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": key}]})
    )["record_create"]
    assert created["upload"]["content_type"] == "image/jpeg"
    got = await download(created["upload"]["url"])
    assert got.content == data and got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"].startswith("inline")

    # Bytes that are no image are refused, whatever the name says.
    presigned = (await h.ok(PROPERTY_PRESIGN, {"table": "photos", "prop": "image"}))["property_upload_presigned_url"]
    async with httpx.AsyncClient() as client:
        await client.post(
            presigned["upload_url"],
            data=presigned["upload_url_payload"],
            files={"file": ("cat.png", files.pdf(), "application/octet-stream")},
        )
    body = await h.gql(
        RECORD_CREATE,
        {"table": "photos", "prop": "image", "props": [{"name": "image", "value": uploaded_key(presigned, "cat.png")}]},
    )
    # S3 and moto record a generic type: the bytes show a PDF, not allowed here. SeaweedFS records the
    # type the file name suggests (image/png): the bytes are not that.
    assert body["errors"][0]["extensions"]["code"] in ("CONTENT_TYPE_NOT_ALLOWED", "CONTENT_MISMATCH")
    assert await Record.all().count() == 1


async def test_client_options_only_narrow(h: Harness) -> None:
    narrowed = (
        await h.ok(
            IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "len": {"gte": 2, "lte": 100}}
        )
    )["image_presign_url"]
    assert narrowed["max_size"] == 100 * 1024
    widened = (
        await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "len": {"lte": 999999}})
    )["image_presign_url"]
    assert widened["max_size"] == 10240 * 1024
    assert await h.error_code(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "application/pdf"}) == (
        "CONTENT_TYPE_NOT_ALLOWED"
    )
    assert (
        await h.error_code(PROPERTY_PRESIGN, {"table": "documents", "prop": "resume", "presign": {"acl": "public"}})
        == "FORBIDDEN"
    )
    assert (
        await h.error_code(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "len": {"gte": 200, "lte": 100}})
        == "BAD_USER_INPUT"
    )


async def test_presign_type_mismatches(h: Harness) -> None:
    assert await h.error_code(IMAGE_PRESIGN, {"table": "documents", "prop": "resume"}) == "PROPERTY_TYPE_MISMATCH"
    assert await h.error_code(ATTACHMENT_PRESIGN, {"table": "photos", "prop": "image"}) == "PROPERTY_TYPE_MISMATCH"
    assert await h.error_code(ATTACHMENT_PRESIGN, {"table": "photos", "prop": "caption"}) == "PROPERTY_TYPE_MISMATCH"
    assert await h.error_code(IMAGE_PRESIGN, {"table": "nope", "prop": "image"}) == "TABLE_NOT_FOUND"
    assert await h.error_code(IMAGE_PRESIGN, {"table": "photos", "prop": "nope"}) == "PROPERTY_NOT_FOUND"


async def test_replacing_and_deleting_remove_objects(h: Harness) -> None:
    first = await upload_photo(h, name="one.png")
    created = (
        await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": first}]})
    )["record_create"]
    first_key = created["upload"]["url"].split(f"/{h.bucket}/", 1)[1]
    # Saving the same URL again into the same record property changes nothing.
    again = (
        await h.ok(RECORD_UPDATE, {"id": created["id"], "prop": "image", "props": [{"name": "image", "value": first}]})
    )["record_update"]
    assert again["upload"]["url"] == created["upload"]["url"]
    assert len([k for k in await h.keys() if "/versions/" not in k]) == 1
    assert not [k for k in await h.keys() if k.startswith("cache/")]

    second = await upload_photo(h, name="two.png")
    updated = (
        await h.ok(RECORD_UPDATE, {"id": created["id"], "prop": "image", "props": [{"name": "image", "value": second}]})
    )["record_update"]
    assert updated["upload"]["file_name"] == "two.png"
    keys = await h.keys()
    assert not any(k.startswith(first_key.rsplit("/", 1)[0]) for k in keys), keys

    cleared = (
        await h.ok(RECORD_UPDATE, {"id": created["id"], "prop": "image", "props": [{"name": "image", "value": None}]})
    )["record_update"]
    assert cleared["upload"] is None
    assert await h.keys() == []

    third = await upload_photo(h, name="three.png")
    await h.ok(RECORD_UPDATE, {"id": created["id"], "prop": "image", "props": [{"name": "image", "value": third}]})
    assert len(await h.keys()) == 1
    deleted = (await h.ok(RECORD_DELETE, {"id": created["id"]}))["record_delete"]
    assert deleted["id"] == created["id"] and deleted["deleted_at"] is not None
    assert (await h.ok(RECORD, {"id": created["id"], "prop": "image"}))["record"] is None
    # A deleted record keeps its file until it is purged (platformOS: 30 days, restorable until then).
    assert len(await h.keys()) == 1
    records = h.app.state.services.records
    assert await records.purge_deleted(now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert await h.keys() == []


async def test_plain_properties_are_typed_and_validated(harness_factory: object, tmp_path: object) -> None:
    import pathlib

    folder = pathlib.Path(str(tmp_path)) / "schema"
    folder.mkdir()
    (folder / "things.yml").write_text(
        "name: things\nproperties:\n"
        "  - {name: n, type: integer}\n  - {name: f, type: float}\n  - {name: b, type: boolean}\n"
        "  - {name: d, type: datetime}\n  - {name: a, type: array}\n  - {name: s, type: string}\n"
    )
    h: Harness = await harness_factory(SCHEMA_DIR=str(folder))  # type: ignore[operator]
    query = """mutation($props: [PropertyInputType]) {
      record_create(record: {table: "things", properties: $props}) {
        id properties n: property(name: "n") b: property(name: "b") a: property(name: "a") } }"""
    props = [
        {"name": "n", "value": "42"},
        {"name": "f", "value": "1.5"},
        {"name": "b", "value": "true"},
        {"name": "d", "value": "2026-01-31T12:00:00Z"},
        {"name": "a", "value": '[1, "x"]'},
        {"name": "s", "value": "é"},
    ]
    created = (await h.ok(query, {"props": props}))["record_create"]
    assert created["properties"] == {
        "n": 42,
        "f": 1.5,
        "b": True,
        "d": "2026-01-31T12:00:00+00:00",
        "a": [1, "x"],
        "s": "é",
    }
    assert (created["n"], created["b"], created["a"]) == ("42", "true", '[1, "x"]')
    for bad in (
        {"name": "n", "value": "4.2"},
        {"name": "f", "value": "nan"},
        {"name": "b", "value": "yes"},
        {"name": "d", "value": "yesterday"},
        {"name": "a", "value": "{}"},
    ):
        assert await h.error_code(query, {"props": [bad]}) == "BAD_USER_INPUT", bad
    assert await h.error_code(query, {"props": [{"name": "zzz", "value": "1"}]}) == "PROPERTY_NOT_FOUND"
    assert await h.error_code(query, {"props": [{"name": "n", "value": "1"}, {"name": "n", "value": "2"}]}) == (
        "BAD_USER_INPUT"
    )


async def test_records_paging_and_filter(h: Harness) -> None:
    ids = []
    for i in range(5):
        url = await upload_photo(h, name=f"p{i}.png")
        created = await h.ok(
            RECORD_CREATE,
            {
                "table": "photos",
                "prop": "image",
                "props": [{"name": "caption", "value": str(i)}, {"name": "image", "value": url}],
            },
        )
        ids.append(created["record_create"]["id"])
    page1 = (await h.ok(RECORDS, {"table": "photos", "page": 1, "per_page": 2, "prop": "image"}))["records"]
    assert page1["total_entries"] == 5 and page1["total_pages"] == 3 and page1["has_next_page"] is True
    assert [r["properties"]["caption"] for r in page1["results"]] == ["4", "3"]
    assert all(r["upload"]["url"] for r in page1["results"])
    page3 = (await h.ok(RECORDS, {"table": "photos", "page": 3, "per_page": 2, "prop": "image"}))["records"]
    assert [r["properties"]["caption"] for r in page3["results"]] == ["0"] and page3["has_next_page"] is False
    some = (await h.ok(RECORDS, {"table": "photos", "ids": ids[:2], "prop": "image"}))["records"]
    assert sorted(r["id"] for r in some["results"]) == sorted(ids[:2])
    for variables in ({"page": 0}, {"per_page": 0}, {"per_page": 1001}, {"ids": ["x"]}):
        assert await h.error_code(RECORDS, {"table": "photos", "prop": "image", **variables}) == "BAD_USER_INPUT"
    assert await h.error_code(RECORDS, {"table": "nope", "prop": "image"}) == "TABLE_NOT_FOUND"


async def test_tables_query_exposes_effective_options(h: Harness) -> None:
    tables = {t["name"]: t for t in (await h.ok(TABLES))["tables"]}
    assert set(tables) >= {"documents", "photos"}
    resume = next(p for p in tables["documents"]["properties"] if p["name"] == "resume")
    assert resume["type"] == "attachment"
    assert resume["options"]["acl"] == "private"
    assert resume["options"]["content_length"] == {"gte": 1, "lte": 5120}
    assert "application/pdf" in resume["options"]["content_types"]
    image = next(p for p in tables["photos"]["properties"] if p["name"] == "image")
    assert image["options"]["acl"] == "public" and image["options"]["content_disposition"] == "inline"
    assert [v["name"] for v in image["options"]["versions"]] == ["thumb", "medium", "large"]
    assert image["options"]["versions"][0]["output"]["quality"] == 80


async def test_health_endpoints(h: Harness) -> None:
    assert (await h.http.get("/healthz")).json() == {"status": "ok"}
    ready = await h.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "storage": "ok"}
