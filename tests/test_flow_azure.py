"""The whole flow on Azure Blob Storage (Azurite), over HTTP as a browser does it: every presign answers
a PUT with a SAS and the headers to send; the client PUTs to a quarantine blob; the save verifies what
Azure holds and promotes it (public files to the public container, private ones within the private
container); reads give the public URL or a SAS GET; versions are built by the real worker; a multipart
upload of three blocks; the REST flow; a declared SHA-256 checked by the server; the clean-ups."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from PIL import Image

from app.sweep import SweepConfig, Sweeper
from app.tables import MULTIPART_MAX
from tests import files
from tests.conftest import Harness
from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN, PROPERTY_PRESIGN, RECORD, RECORD_CREATE, RECORD_UPDATE
from tests.large import MIB, MP_COMPLETE, MP_CREATE, MP_LIST, MP_SIGN, PUT_PRESIGN, SAVE, blob, record_vars, schema_dir
from tests.test_worker import FAST, queue_url, running_worker, settled

pytestmark = pytest.mark.backends("azurite")


@pytest.fixture
async def h(harness_factory: Any) -> Harness:
    # Private documents are read back anonymously here (access rules are tests/test_access.py's).
    harness: Harness = await harness_factory(ANONYMOUS_READS="all")
    return harness


__all__ = ["queue_url"]  # the fixture, imported for pytest

LATER = timedelta(days=3)  # past every expiry (multipart: one day) plus the sweep's grace


async def put(url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.put(url, content=data, headers=headers)


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.get(url)


def bases(h: Harness) -> tuple[str, str]:
    """The private and the public container's URL."""
    endpoint = str(h.settings.azure_blob_endpoint)
    return f"{endpoint}/{h.settings.azure_container}", f"{endpoint}/{h.settings.azure_public_container}"


async def presign_photo(h: Harness, name: str | None = "cat.png", ctype: str | None = "image/png") -> dict[str, Any]:
    variables = {"table": "photos", "prop": "image", "type": ctype, "name": name}
    presigned: dict[str, Any] = (await h.ok(IMAGE_PRESIGN, variables))["image_presign_url"]
    return presigned


async def save_photo(h: Harness, data: bytes, name: str = "cat.png") -> dict[str, Any]:
    presigned = await presign_photo(h, name)
    assert (await put(presigned["upload_url"], data, presigned["headers"])).status_code == 201
    created: dict[str, Any] = (await h.ok(RECORD_CREATE, record_vars("photos", "image", presigned["url"])))[
        "record_create"
    ]
    return created


@pytest.fixture
async def big(harness_factory: Any, tmp_path: Path) -> Harness:
    harness: Harness = await harness_factory(SCHEMA_DIR=schema_dir(tmp_path), ANONYMOUS_READS="all")
    return harness


