"""Every URL-bearing field resolves the same way whether the fast signer (app/sigv4.py) or botocore
signs: the URL resolvers are plain functions that hand graphql-core either the URL or, when only
botocore can sign, an awaitable of it. Both paths must give working signed URLs, for a single field
and inside containers (properties, versions, version_details)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.models import Upload, UploadVersion
from tests import files
from tests.conftest import Harness, post_form
from tests.gql import ATTACHMENT_PRESIGN, RECORD_CREATE
from tests.test_flow import download

QUERY = """query($id: ID!) { record(id: $id) {
  properties title: property(name: "title") resume: property(name: "resume")
  file: property_upload(name: "resume", expires_in: 120) {
    url original: url versions all: versions(names: ["preview"])
    version_details { name status url }
    preview: url(version: "preview")
  }
} }"""
LIST = """{ records(filter: {table: {value: "documents"}}, per_page: 20) { results { id properties
  file: property_upload(name: "resume") { url versions version_details { url } } } } }"""


@pytest.mark.parametrize("signer", ["fast", "botocore"])
async def test_url_fields_resolve_with_either_signer(harness_factory: Any, signer: str) -> None:
    # A virtual-hosted style on a custom endpoint is one configuration the fast signer leaves to botocore.
    # Anonymous mode has no owners: only ANONYMOUS_READS=all reads documents (`read: owner`) back.
    style = {"S3_ADDRESSING_STYLE": "virtual"} if signer == "botocore" else {}
    h: Harness = await harness_factory(ANONYMOUS_READS="all", **style)
    storage = h.app.state.services.storage
    assert (storage.presign_get_now("k", 60) is None) is (signer == "botocore")

    data = files.pdf()
    variables = {"table": "documents", "prop": "resume", "type": "application/pdf", "name": "cv.pdf"}
    presigned = (await h.ok(ATTACHMENT_PRESIGN, variables))["attachment_presign_url"]
    assert (await post_form(presigned, data, "cv.pdf", "application/pdf")).status_code == 201
    props = [{"name": "title", "value": "CV"}, {"name": "resume", "value": presigned["url"]}]
    created = (await h.ok(RECORD_CREATE, {"table": "documents", "prop": "resume", "props": props}))["record_create"]

    # A ready version and a pending one, so the version fields have URLs to resolve and nulls to keep.
    upload = await Upload.get(record_id=int(created["id"]))
    preview_key = f"{upload.key.rsplit('/', 1)[0]}/versions/preview.pdf"
    await h.s3.put_object(Bucket=h.settings.s3_bucket, Key=preview_key, Body=b"%PDF-preview")
    await UploadVersion.create(upload_id=upload.id, name="preview", key=preview_key, status="ready")
    await UploadVersion.create(upload_id=upload.id, name="later", key=f"{preview_key}.later", status="pending")

    record = (await h.ok(QUERY, {"id": created["id"]}))["record"]
    file = record["file"]
    signed = [record["properties"]["resume"], record["resume"], file["url"], file["original"]]
    for url in signed:
        assert "X-Amz-Signature" in url and (await download(url)).content == data
    assert parse_qs(urlsplit(file["url"]).query)["X-Amz-Expires"] == ["120"]
    assert record["properties"]["title"] == record["title"] == "CV"
    assert set(file["versions"]) == set(file["all"]) == {"preview"}
    details = {d["name"]: d for d in file["version_details"]}
    assert details["later"] == {"name": "later", "status": "pending", "url": None}
    for url in (file["versions"]["preview"], file["all"]["preview"], details["preview"]["url"], file["preview"]):
        assert (await download(url)).content == b"%PDF-preview"

    page = (await h.ok(LIST))["records"]["results"]
    assert len(page) == 1 and (await download(page[0]["file"]["url"])).content == data
    assert (await download(page[0]["properties"]["resume"])).content == data
    assert [d["url"] is None for d in page[0]["file"]["version_details"]] == [False, True]
