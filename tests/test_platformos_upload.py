"""platformOS compatibility: uploads as platformOS's guides and modules do them, through this server's
presign / POST / save flow against a real S3 (moto over HTTP), reading back `url` and `versions`
(the versions built by the real worker over moto's SQS, as tests/test_worker.py runs it)."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import httpx
import pytest
from PIL import Image

from app.keys import parse_key
from app.models import Upload
from tests import files
from tests import platformos_docs as docs
from tests.conftest import Harness
from tests.test_worker import FAST, queue_url, running_worker  # noqa: F401 - queue_url is a fixture


@pytest.fixture
async def pos(harness_factory: Any) -> Harness:
    # The guides read private files back as their owner; anonymous mode has no owners, so only
    # ANONYMOUS_READS=all signs them (tests/test_access.py covers the rules).
    harness: Harness = await harness_factory(SCHEMA_DIR=str(docs.SCHEMA_DIR), ANONYMOUS_READS="all")
    return harness


async def post_like_the_guides(
    presigned: dict[str, Any], data: bytes, file_name: str, content_type: str | None
) -> tuple[httpx.Response, str]:
    """What the guides' forms and Uppy send: every payload field as it is (a Content-Type field
    filled in when the form has one, as the user-uploads guide's form does), the file last. Returns
    the response and the object key storage filled in."""
    fields = dict(presigned["upload_url_payload"])
    if content_type is not None and "Content-Type" in fields:
        fields["Content-Type"] = content_type
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            presigned["upload_url"], data=fields, files={"file": (file_name, data, content_type or "")}
        )
    return response, fields["key"].replace("${filename}", file_name)


def s3_location(upload_url: str, key: str) -> str:
    """S3's <PostResponse><Location>: the key form-encoded (`/` as %2F, a space as +)."""
    return upload_url.rstrip("/") + "/" + quote_plus(key, safe="")


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, (url, response.text)
    return response


async def test_user_uploads_guide_private_document(pos: Harness) -> None:
    presigned = (await pos.ok(docs.PRESIGN_DOCUMENT))["property_upload_presigned_url"]
    assert set(presigned) == {"upload_url", "upload_url_payload"}
    data = files.pdf()
    posted, key = await post_like_the_guides(presigned, data, "my résumé 2026.pdf", "application/pdf")
    assert posted.status_code == 201, posted.text
    # The guide saves the URL S3 answered with; S3 writes a space in the key as +.
    direct_url = s3_location(presigned["upload_url"], key)
    assert "+" in direct_url and "%2F" in direct_url
    record_id = (await pos.ok(docs.RECORD_CREATE_DOCUMENT, {"direct_url": direct_url}))["record_create"]["id"]

    (listed,) = (await pos.ok(docs.GET_DOCUMENTS))["records"]["results"]
    url = listed["my_upload"]["url"]
    assert "X-Amz-Signature" in url  # private: a signed GET, never a permanent URL
    assert (await download(url)).content == data
    signed = (await pos.ok(docs.SIGNED_PDF, {"id": record_id}))["records"]["results"][0]["url"]
    assert (signed["extension"], signed["file_name"], signed["versions"]) == ("pdf", "my résumé 2026.pdf", {})
    assert parse_qs(urlsplit(signed["url"]).query)["X-Amz-Expires"] == ["600"]


async def test_a_location_with_a_plus_that_means_a_space_is_found_either_way(pos: Harness) -> None:
    for form_encoded in (True, False):
        presigned = (await pos.ok(docs.PRESIGN_DOCUMENT))["property_upload_presigned_url"]
        posted, key = await post_like_the_guides(presigned, files.pdf(), "a b.pdf", "application/pdf")
        assert posted.status_code == 201
        # S3's own Location (%2F for /), or the same key written with raw slashes and + for the space.
        url = (
            s3_location(presigned["upload_url"], key)
            if form_encoded
            else presigned["upload_url"].rstrip("/") + "/" + quote(key).replace("%20", "+")
        )
        await pos.ok(docs.RECORD_CREATE_DOCUMENT, {"direct_url": url})
    names = [r["my_upload"]["url"] for r in (await pos.ok(docs.GET_DOCUMENTS))["records"]["results"]]
    assert len(names) == 2 and all("/a%20b.pdf?" in u for u in names)