async def test_image_put_save_and_public_read(h: Harness) -> None:
    private, public = bases(h)
    data = files.png(320, 200)
    presigned = await presign_photo(h, "holiday photo é.png")
    # A PUT of one quarantine blob, with a SAS for create and write until expiry; nothing else.
    assert (presigned["method"], presigned["upload_url_payload"]) == ("PUT", {})
    key = presigned["key"]
    assert key.startswith("cache/photos/image/") and key.endswith("/holiday photo é.png")
    assert presigned["headers"] == {
        "x-ms-blob-type": "BlockBlob",
        "Content-Type": "image/png",
        "x-ms-blob-content-disposition": "attachment",
    }
    url = urlsplit(presigned["upload_url"])
    sas = parse_qs(url.query)
    assert (sas["sp"], sas["sr"]) == (["cw"], ["b"]) and "sig" in sas and "se" in sas
    assert unquote(url.path) == unquote(urlsplit(private).path) + "/" + key
    assert presigned["url"] == presigned["upload_url"].split("?")[0]
    assert (presigned["max_size"], presigned["content_types"]) == (10240 * 1024, ["image/png"])
    assert h.settings.azure_storage_key.value not in str(presigned)

    assert (await put(presigned["upload_url"], data, presigned["headers"])).status_code == 201
    # The quarantined blob is nobody's to read.
    assert (await get(presigned["url"])).status_code in (403, 404)
    created = (await h.ok(RECORD_CREATE, record_vars("photos", "image", presigned["url"], caption="Hi")))[
        "record_create"
    ]
    upload = created["upload"]
    assert (upload["file_name"], upload["size"], upload["content_type"]) == (
        "holiday photo é.png",
        len(data),
        "image/png",
    )
    assert {v["status"] for v in upload["version_details"]} == {"pending"}
    # Promoted to the public container, with the server's headers; nothing is left in quarantine.
    permanent = key.removeprefix("cache/")
    assert upload["url"].startswith(public + "/") and unquote(upload["url"]) == f"{public}/{permanent}"
    got = await get(upload["url"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["cache-control"] == "max-age=315576000, public"
    assert got.headers["content-disposition"].startswith("inline; filename=")
    assert await h.keys() == [permanent]
    # Saving the same value again is idempotent; the permanent URL is accepted as the value too.
    again = await h.ok(
        RECORD_UPDATE, {"id": created["id"], "prop": "image", "props": [{"name": "image", "value": upload["url"]}]}
    )
    assert again["record_update"]["upload"]["url"] == upload["url"]


async def test_a_form_presign_without_name_or_type_is_a_put_of_one_blob_named_file(h: Harness) -> None:
    presigned = (await h.ok(PROPERTY_PRESIGN, {"table": "photos", "prop": "image", "include": True}))[
        "property_upload_presigned_url"
    ]
    assert presigned["method"] == "PUT" and presigned["key"].endswith("/file")
    # No type was named: the client sends its file's (a browser does), or none.
    assert presigned["headers"] == {"x-ms-blob-type": "BlockBlob", "x-ms-blob-content-disposition": "attachment"}
    assert "image/png" in presigned["content_types"] and "text/html" not in presigned["content_types"]
    data = files.png()
    headers = {**presigned["headers"], "Content-Type": "image/png"}
    assert (await put(presigned["upload_url"], data, headers)).status_code == 201
    upload = (await h.ok(RECORD_CREATE, record_vars("photos", "image", presigned["url"])))["record_create"]["upload"]
    assert (upload["file_name"], upload["content_type"], upload["size"]) == ("file", "image/png", len(data))

    # Sent without a type, Azure stores application/octet-stream: the save takes the type from the bytes.
    untyped = (await h.ok(PROPERTY_PRESIGN, {"table": "photos", "prop": "image"}))["property_upload_presigned_url"]
    assert (await put(untyped["upload_url"], data, untyped["headers"])).status_code == 201
    upload = (await h.ok(RECORD_CREATE, record_vars("photos", "image", untyped["url"])))["record_create"]["upload"]
    assert upload["content_type"] == "image/png"


async def test_what_a_sas_lets_through_the_save_refuses_and_deletes(h: Harness) -> None:
    """A SAS binds neither size nor type: the save checks what Azure holds."""
    presigned = await presign_photo(h, "a.png")
    html = {**presigned["headers"], "Content-Type": "text/html"}
    assert (await put(presigned["upload_url"], files.HTML, html)).status_code == 201
    assert await h.error_code(SAVE, record_vars("photos", "image", presigned["url"])) == "CONTENT_TYPE_NOT_ALLOWED"
    fake = await presign_photo(h, "b.png")
    assert (await put(fake["upload_url"], files.HTML, fake["headers"])).status_code == 201
    assert await h.error_code(SAVE, record_vars("photos", "image", fake["url"])) == "CONTENT_MISMATCH"
    small = (
        await h.ok(
            IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "name": "c.png", "len": {"lte": 1}}
        )
    )["image_presign_url"]
    assert (await put(small["upload_url"], files.png(200, 200), small["headers"])).status_code == 201
    assert await h.error_code(SAVE, record_vars("photos", "image", small["url"])) == "UPLOAD_TOO_LARGE"
    assert await h.keys() == []


async def test_private_document_gets_a_signed_get_with_its_disposition(h: Harness) -> None:
    private, _ = bases(h)
    data = files.pdf()
    variables = {
        "table": "documents",
        "prop": "resume",
        "type": "application/pdf",
        "name": "Résumé 2026.pdf",
        "disp": "download",
    }
    presigned = (await h.ok(ATTACHMENT_PRESIGN, variables))["attachment_presign_url"]
    assert (await put(presigned["upload_url"], data, presigned["headers"])).status_code == 201
    created = (await h.ok(RECORD_CREATE, record_vars("documents", "resume", presigned["url"], title="CV")))[
        "record_create"
    ]
    signed = created["upload"]["url"]
    assert signed.startswith(private + "/documents/resume/")
    query = parse_qs(urlsplit(signed).query)
    assert (query["sp"], query["sr"]) == (["r"], ["b"])
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf" in query["rscd"][0]
    expires = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    assert timedelta(seconds=800) < expires - datetime.now(UTC) <= timedelta(seconds=900)
    got = await get(signed)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"].startswith("attachment;")
    # No permanent URL of a private file serves it, in either container.
    for base in bases(h):
        assert (await get(f"{base}/{urlsplit(signed).path.split('/', 3)[3]}")).status_code in (403, 404)
    short = await h.ok(
        'query($id: ID!) { record(id: $id) { property_upload(name: "resume", expires_in: 60) { url } } }',
        {"id": created["id"]},
    )
    se = parse_qs(urlsplit(short["record"]["property_upload"]["url"]).query)["se"][0]
    assert datetime.fromisoformat(se.replace("Z", "+00:00")) - datetime.now(UTC) <= timedelta(seconds=60)


async def test_put_with_a_checksum_is_checked_by_the_server(h: Harness) -> None:
    """Azure keeps no SHA-256 and a SAS cannot bind one: the save hashes the stored bytes."""
    data = files.png(64, 48)
    forged = data[:-1] + bytes([data[-1] ^ 1])  # same length, other bytes

    async def presign(name: str) -> dict[str, Any]:
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        variables = {
            "table": "photos",
            "prop": "image",
            "put": {"file_name": name, "content_type": "image/png", "size": len(data), "checksum_sha256": digest},
        }
        presigned: dict[str, Any] = (await h.ok(PUT_PRESIGN, variables))["property_upload_presigned_url"]
        return presigned

    bad = await presign("bad.png")
    assert bad["method"] == "PUT" and "x-amz-checksum-sha256" not in bad["headers"]
    assert (await put(bad["upload_url"], forged, bad["headers"])).status_code == 201
    assert await h.error_code(SAVE, record_vars("photos", "image", bad["url"])) == "CONTENT_MISMATCH"
    assert await h.keys() == []  # the forged file is deleted
    good = await presign("good.png")
    assert (await put(good["upload_url"], data, good["headers"])).status_code == 201
    saved = (await h.ok(SAVE, record_vars("photos", "image", good["url"])))["record_create"]
    assert saved["upload"]["size"] == len(data)


async def test_rest_init_put_and_confirm(h: Harness) -> None:
    data = files.pdf()
    init = await h.http.post(
        "/upload/init",
        json={
            "table": "documents",
            "property_name": "resume",
            "file_name": "cv.pdf",
            "content_type": "application/pdf",
            "size": len(data),
        },
    )
    assert init.status_code == 200, init.text
    body = init.json()
    assert body["method"] == "PUT" and body["headers"]["x-ms-blob-type"] == "BlockBlob"
    assert body["headers"]["Content-Type"] == "application/pdf"
    assert (await put(body["upload_url"], data, body["headers"])).status_code == 201
    confirmed = await h.http.post(
        "/upload/confirm", json={"table": "documents", "property_name": "resume", "key": body["key"]}
    )
    assert confirmed.status_code == 200, confirmed.text
    result = confirmed.json()
    assert (result["size"], result["content_type"]) == (len(data), "application/pdf")
    assert (await get(result["url"])).content == data


async def test_a_multipart_upload_of_three_blocks(big: Harness) -> None:
    h = big
    data = blob(11 * MIB, seed=3)
    variables = {"table": "videos", "prop": "clip", "name": "film.mp4", "type": "video/mp4", "size": len(data)}
    started = (await h.ok(MP_CREATE, variables))["multipart_upload_create"]
    assert (started["part_size"], started["part_count"]) == (5 * MIB, 3)
    ids = {"id": started["upload_id"], "key": started["key"]}
    signed = (await h.ok(MP_SIGN, ids | {"parts": [1, 2, 3]}))["multipart_upload_sign_parts"]
    for part in signed:
        assert "comp=block" in part["url"] and "blockid=" in part["url"]
        n = part["part_number"]
        chunk = data[(n - 1) * 5 * MIB : n * 5 * MIB]
        answer = await put(part["url"], chunk, {})
        assert answer.status_code == 201 and "ETag" not in answer.headers  # Put Block answers no ETag
    listed = (await h.ok(MP_LIST, ids))["multipart_upload_list_parts"]
    assert [(p["part_number"], p["size"]) for p in listed] == [(1, 5 * MIB), (2, 5 * MIB), (3, MIB)]
    # A browser that could read no ETag completes with empty ones (or with list_parts' etags).
    parts = [{"part_number": n, "etag": ""} for n in (1, 2, 3)]
    done = (await h.ok(MP_COMPLETE, ids | {"parts": parts}))["multipart_upload_complete"]
    assert (done["key"], done["size"]) == (started["key"], len(data))
    # Completing again (an answer that got lost) answers the same.
    assert (await h.ok(MP_COMPLETE, ids | {"parts": parts}))["multipart_upload_complete"] == done
    saved = (await h.ok(SAVE, record_vars("videos", "clip", done["url"], title="film")))["record_create"]
    assert (saved["upload"]["size"], saved["upload"]["content_type"]) == (len(data), "video/mp4")
    got = await get(saved["upload"]["url"])
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    # The marker and the quarantined blob are gone; only the promoted file stays.
    assert await h.keys() == [started["key"].removeprefix("cache/")]


async def test_the_part_plan_keeps_to_azures_50000_blocks(h: Harness) -> None:
    multipart = h.app.state.services.uploads.multipart
    assert multipart.plan(MULTIPART_MAX) == (105 * MIB, 49_933)  # S3: 525 MiB parts, 10,000 of them
    assert multipart.plan(11 * MIB) == (5 * MIB, 3)


async def test_versions_are_built_by_the_worker_and_stored_on_azure(harness_factory: Any, queue_url: str) -> None:
    h = await harness_factory(QUEUE_URL=queue_url, ANONYMOUS_READS="all", **FAST)
    _, public = bases(h)
    created = await save_photo(h, files.png(640, 480), "big.png")
    async with running_worker(h):
        upload = await settled(h, created["id"])
    versions = {v["name"]: v for v in upload["version_details"]}
    assert {v["status"] for v in versions.values()} == {"ready"}
    for name, size in (("thumb", (200, 200)), ("medium", (800, 600)), ("large", (640, 480))):
        assert versions[name]["url"].startswith(public + "/photos/image/")
        got = await get(versions[name]["url"])
        assert got.status_code == 200 and got.headers["cache-control"] == "max-age=315576000, public"
        assert Image.open(io.BytesIO(got.content)).size == size
    # Replacing the file removes the old one and its versions, from the public container.
    replaced = await save_photo(h, files.png(), "next.png")
    update = {"id": created["id"], "prop": "image", "props": [{"name": "image", "value": replaced["upload"]["url"]}]}
    assert await h.error_code(RECORD_UPDATE, update) == "UPLOAD_ALREADY_ATTACHED"
    fresh = await presign_photo(h, "next.png")
    assert (await put(fresh["upload_url"], files.png(), fresh["headers"])).status_code == 201
    update["props"] = [{"name": "image", "value": fresh["url"]}]
    await h.ok(RECORD_UPDATE, update)
    keys = await h.keys()
    assert not [k for k in keys if created["upload"]["url"].split("/photos/image/")[1].split("/")[0] in k]
    record = (await h.ok(RECORD, {"id": created["id"], "prop": "image"}))["record"]
    assert record["upload"]["file_name"] == "next.png"


async def test_the_sweep_removes_orphans_stray_blocks_and_stale_multipart_uploads(big: Harness) -> None:
    h = big
    services = h.app.state.services
    sweeper = Sweeper(services.storage, services.uploads, SweepConfig(grace=timedelta(hours=1)))
    kept = await save_photo(h, files.png(), "kept.png")
    # A PUT never saved, plus a block a hostile client staged beside it under the same SAS.
    orphan = await presign_photo(h, "orphan.png")
    assert (await put(orphan["upload_url"], files.png(), orphan["headers"])).status_code == 201
    stray = await presign_photo(h, "stray.png")
    block = base64.b64encode(b"000001").decode()
    assert (await put(f"{stray['upload_url']}&comp=block&blockid={block}", b"x" * 1000, {})).status_code == 201
    # A multipart upload with one block, never completed.
    variables = {"table": "videos", "prop": "clip", "name": "a.mp4", "type": "video/mp4", "size": 6 * MIB}
    started = (await h.ok(MP_CREATE, variables))["multipart_upload_create"]
    ids = {"id": started["upload_id"], "key": started["key"]}
    url = (await h.ok(MP_SIGN, ids | {"parts": [1]}))["multipart_upload_sign_parts"][0]["url"]
    assert (await put(url, blob(5 * MIB), {})).status_code == 201
    assert len(await h.keys()) == 5  # kept, orphan, the stray blocks' blob, the marker, the multipart blocks

    assert (await sweeper.run_once()).expired == 0
    report = await sweeper.run_once(datetime.now(UTC) + LATER)
    assert (report.expired, report.aborted) == (3, 1)
    assert await h.keys() == [kept["upload"]["url"].split(bases(h)[1] + "/", 1)[1].replace("%20", " ")]
    assert (await get(kept["upload"]["url"])).status_code == 200
    assert await h.error_code(MP_SIGN, ids | {"parts": [2]}) == "UPLOAD_EXPIRED"


async def test_readyz_checks_both_containers(h: Harness) -> None:
    assert (await h.http.get("/readyz")).json()["checks"]["storage"] == "ok"
    async with h.azure.get_container_client(str(h.settings.azure_public_container)) as public:  # type: ignore[union-attr]
        await public.delete_container()
    answer = await h.http.get("/readyz")
    assert answer.status_code == 503
    assert "does not exist" in answer.json()["checks"]["storage"]
    await h.app.state.services.storage.ensure_bucket(())  # (for the clean-up)
