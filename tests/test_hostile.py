"""A hostile client at the save boundary: every check of SPEC §3 fails closed, saves nothing, and
deletes what it rejects (but never an object that is not provably the caller's pending upload).

Runs on moto, which stores whatever a client sends (the save-time checks are the only defence), and
on SeaweedFS, which refuses what the presign did not allow before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from app.keys import parse_key
from app.models import Record, Upload
from tests import files
from tests.conftest import Harness, post_form, uploaded_key
from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN, RECORD_CREATE, RECORD_UPDATE, RECORDS
from tests.test_flow import upload_photo

pytestmark = pytest.mark.backends("moto", "seaweedfs")


async def save(h: Harness, value: str, table: str = "photos", prop: str = "image") -> dict[str, Any]:
    return await h.gql(RECORD_CREATE, {"table": table, "prop": prop, "props": [{"name": prop, "value": value}]})


def code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    assert body["data"] is None
    return str(body["errors"][0]["extensions"]["code"])


async def presign_and_post(
    h: Harness,
    data: bytes,
    *,
    name: str,
    declared: str,
    sent: str | None = None,
    table: str = "photos",
    prop: str = "image",
    query: str = IMAGE_PRESIGN,
    refused_by_storage: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """Presign and POST as a hostile client would; the key stored, or None when storage refused the
    POST (a server that enforces POST policies, told by `refused_by_storage` that it must)."""
    presigned = await h.ok(query, {"table": table, "prop": prop, "type": declared})
    presigned = next(iter(presigned.values()))
    fields = dict(presigned["upload_url_payload"])
    if sent is not None:
        fields["Content-Type"] = sent
    response = await post_form({**presigned, "upload_url_payload": fields}, data, name, sent or declared)
    if refused_by_storage and h.server.enforces_policy:
        assert response.status_code in (400, 403), response.text
        assert await h.keys() == []
        return presigned, None
    assert response.status_code == 201, response.text
    return presigned, uploaded_key(presigned, name)


async def assert_nothing_saved(h: Harness) -> None:
    assert await Record.all().count() == 0


async def test_url_of_another_bucket_is_foreign(h: Harness) -> None:
    url = await upload_photo(h)
    other = url.replace(f"/{h.bucket}/", "/someone-elses-bucket/")
    assert code(await save(h, other)) == "FOREIGN_UPLOAD"
    assert code(await save(h, "https://evil.example.com/" + url.split(f"/{h.bucket}/")[1])) == "FOREIGN_UPLOAD"
    assert code(await save(h, "file:///etc/passwd")) == "FOREIGN_UPLOAD"
    assert code(await save(h, "http://169.254.169.254/latest/meta-data/")) == "FOREIGN_UPLOAD"
    await assert_nothing_saved(h)
    assert len(await h.keys()) == 1  # a foreign URL never deletes anything


async def test_key_of_another_property_or_table_is_foreign(h: Harness) -> None:
    presigned = (
        await h.ok(
            ATTACHMENT_PRESIGN, {"table": "documents", "prop": "resume", "type": "application/pdf", "name": "cv.pdf"}
        )
    )["attachment_presign_url"]
    assert (await post_form(presigned, files.pdf(), "cv.pdf", "application/pdf")).status_code == 201
    assert code(await save(h, presigned["key"])) == "FOREIGN_UPLOAD"
    # Same token, path rewritten to look like this property's: the token is bound to its property.
    forged = presigned["key"].replace("documents/resume/", "photos/image/")
    assert code(await save(h, forged)) == "FOREIGN_UPLOAD"
    await assert_nothing_saved(h)
    assert await h.keys() == [presigned["key"]]


async def test_unknown_and_malformed_keys(h: Harness) -> None:
    assert code(await save(h, "photos/image/" + "0" * 32 + "/x.png")) == "FOREIGN_UPLOAD"
    for bad in ("photos/image/x.png", "photos/image/../../x", "../photos/image/" + "a" * 32 + "/x"):
        assert code(await save(h, bad)) == "FOREIGN_UPLOAD", bad
    assert code(await save(h, "   ")) == "BAD_USER_INPUT"
    assert code(await save(h, "photos/image/\x00")) == "BAD_USER_INPUT"
    assert code(await save(h, "x" * 5000)) == "BAD_USER_INPUT"
    for malformed in ("http://[::1/x", "https://127.0.0.1:99999/x.png"):
        assert code(await save(h, malformed)) == "BAD_USER_INPUT", malformed
    await assert_nothing_saved(h)


async def test_issued_but_never_uploaded(h: Harness) -> None:
    presigned = (
        await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "name": "ghost.png"})
    )["image_presign_url"]
    assert code(await save(h, presigned["url"])) == "UPLOAD_NOT_FOUND"
    await assert_nothing_saved(h)


async def test_file_over_the_limit_is_rejected_and_deleted(h: Harness) -> None:
    big = files.png() + b"\0" * (10240 * 1024)  # moto lets it in; SeaweedFS and S3 refuse the POST
    presigned, key = await presign_and_post(h, big, name="big.png", declared="image/png", refused_by_storage=True)
    assert code(await save(h, key or uploaded_key(presigned, "big.png"))) in ("UPLOAD_TOO_LARGE", "UPLOAD_NOT_FOUND")
    await assert_nothing_saved(h)
    assert await h.keys() == []


async def test_file_under_the_narrowed_minimum(h: Harness) -> None:
    presigned = (
        await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "len": {"gte": 64}})
    )["image_presign_url"]
    posted = await post_form(presigned, files.png(), "small.png", "image/png")
    if h.server.enforces_policy:
        assert posted.status_code == 400 and "EntityTooSmall" in posted.text
    else:
        assert posted.status_code == 201
        assert code(await save(h, uploaded_key(presigned, "small.png"))) == "UPLOAD_TOO_SMALL"
    assert await h.keys() == []


async def test_wrong_type_is_rejected_and_deleted(h: Harness) -> None:
    _, key = await presign_and_post(
        h, files.pdf(), name="x.png", declared="image/png", sent="application/pdf", refused_by_storage=True
    )
    if key is not None:
        assert code(await save(h, key)) == "CONTENT_TYPE_NOT_ALLOWED"
    assert await h.keys() == []
    _, key = await presign_and_post(
        h,
        files.padded(b"MZ\x90\x00"),
        name="cv.pdf",
        declared="application/pdf",
        sent="application/x-msdownload",
        table="documents",
        prop="resume",
        query=ATTACHMENT_PRESIGN,
        refused_by_storage=True,
    )
    if key is not None:
        assert code(await save(h, key, "documents", "resume")) == "CONTENT_TYPE_NOT_ALLOWED"
    await assert_nothing_saved(h)


async def test_png_that_is_really_html(h: Harness) -> None:
    _, key = await presign_and_post(h, files.HTML, name="cat.png", declared="image/png")
    assert key is not None and code(await save(h, key)) == "CONTENT_MISMATCH"
    assert await h.keys() == []
    _, key = await presign_and_post(h, files.padded(b"%PDF-1.4 not really a jpeg"), name="a.jpg", declared="image/jpeg")
    assert key is not None and code(await save(h, key)) == "CONTENT_MISMATCH"
    await assert_nothing_saved(h)


async def test_svg_must_not_be_inline(h: Harness) -> None:
    svg = files.padded(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    # photos does not allow SVG at all; a hostile client stores one anyway, inline.
    fields = {**presigned["upload_url_payload"], "Content-Type": "image/svg+xml"}
    posted = await post_form({**presigned, "upload_url_payload": fields}, svg, "x.svg", "image/svg+xml")
    expected = "UPLOAD_NOT_FOUND" if h.server.enforces_policy else "CONTENT_TYPE_NOT_ALLOWED"
    assert posted.status_code == (403 if h.server.enforces_policy else 201)
    assert code(await save(h, uploaded_key(presigned, "x.svg"))) == expected
    assert await h.keys() == []


async def test_reused_upload(h: Harness) -> None:
    url = await upload_photo(h)
    assert "errors" not in await save(h, url)
    assert code(await save(h, url)) == "UPLOAD_ALREADY_ATTACHED"
    assert await Record.all().count() == 1
    assert len(await h.keys()) == 1  # the attached file is not deleted by the failed reuse


async def test_same_upload_into_two_properties(harness_factory: Any, tmp_path: Any) -> None:
    folder = tmp_path / "schema"
    folder.mkdir()
    (folder / "pairs.yml").write_text(
        "name: pairs\nproperties:\n  - {name: a, type: upload}\n  - {name: b, type: upload}\n"
    )
    h: Harness = await harness_factory(SCHEMA_DIR=str(folder))
    presign = """mutation {
      property_upload_presigned_url(table: "pairs", property_name: "a", include_content_type: true) {
        upload_url upload_url_payload key } }"""
    presigned = (await h.ok(presign))["property_upload_presigned_url"]
    await post_form(presigned, b"hello", "a.txt", "text/plain")  # no size minimum on this table
    key = uploaded_key(presigned, "a.txt")
    body = await h.gql(
        RECORD_CREATE,
        {"table": "pairs", "prop": "a", "props": [{"name": "a", "value": key}, {"name": "b", "value": key}]},
    )
    assert code(body) == "FOREIGN_UPLOAD"  # the key belongs to property a only


async def test_expired_upload(h: Harness) -> None:
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    await post_form(presigned, files.png(), "late.png", "image/png")
    token = parse_key(presigned["key"]).token
    # As if the object landed after the policy expired (storage refuses that; see tests/storage/).
    await Upload.filter(token=token).update(expires_at=datetime.now(UTC) - timedelta(minutes=5))
    assert code(await save(h, uploaded_key(presigned, "late.png"))) == "UPLOAD_EXPIRED"
    assert await h.keys() == []
    # And one never saved within expiry plus the grace period.
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    await post_form(presigned, files.png(), "old.png", "image/png")
    token = parse_key(presigned["key"]).token
    await Upload.filter(token=token).update(expires_at=datetime.now(UTC) - timedelta(days=1))
    assert code(await save(h, uploaded_key(presigned, "old.png"))) == "UPLOAD_EXPIRED"
    await assert_nothing_saved(h)


async def test_percent_encoded_and_virtual_hosted_forms(h: Harness) -> None:
    url = await upload_photo(h, name="a b+c.png")
    path_style_raw = url.replace(quote("a b+c.png"), "a b+c.png")
    host = h.server.url.split("//", 1)[1]
    virtual = url.replace(f"//{host}/{h.bucket}/", f"//{h.bucket}.{host}/")
    body = await save(h, virtual)
    assert "errors" not in body, body
    rec = body["data"]["record_create"]
    same = await h.gql(
        RECORD_UPDATE, {"id": rec["id"], "prop": "image", "props": [{"name": "image", "value": path_style_raw}]}
    )
    assert "errors" not in same, same


async def test_cdn_urls(harness_factory: Any) -> None:
    h: Harness = await harness_factory(CDN_BASE_URL="https://cdn.example.com/assets")
    url = await upload_photo(h, name="c.png")
    key = url.split(f"/{h.bucket}/", 1)[1]
    assert code(await save(h, f"https://cdn.example.com/other/{key}")) == "FOREIGN_UPLOAD"
    body = await save(h, f"https://cdn.example.com/assets/{key}")
    assert "errors" not in body, body
    # Served from the CDN, at the permanent key.
    assert (
        body["data"]["record_create"]["upload"]["url"] == f"https://cdn.example.com/assets/{key.removeprefix('cache/')}"
    )


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (IMAGE_PRESIGN, {"table": 1, "prop": "image"}),
        (IMAGE_PRESIGN, {"table": "photos"}),
        (IMAGE_PRESIGN, {"table": "photos", "prop": "image", "len": {"gte": "x"}}),
        (IMAGE_PRESIGN, {"table": "photos", "prop": "image", "len": {"gte": -1}}),
        (IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "not a type"}),
        (IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "name": ""}),
        (ATTACHMENT_PRESIGN, {"table": "documents", "prop": "resume", "disp": "evil"}),
        (RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"value": "x"}]}),
        (RECORD_CREATE, {"table": "photos", "prop": "image", "props": "nope"}),
        (RECORD_UPDATE, {"id": "abc", "prop": "image", "props": []}),
        (RECORD_UPDATE, {"id": "-1", "prop": "image", "props": []}),
        (RECORD_UPDATE, {"id": "99999999999999999999999", "prop": "image", "props": []}),
        (RECORDS, {"table": "photos", "prop": "image", "per_page": 10**12}),
    ],
)
async def test_malformed_arguments(h: Harness, query: str, variables: dict[str, Any]) -> None:
    body = await h.gql(query, variables)
    assert body.get("errors"), body
    assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "CONTENT_TYPE_NOT_ALLOWED")
    assert "Traceback" not in str(body)
    await assert_nothing_saved(h)
    assert await Upload.all().count() == 0


async def test_bigint_out_of_range_is_bad_input(h: Harness) -> None:
    query = """mutation { multipart_upload_create(table: "documents", property_name: "resume", file_name: "a.pdf",
        content_type: "application/pdf", size: 1180591620717411303424) { upload_id } }"""
    assert code(await h.gql(query)) == "BAD_USER_INPUT"


async def test_record_not_found(h: Harness) -> None:
    assert code(await h.gql(RECORD_UPDATE, {"id": "12345", "prop": "image", "props": []})) == "RECORD_NOT_FOUND"
    assert code(await h.gql('mutation { record_delete(id: "12345") { id } }')) == "RECORD_NOT_FOUND"


async def test_invalid_json_and_syntax(h: Harness) -> None:
    response = await h.http.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = await h.gql("{ tables { name ")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    body = await h.gql("{ tables { nope } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_s3_location_form_with_plus_for_a_space(h: Harness) -> None:
    """S3's Location spells a space in the key as `+`: such a URL finds the file."""
    presigned = (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png"}))[
        "image_presign_url"
    ]
    assert (await post_form(presigned, files.png(), "my cat.png", "image/png")).status_code == 201
    location = (
        f"{presigned['upload_url'].rstrip('/')}/{quote(uploaded_key(presigned, 'my cat.png')).replace('%20', '+')}"
    )
    body = await save(h, location)
    assert "errors" not in body, body
    assert body["data"]["record_create"]["upload"]["file_name"] == "my cat.png"