async def test_uppy_guide_records_of_a_user(pos: Harness) -> None:
    """Uppy posts the payload as the presign gave it: no Content-Type field (include_content_type
    defaults to false), so storage keeps the file as binary/octet-stream."""
    presigned = (await pos.ok(docs.PRESIGN_UPPY))["property_upload_presigned_url"]
    assert "Content-Type" not in presigned["upload_url_payload"]
    data = files.png(40, 30)
    posted, key = await post_like_the_guides(presigned, data, "cat.png", None)
    assert posted.status_code == 201
    url = s3_location(presigned["upload_url"], key)
    for user in ("5", "6"):
        presigned = (await pos.ok(docs.PRESIGN_UPPY))["property_upload_presigned_url"]
        posted, key = await post_like_the_guides(presigned, data, f"{user}.png", None)
        await pos.ok(
            docs.RECORD_CREATE_UPPY, {"direct_url": s3_location(presigned["upload_url"], key), "user_id": user}
        )
    await pos.ok(docs.RECORD_CREATE_UPPY, {"direct_url": url, "user_id": "5"})
    mine = (await pos.ok(docs.GET_RECORDS_UPPY, {"user_id": "5"}))["records"]
    assert mine["total_entries"] == 2
    newest = mine["results"][0]["my_upload"]
    assert newest["url"].endswith("/cat.png") and isinstance(newest["versions"], dict)
    assert (await download(newest["url"])).content == data


async def test_common_styling_module_uploads(pos: Harness) -> None:
    presigned = (await pos.ok(docs.PRESIGN_MODULE, {"table": "uploads", "property": "upload"}))[
        "property_upload_presigned_url"
    ]
    assert presigned["upload_url_payload"]["Content-Type"] == ""  # include_content_type: the client fills it
    posted, key = await post_like_the_guides(presigned, files.jpeg(), "shot.jpg", "image/jpeg")
    assert posted.status_code == 201
    created = (await pos.ok(docs.UPLOAD_CREATE, {"url": s3_location(presigned["upload_url"], key)}))["record_create"]
    assert created["metadata"] is None
    assert (created["file"]["file_name"], created["file"]["extension"]) == ("shot.jpg", "jpg")
    (found,) = (await pos.ok(docs.UPLOADS_SEARCH))["uploads"]["results"]
    assert found["upload"]["url"] == created["file"]["url"] and found["upload"]["versions"] == {}
    response = await download(found["upload"]["url"])
    assert response.headers["content-type"] == "image/jpeg"


async def versions_ready(h: Harness, user_id: str, names: set[str], within: float = 30) -> dict[str, Any]:
    """The user's newest record once its versions are ready (polls the condition, as test_worker does)."""
    deadline = time.monotonic() + within
    while True:
        record: dict[str, Any] = (await h.ok(docs.GET_RECORDS_UPPY, {"user_id": user_id}))["records"]["results"][0]
        if set(record["my_upload"]["versions"]) == names:
            return record
        assert time.monotonic() < deadline, f"versions not ready: {record}"
        await asyncio.sleep(0.1)


