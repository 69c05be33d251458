"""Uppy's AwsS3 plugin (non-multipart) with the docs' `getUploadParameters` recipe (docs/frontend.md): the recipe maps
image_presign_url onto {method, url, fields, headers}; Uppy POSTs `fields` in their order with the
file last in a field named "file". Uppy 5 appends the file's data as it has it (often a Blob, which
browsers send with the file name "blob"), so the recipe always presigns with `file_name`: the key is
then exact and does not depend on the name the form carries. tests/test_uppy_browser.py runs the real
Uppy bundle with the recipe in Chromium."""

from __future__ import annotations

from typing import Any

import httpx

from tests import files
from tests.conftest import Harness
from tests.gql import IMAGE_PRESIGN, RECORD_CREATE


def get_upload_parameters(presigned: dict[str, Any]) -> dict[str, Any]:
    """The docs recipe's mapping, line for line."""
    return {
        "method": presigned["method"],
        "url": presigned["upload_url"],
        "fields": presigned["upload_url_payload"],
        "headers": presigned["headers"],
    }


async def uppy_post(params: dict[str, Any], data: bytes, form_file_name: str, content_type: str) -> httpx.Response:
    """As Uppy's AwsS3 does for POST: each field in the order given, then the file as "file"."""
    fields = list(params["fields"].items())
    async with httpx.AsyncClient(timeout=30) as client:
        request = client.build_request(
            params["method"],
            params["url"],
            data=dict(fields),
            files={"file": (form_file_name, data, content_type)},
            headers=params["headers"],
        )
        body = request.read()
        # The multipart body really is in Uppy's order: every field, then the file, last.
        positions = [body.index(f'name="{name}"'.encode()) for name, _ in fields]
        assert positions == sorted(positions)
        assert body.index(b'name="file"') > positions[-1]
        return await client.send(request)


async def test_uppy_aws_s3_post_with_recipe_parameters_is_saved(h: Harness) -> None:
    data = files.png(300, 200)
    presigned = (
        await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "name": "uppy.png"})
    )["image_presign_url"]
    params = get_upload_parameters(presigned)
    assert params["method"] == "POST" and params["headers"] == {}
    assert "file" not in params["fields"]
    # With file_name the key is exact, so the form's own file name ("blob" for a Blob) does not matter.
    assert presigned["key"].endswith("/uppy.png") and presigned["url"]

    response = await uppy_post(params, data, "blob", "image/png")
    assert response.status_code == 201, response.text

    # The recipe saves S3's <Location> when it answers one, else the presign's url (or key).
    created = (
        await h.ok(
            RECORD_CREATE,
            {"table": "photos", "prop": "image", "props": [{"name": "image", "value": presigned["url"]}]},
        )
    )["record_create"]
    upload = created["upload"]
    assert (upload["file_name"], upload["size"], upload["content_type"]) == ("uppy.png", len(data), "image/png")
    async with httpx.AsyncClient() as client:
        got = await client.get(upload["url"])
    assert got.status_code == 200 and got.content == data


async def test_uppy_upload_of_a_disallowed_type_is_refused_at_presign(h: Harness) -> None:
    """Uppy calls getUploadParameters per file; a refused type fails that file with our code."""
    body = await h.gql(IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "text/html", "name": "x.html"})
    assert body["errors"][0]["extensions"]["code"] == "CONTENT_TYPE_NOT_ALLOWED"
    assert "text/html" in body["errors"][0]["message"]
