"""value_upload: files the server creates from `content` or `remote_url`, through GraphQL against real
storage (moto and SeaweedFS over HTTP), saved, verified and promoted like any upload; image versions
built by the real worker; remote_url fetched from an origin of our own (tests/remote_origin.py).

After every refusal nothing is left: no record, no object in the bucket, no upload still issued."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from app.models import Record, Upload
from tests import files
from tests import platformos_docs as docs
from tests.conftest import Harness
from tests.remote_origin import Origin, self_signed, serving
from tests.test_worker import FAST, queue_url, running_worker, settled  # noqa: F401 - queue_url is a fixture

CREATE = """
mutation($table: String!, $props: [PropertyInputType], $prop: String!) {
  record_create(record: {table: $table, properties: $props}) {
    id
    upload: property_upload(name: $prop) {
      url file_name extension size content_type width height versions
      version_details { name status url width height format }
    }
  }
}"""

UPDATE = """
mutation($id: ID!, $props: [PropertyInputType], $prop: String!) {
  record_update(id: $id, record: {properties: $props}) {
    id upload: property_upload(name: $prop) { url file_name size content_type }
  }
}"""

UPDATE_WITH = """
mutation($id: ID!, $props: [PropertyInputType], $created_at: JSONDate) {
  record_update(id: $id, record: {properties: $props, created_at: $created_at}) { id }
}"""

ASSETS = """
name: assets
properties:
  - name: title
    type: string
  - name: file
    type: upload
    options:
      content_length: { lte: 64 }   # KiB
  - name: picture
    type: image
    options:
      content_length: { gte: 1, lte: 64 }
  - name: report
    type: attachment
    options:
      acl: private
      content_types: [application/pdf]
      cache_control: "max-age=600"