async def test_uppy_guide_versions_built_by_the_worker(harness_factory: Any, queue_url: str) -> None:  # noqa: F811
    h: Harness = await harness_factory(SCHEMA_DIR=str(docs.SCHEMA_DIR), QUEUE_URL=queue_url, **FAST)
    presigned = (await h.ok(docs.PRESIGN_MODULE, {"table": "uppy", "property": "my_upload"}))[
        "property_upload_presigned_url"
    ]
    posted, key = await post_like_the_guides(presigned, files.png(160, 120), "holiday photo.png", "image/png")
    assert posted.status_code == 201
    await h.ok(docs.RECORD_CREATE_UPPY, {"direct_url": s3_location(presigned["upload_url"], key), "user_id": "9"})
    async with running_worker(h):
        record = await versions_ready(h, "9", {"small", "thumb"})
    versions = record["my_upload"]["versions"]
    small = Image.open(io.BytesIO((await download(versions["small"])).content))
    thumb = Image.open(io.BytesIO((await download(versions["thumb"])).content))
    assert (small.format, small.size) == ("WEBP", (64, 48))
    assert thumb.format == "PNG" and thumb.size[0] == 20
    assert record["my_upload"]["url"].endswith("/holiday%20photo.png")


@pytest.mark.parametrize(
    ("mutation", "code", "says"),
    [
        ('property_upload_presigned_url(property_name: "upload", user: true)', "BAD_USER_INPUT", "user.yml"),
        ('property_upload_presigned_url(property_name: "upload")', "BAD_USER_INPUT", "table is required"),
        (
            'property_upload_presigned_url(table: "uploads", model_schema_name: "uppy", property_name: "upload")',
            "BAD_USER_INPUT",
            "give one of them",
        ),
        ("image_presign_url", "BAD_USER_INPUT", "model_property"),
        ('image_presign_url(options: {user_property: {property_name: "avatar"}})', "BAD_USER_INPUT", "user_property"),
        ("attachment_presign_url(options: {})", "BAD_USER_INPUT", "model_property"),
    ],
)
async def test_presign_arguments_platformos_has_that_this_server_refuses_clearly(
    pos: Harness, mutation: str, code: str, says: str
) -> None:
    body = await pos.gql(f"mutation {{ x: {mutation} {{ upload_url }} }}")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code and says in error["message"], error


async def test_presign_names_and_defaults(pos: Harness) -> None:
    alias = """mutation { property_upload_presigned_url(model_schema_name: "uploads", property_name: "upload",
      presign_url: {acl: private, content_length: {lte: 100}, content_type: {starts_with: "image/"}}) {
      __typename upload_url_payload key max_size } }"""
    presigned = (await pos.ok(alias))["property_upload_presigned_url"]
    assert presigned["__typename"] == "PropertyUploadPresignedUrl"
    assert presigned["key"].startswith("cache/uploads/upload/")
    assert presigned["upload_url_payload"]["acl"] == "private" and presigned["max_size"] == 100 * 1024
    assert "Content-Type" not in presigned["upload_url_payload"]  # include_content_type defaults to false

    attachment = """mutation($d: AttachmentContentDispositionEnum) { attachment_presign_url(options: {
      model_property: {model_schema_name: "documents", property_name: "resume"}, content_disposition: $d,
      content_length: {lte: 10}, content_type: "application/pdf"}) { __typename key upload_url_payload } }"""

    async def served_disposition(presigned: dict[str, Any]) -> str:
        # The quarantined object is always an attachment; the disposition asked for is the one the
        # file gets when it is promoted, kept with the issued upload.
        assert presigned["upload_url_payload"]["Content-Disposition"].startswith("attachment")
        issued = await Upload.get(token=parse_key(presigned["key"]).token)
        return issued.content_disposition

    # inline unless asked (a type that could be active content is always served as an attachment)
    default = (await pos.ok(attachment))["attachment_presign_url"]
    assert default["__typename"] == "AttachmentPresignedUploadUrl"
    assert await served_disposition(default) == "inline"
    for value in ("download", "attachment"):
        chosen = (await pos.ok(attachment, {"d": value}))["attachment_presign_url"]
        assert await served_disposition(chosen) == "attachment"
    image = """mutation { image_presign_url(options: {model_property: {model_schema_name: "uppy",
      property_name: "my_upload"}, content_length: {gte: 1, lte: 20}}) { __typename max_size } }"""
    assert (await pos.ok(image))["image_presign_url"] == {"__typename": "ImagePresignedUploadUrl", "max_size": 20480}