"""


def data_uri(data: bytes, media: str) -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def value_upload(name: str, **spec: Any) -> dict[str, Any]:
    return {"name": name, "value_upload": spec}


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, (url, response.text)
    return response


async def nothing_left(h: Harness) -> None:
    """What a refused save must leave: no record, no object, no upload still issued or half-cleaned."""
    assert await h.keys() == []
    assert await Record.all().count() == 0
    assert await Upload.filter(status__in=("issued", "expiring", "attached")).count() == 0


async def create(h: Harness, table: str, prop: str, *props: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await h.ok(CREATE, {"table": table, "prop": prop, "props": list(props)}))["record_create"]
    return result


async def refused(h: Harness, table: str, prop: str, *props: dict[str, Any]) -> str:
    return await h.error_code(CREATE, {"table": table, "prop": prop, "props": list(props)})


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "schema"
    folder.mkdir()
    (folder / "assets.yml").write_text(ASSETS)
    return folder


@pytest.fixture
async def assets(harness_factory: Any, assets_dir: Path) -> Harness:
    harness: Harness = await harness_factory(ANONYMOUS_READS="all", SCHEMA_DIR=str(assets_dir))
    return harness


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with serving(Origin()) as running:
        yield running


# -- content ---------------------------------------------------------------------------------------


@pytest.mark.backends("moto", "seaweedfs")
async def test_an_image_from_content_gets_its_versions(harness_factory: Any, queue_url: str) -> None:  # noqa: F811
    h: Harness = await harness_factory(ANONYMOUS_READS="all", QUEUE_URL=queue_url, **FAST)
    jpeg = files.jpeg(120, 80)
    created = await create(
        h,
        "photos",
        "image",
        {"name": "caption", "value": "made on the server"},
        value_upload("image", type="image", content=data_uri(jpeg, "image/jpeg")),
    )
    upload = created["upload"]
    assert (upload["file_name"], upload["extension"], upload["content_type"]) == ("image.jpg", "jpg", "image/jpeg")
    assert (int(upload["size"]), upload["width"], upload["height"]) == (len(jpeg), None, None)
    assert "X-Amz-Signature" in upload["url"]  # private: platformOS's default for value_upload
    assert (await download(upload["url"])).content == jpeg
    (key,) = await h.keys()
    assert key.startswith("photos/image/") and key.endswith("/image.jpg")  # promoted; nothing in quarantine
    head = await h.s3.head_object(Bucket=h.bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"

    async with running_worker(h):
        done = await settled(h, created["id"])
    assert (done["width"], done["height"]) == (120, 80)
    versions = {v["name"]: v for v in done["version_details"]}
    assert {n: (v["status"], v["format"]) for n, v in versions.items()} == {
        "thumb": ("ready", "webp"),
        "medium": ("ready", "jpeg"),
        "large": ("ready", "webp"),
    }
    thumb = Image.open(io.BytesIO((await download(versions["thumb"]["url"])).content))
    assert (thumb.format, thumb.size) == ("WEBP", (200, 200))
    assert done["versions"] == {n: v["url"] for n, v in versions.items()}


async def test_an_image_as_bare_base64_with_acl_public_is_served_unsigned(h: Harness) -> None:
    png = files.png()
    created = await create(
        h, "photos", "image", value_upload("image", type="image", content=base64.b64encode(png).decode(), acl="public")
    )
    url = created["upload"]["url"]
    assert "X-Amz-Signature" not in url and url.endswith("/image.png")
    response = await download(url)
    assert (response.content, response.headers["content-type"]) == (png, "image/png")


@pytest.mark.backends("moto", "seaweedfs")
async def test_a_pdf_from_html_as_platformos_guide_makes_it(harness_factory: Any) -> None:
    pos: Harness = await harness_factory(ANONYMOUS_READS="all", SCHEMA_DIR=str(docs.SCHEMA_DIR))
    made = (await pos.ok(docs.GENERATE_PDF))["record_create"]
    assert (made["url"]["extension"], made["url"]["file_name"], made["url"]["versions"]) == (
        "pdf",
        "the_upload.pdf",
        {},
    )
    response = await download(made["url"]["url"])
    assert response.content.startswith(b"%PDF-") and response.headers["content-type"] == "application/pdf"
    (listed,) = (await pos.ok(docs.GET_PDF_REQUESTS, {"id": made["id"]}))["records"]["results"]
    assert listed["url"]["file_name"] == "the_upload.pdf"
    assert (await download(listed["url"]["url"])).content == response.content


async def test_a_pdf_from_its_own_bytes(h: Harness) -> None:
    pdf = files.pdf()
    created = await create(
        h,
        "documents",
        "resume",
        value_upload("resume", type="pdf", content=data_uri(pdf, "application/pdf"), file_path="cv/résumé.pdf"),
    )
    upload = created["upload"]
    assert (upload["file_name"], upload["content_type"], int(upload["size"])) == (
        "résumé.pdf",
        "application/pdf",
        len(pdf),
    )
    response = await download(upload["url"])
    assert response.content == pdf
    assert response.headers["content-disposition"].startswith("attachment")
    # The same bytes as bare base64 are a PDF too (no HTML can be mistaken for base64).
    again = await create(
        h, "documents", "resume", value_upload("resume", type="pdf", content=base64.b64encode(pdf).decode())
    )
    assert again["upload"]["file_name"] == "resume.pdf"


@pytest.mark.backends("moto", "seaweedfs")
async def test_plain_text_as_the_reports_module_sends_it(harness_factory: Any) -> None:
    pos: Harness = await harness_factory(ANONYMOUS_READS="all", SCHEMA_DIR=str(docs.SCHEMA_DIR))
    csv = "name,city\nZoë,Kraków\n"
    variables = {
        "creator_id": "7",
        "content": csv,
        "object_uuid": "a1",
        "document_type": "file",
        "content_type": "text/csv; charset=UTF-8",
        "content_disposition": "attachment; filename=export.csv;",
        "cache_control": None,
    }
    record = (await pos.ok(docs.DOCUMENT_CREATE_WITH_CONTENT, variables))["record"]
    response = await download(record["file"]["url"])
    assert response.content == csv.encode()
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="export.csv"'
    (key,) = await pos.keys()
    assert key.startswith("document/document/") and key.endswith("/export.csv")


async def test_plain_text_without_a_type_is_text_and_markup_is_never_inline(assets: Harness) -> None:
    created = await create(assets, "assets", "file", value_upload("file", type="plain", content="just words"))
    assert (created["upload"]["file_name"], created["upload"]["content_type"]) == ("file.txt", "text/plain")
    page = await create(
        assets, "assets", "file", value_upload("file", type="plain", content="<html><script>alert(1)</script></html>")
    )
    assert page["upload"]["content_type"] == "text/html"
    response = await download(page["upload"]["url"])
    assert response.headers["content-disposition"].startswith("attachment")


async def test_oversize_content_is_refused_before_anything_is_stored(assets: Harness) -> None:
    big = files.png(200, 200)  # noise: about 160 KB, over the property's 64 KiB
    assert len(big) > 64 * 1024
    assert (
        await refused(
            assets, "assets", "picture", value_upload("picture", type="image", content=data_uri(big, "image/png"))
        )
        == "UPLOAD_TOO_LARGE"
    )
    assert (
        await refused(assets, "assets", "file", value_upload("file", type="plain", content="x" * (65 * 1024)))
        == "UPLOAD_TOO_LARGE"
    )
    # Above the request limit (MAX_BODY_BYTES, 1 MiB here) the request itself is refused.
    too_big = "x" * (assets.settings.max_body_bytes + 1)
    response = await assets.http.post(
        "/graphql",
        json={
            "query": CREATE,
            "variables": {
                "table": "assets",
                "prop": "file",
                "props": [value_upload("file", type="plain", content=too_big)],
            },
        },
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    await nothing_left(assets)


async def test_a_file_of_the_wrong_type_for_the_property_is_refused(assets: Harness) -> None:
    pdf, png, jpeg = files.pdf(), files.png(), files.jpeg()
    cases = [
        # A PDF into an image property: refused from the options, before anything is made.
        (
            value_upload("picture", type="pdf", content=data_uri(pdf, "application/pdf")),
            "picture",
            "CONTENT_TYPE_NOT_ALLOWED",
        ),
        # An image into a property that takes PDFs only.
        (
            value_upload("report", type="image", content=data_uri(png, "image/png")),
            "report",
            "CONTENT_TYPE_NOT_ALLOWED",
        ),
        # type: image whose bytes are a PDF: the save sees the bytes.
        (value_upload("file", type="image", content=data_uri(pdf, "image/png")), "file", "CONTENT_TYPE_NOT_ALLOWED"),
        # A declared type the bytes are not.
        (
            value_upload("picture", type="image", content=data_uri(jpeg, "image/png"), content_type="image/png"),
            "picture",
            "CONTENT_MISMATCH",
        ),
        # type: pdf that is no PDF.
        (value_upload("report", type="pdf", content=data_uri(png, "application/pdf")), "report", "CONTENT_MISMATCH"),
        # value_upload on a plain property.
        (value_upload("title", type="plain", content="words"), "file", "BAD_USER_INPUT"),
    ]
    for prop_input, prop, code in cases:
        assert await refused(assets, "assets", prop, prop_input) == code, prop_input
    await nothing_left(assets)


async def test_malformed_content_is_bad_user_input(assets: Harness) -> None:
    png = files.png()
    cases = [
        value_upload("picture", type="image", content="this is not base64!"),
        value_upload("picture", type="image", content="data:image/png;base64" + base64.b64encode(png).decode()),
        value_upload("picture", type="image", content="data:image/png;base64,@@@@"),
        value_upload("picture", type="image", content="===="),
        value_upload("file", type="plain", content=""),
        value_upload("file", type="plain"),
        value_upload("file", type="plain", content="a", file_path="   "),
        value_upload("file", type="plain", content="a", content_disposition="evil; filename=x"),
        value_upload("file", type="plain", content="a", content_type="not a type"),
        value_upload("file", type="plain", content="a", cache_control="max-age=ten"),
        value_upload("report", type="pdf", content="<p>x</p>", content_type="text/html"),
        {"name": "file", "value": "https://example.com/x", "value_upload": {"type": "plain", "content": "a"}},
    ]
    for prop_input in cases:
        assert await refused(assets, "assets", "file", prop_input) == "BAD_USER_INPUT", prop_input
    # An enum value platformOS does not have is refused by GraphQL itself.
    assert await refused(assets, "assets", "file", value_upload("file", type="video", content="a")) == "BAD_USER_INPUT"
    await nothing_left(assets)


async def test_options_can_only_narrow_the_property(assets: Harness) -> None:
    pdf = data_uri(files.pdf(), "application/pdf")
    assert (
        await refused(assets, "assets", "report", value_upload("report", type="pdf", content=pdf, acl="public"))
        == "FORBIDDEN"
    )
    assert (
        await refused(
            assets, "assets", "report", value_upload("report", type="pdf", content=pdf, cache_control="max-age=99999")
        )
        == "FORBIDDEN"
    )
    assert (
        await refused(
            assets, "assets", "report", value_upload("report", type="pdf", content=pdf, cache_control="public")
        )
        == "FORBIDDEN"
    )
    await nothing_left(assets)
    created = await create(
        assets,
        "assets",
        "report",
        value_upload("report", type="pdf", content=pdf, cache_control="max-age=60, no-store"),
    )
    (key,) = await assets.keys()
    head = await assets.s3.head_object(Bucket=assets.bucket, Key=key)
    assert head["CacheControl"] == "max-age=60, no-store"
    assert created["upload"]["content_type"] == "application/pdf"


async def test_a_failed_save_leaves_nothing_behind(assets: Harness) -> None:
    text = value_upload("file", type="plain", content="kept only if everything saves")
    # The second file fails at the save's check of its bytes, after the first was created and promoted.
    not_an_image = value_upload("picture", type="image", content=data_uri(files.pdf(), "image/png"))
    assert await refused(assets, "assets", "file", text, not_an_image) == "CONTENT_TYPE_NOT_ALLOWED"
    await nothing_left(assets)
    # A file saved with another, but the record's own write fails inside the transaction.
    record = await create(assets, "assets", "file", {"name": "title", "value": "t"})
    before = await assets.keys()
    code = await assets.error_code(UPDATE_WITH, {"id": record["id"], "props": [text], "created_at": None})
    assert code == "BAD_USER_INPUT"
    assert await assets.keys() == before == []
    assert await Upload.filter(status__in=("issued", "expiring", "attached")).count() == 0


async def test_record_update_replaces_the_file(assets: Harness) -> None:
    first = await create(
        assets, "assets", "file", value_upload("file", type="plain", content="version 1", file_path="notes.txt")
    )
    (old_key,) = await assets.keys()
    updated = (
        await assets.ok(
            UPDATE,
            {
                "id": first["id"],
                "prop": "file",
                "props": [
                    value_upload("file", type="plain", content="version 2", file_path="notes.txt"),
                    {"name": "title", "value": "v2"},
                ],
            },
        )
    )["record_update"]
    assert updated["upload"]["file_name"] == "notes.txt" and updated["upload"]["url"] != first["upload"]["url"]
    assert (await download(updated["upload"]["url"])).content == b"version 2"
    (new_key,) = await assets.keys()  # the old file and everything of it is gone
    assert new_key != old_key
    assert await Upload.filter(status="attached").count() == 1


# -- remote_url ------------------------------------------------------------------------------------


@pytest.mark.backends("moto", "seaweedfs")
async def test_remote_url_fetches_from_an_allowlisted_origin(harness_factory: Any, origin: Origin) -> None:
    png = files.png()
    origin.files["cat.png"] = (png, "text/html")  # what the origin claims plays no part
    pos: Harness = await harness_factory(
        ANONYMOUS_READS="all",
        SCHEMA_DIR=str(docs.SCHEMA_DIR),
        VALUE_UPLOAD_REMOTE_HOSTS=origin.base.replace("https://", ""),
    )
    # Through a redirect to another path of the same origin, checked again.
    url = origin.url("/redirect?to=/files/cat.png")
    made = (await pos.ok(docs.IMAGE_FROM_REMOTE_URL, {"remote_url": url}))["record"]
    assert (made["file"]["file_name"], made["file"]["extension"]) == ("cat.png", "png")
    response = await download(made["file"]["url"])
    assert (response.content, response.headers["content-type"]) == (png, "image/png")
    assert origin.requests == ["/redirect?to=/files/cat.png", "/files/cat.png"]


async def test_remote_url_over_https(harness_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    # The origin's certificate is the only CA this process trusts (OpenSSL reads SSL_CERT_FILE).
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with serving(Origin(), tls=(cert, key)) as tls_origin:
        jpeg = files.jpeg()
        tls_origin.files["photo.jpg"] = (jpeg, "image/jpeg")
        host = tls_origin.base.removeprefix("https://")
        h: Harness = await harness_factory(
            ANONYMOUS_READS="all", VALUE_UPLOAD_REMOTE_HOSTS=host
        )  # a bare host:port is https
        created = await create(
            h, "photos", "image", value_upload("image", type="image", remote_url=tls_origin.url("/files/photo.jpg"))
        )
        assert (await download(created["upload"]["url"])).content == jpeg
        # The same origin over plain HTTP is not allowed: https unless listed with http://.
        plain = tls_origin.url("/files/photo.jpg").replace("https://", "http://")
        assert (
            await refused(h, "photos", "image", value_upload("image", type="image", remote_url=plain))
            == "REMOTE_URL_FORBIDDEN"
        )
        assert tls_origin.requests == ["/files/photo.jpg"]


async def test_remote_url_is_off_unless_the_origin_is_allowlisted(harness_factory: Any, origin: Origin) -> None:
    origin.files["a.png"] = (files.png(), "image/png")
    off: Harness = await harness_factory(ANONYMOUS_READS="all")
    spec = value_upload("image", type="image", remote_url=origin.url("/files/a.png"))
    assert await refused(off, "photos", "image", spec) == "REMOTE_URL_FORBIDDEN"
    other_port = origin.base.rsplit(":", 1)[0] + ":1"
    elsewhere: Harness = await harness_factory(
        ANONYMOUS_READS="all",
        VALUE_UPLOAD_REMOTE_HOSTS=f"{other_port},https://127.0.0.1:{origin.base.rsplit(':', 1)[1]}",
    )
    assert await refused(elsewhere, "photos", "image", spec) == "REMOTE_URL_FORBIDDEN"
    for bad in ("ftp://127.0.0.1/a.png", "file:///etc/passwd", "not a url", "http://user:pw@127.0.0.1/a.png"):
        assert await refused(elsewhere, "photos", "image", value_upload("image", type="image", remote_url=bad)) in (
            "REMOTE_URL_FORBIDDEN",
            "BAD_USER_INPUT",
        ), bad
    assert origin.requests == []
    await nothing_left(off)


async def test_a_name_resolving_to_loopback_and_a_redirect_to_a_forbidden_host_are_refused(
    harness_factory: Any, origin: Origin
) -> None:
    origin.files["a.png"] = (files.png(), "image/png")
    port = origin.base.rsplit(":", 1)[1]
    h: Harness = await harness_factory(
        ANONYMOUS_READS="all", VALUE_UPLOAD_REMOTE_HOSTS=f"{origin.base},http://localhost:{port}"
    )
    by_name = value_upload("image", type="image", remote_url=f"http://localhost:{port}/files/a.png")
    assert await refused(h, "photos", "image", by_name) == "REMOTE_URL_FORBIDDEN"
    assert origin.requests == []  # refused once resolved, before connecting
    for target in (
        f"http://127.0.0.2:{port}/files/a.png",
        f"http://localhost:{port}/files/a.png",
        "http://169.254.169.254/latest/meta-data/",
    ):
        spec = value_upload("image", type="image", remote_url=origin.url(f"/redirect?to={target}"))
        assert await refused(h, "photos", "image", spec) == "REMOTE_URL_FORBIDDEN", target
    assert all(r.startswith("/redirect") for r in origin.requests)
    await nothing_left(h)


async def test_a_remote_file_over_the_limit_stops_the_reading(
    harness_factory: Any, assets_dir: Path, origin: Origin
) -> None:
    h: Harness = await harness_factory(
        ANONYMOUS_READS="all", SCHEMA_DIR=str(assets_dir), VALUE_UPLOAD_REMOTE_HOSTS=origin.base
    )
    endless = value_upload("file", type="plain", remote_url=origin.url("/endless"))
    assert await refused(h, "assets", "file", endless) == "UPLOAD_TOO_LARGE"
    await origin.stream_ended.wait()
    # 64 MiB on offer; the fetch stops past the property's 64 KiB (what the sockets buffered aside).
    assert origin.streamed < 8 * 1024 * 1024
    origin.stream_ended.clear()
    origin.streamed = 0
    declared = value_upload("file", type="plain", remote_url=origin.url("/declared-huge"))
    assert await refused(h, "assets", "file", declared) == "UPLOAD_TOO_LARGE"
    await origin.stream_ended.wait()
    assert origin.streamed < 8 * 1024 * 1024  # refused on its Content-Length, the body never read
    await nothing_left(h)


async def test_a_slow_or_missing_remote_file_is_a_clear_failure(harness_factory: Any, origin: Origin) -> None:
    h: Harness = await harness_factory(
        ANONYMOUS_READS="all", VALUE_UPLOAD_REMOTE_HOSTS=origin.base, VALUE_UPLOAD_REMOTE_TIMEOUT=1
    )
    started = time.monotonic()
    body = await h.gql(
        CREATE,
        {
            "table": "photos",
            "prop": "image",
            "props": [value_upload("image", type="image", remote_url=origin.url("/slow"))],
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "REMOTE_FETCH_FAILED"
    assert "within 1 s" in body["errors"][0]["message"]
    assert time.monotonic() - started < 5
    body = await h.gql(
        CREATE,
        {
            "table": "photos",
            "prop": "image",
            "props": [value_upload("image", type="image", remote_url=origin.url("/gone"))],
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "REMOTE_FETCH_FAILED"
    assert "404" in body["errors"][0]["message"]
    await nothing_left(h)
