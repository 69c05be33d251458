"""Presigned PUT over HTTP, on moto and SeaweedFS: the exact type, length and checksum are signed and
re-checked at save. SeaweedFS (like S3) refuses a PUT whose signed headers differ; moto stores it, so
there the tests that send other bytes show what the save-time checks catch."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests import files
from tests.conftest import Harness
from tests.gql import PROPERTY_PRESIGN
from tests.large import PUT_PRESIGN, SAVE, download, put, record_vars

pytestmark = pytest.mark.backends("moto", "seaweedfs")


async def put_hostile(h: Harness, url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    """A PUT that differs from what was signed: refused by storage where it checks signatures and
    checksums, else stored (and left to the save's checks)."""
    response = await put(url, data, headers)
    # 403: the signature does not match; 400 BadDigest: the checksum does not.
    assert response.status_code in ((400, 403) if h.server.enforces_policy else (200,)), response.text
    return response


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def presign(h: Harness, name: str, ctype: str, size: int, checksum: str | None = None) -> dict[str, object]:
    variables = {
        "table": "photos",
        "prop": "image",
        "put": {"file_name": name, "content_type": ctype, "size": size, "checksum_sha256": checksum},
    }
    data: dict[str, object] = (await h.ok(PUT_PRESIGN, variables))["property_upload_presigned_url"]
    return data


async def test_put_round_trip_signs_type_length_and_checksum(h: Harness) -> None:
    data = files.png(200, 100)
    p = await presign(h, "../ünïcode cat.png", "image/png", len(data), b64sha256(data))
    assert p["method"] == "PUT"
    assert p["upload_url_payload"] == {}
    key = str(p["key"])
    assert key.startswith("cache/photos/image/") and key.endswith("/ünïcode cat.png")
    assert p["content_types"] == ["image/png"]
    headers = p["headers"]
    assert isinstance(headers, dict)
    # A private object in quarantine; the promotion gives the permanent one its real headers.
    assert headers == {
        "Content-Type": "image/png",
        "Content-Length": str(len(data)),
        "Content-Disposition": "attachment",
        "x-amz-acl": "private",
        "x-amz-checksum-sha256": b64sha256(data),
    }
    signed = parse_qs(urlsplit(str(p["upload_url"])).query)["X-Amz-SignedHeaders"][0].split(";")
    assert set(signed) >= {h.lower() for h in headers} | {"host"}

    response = await put(str(p["upload_url"]), data, headers)
    assert response.status_code == 200, response.text
    saved = (await h.ok(SAVE, record_vars("photos", "image", str(p["url"]), caption="PUT")))["record_create"]
    assert saved["upload"]["size"] == len(data)
    assert saved["upload"]["content_type"] == "image/png"
    assert saved["upload"]["file_name"] == "ünïcode cat.png"
    got = await download(saved["upload"]["url"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png" and got.headers["content-disposition"].startswith("inline;")
    assert got.headers["cache-control"] == "max-age=315576000, public"


async def test_put_with_another_type_is_rejected_at_confirm_and_deleted(h: Harness) -> None:
    data = files.jpeg()
    p = await presign(h, "cat.png", "image/png", len(data))
    headers = dict(p["headers"])  # type: ignore[call-overload]
    headers["Content-Type"] = "image/jpeg"  # the signature covers the type
    await put_hostile(h, str(p["upload_url"]), data, headers)
    code = await h.error_code(SAVE, record_vars("photos", "image", str(p["key"])))
    assert code == ("UPLOAD_NOT_FOUND" if h.server.enforces_policy else "CONTENT_TYPE_NOT_ALLOWED")
    assert await h.keys() == []


async def test_put_with_another_length_is_rejected_at_confirm(h: Harness) -> None:
    data = files.png()
    longer = await presign(h, "a.png", "image/png", len(data) - 100)
    headers = {k: v for k, v in dict(longer["headers"]).items() if k != "Content-Length"}  # type: ignore[call-overload]
    await put_hostile(h, str(longer["upload_url"]), data, headers)
    expected = "UPLOAD_NOT_FOUND" if h.server.enforces_policy else "UPLOAD_TOO_LARGE"
    assert await h.error_code(SAVE, record_vars("photos", "image", str(longer["key"]))) == expected

    shorter = await presign(h, "b.png", "image/png", len(data) + 100)
    headers = {k: v for k, v in dict(shorter["headers"]).items() if k != "Content-Length"}  # type: ignore[call-overload]
    await put_hostile(h, str(shorter["upload_url"]), data, headers)
    expected = "UPLOAD_NOT_FOUND" if h.server.enforces_policy else "UPLOAD_TOO_SMALL"
    assert await h.error_code(SAVE, record_vars("photos", "image", str(shorter["key"]))) == expected
    assert await h.keys() == []


async def test_put_with_another_checksum_is_rejected_when_storage_reports_one(h: Harness) -> None:
    data = files.png(64, 48)
    forged = data[:-1] + bytes([data[-1] ^ 1])  # same length, other bytes
    p = await presign(h, "c.png", "image/png", len(data), b64sha256(data))
    headers = dict(p["headers"])  # type: ignore[call-overload]
    headers["x-amz-checksum-sha256"] = b64sha256(forged)
    # SeaweedFS and S3 refuse this PUT (the checksum header is signed). moto keeps a checksum only when
    # told the algorithm; with it, HEAD (ChecksumMode ENABLED) reports the stored file's SHA-256.
    headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
    await put_hostile(h, str(p["upload_url"]), forged, headers)
    expected = "UPLOAD_NOT_FOUND" if h.server.enforces_policy else "CONTENT_MISMATCH"
    assert await h.error_code(SAVE, record_vars("photos", "image", str(p["key"]))) == expected
    assert await h.keys() == []

    honest = await presign(h, "d.png", "image/png", len(data), b64sha256(data))
    headers = dict(honest["headers"])  # type: ignore[call-overload]
    if not h.server.enforces_policy:
        headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
    assert (await put(str(honest["upload_url"]), data, headers)).status_code == 200
    saved = (await h.ok(SAVE, record_vars("photos", "image", str(honest["key"]))))["record_create"]
    assert saved["upload"]["size"] == len(data)


async def test_put_presign_applies_the_property_limits(h: Harness) -> None:
    async def code(ctype: str, size: int, checksum: str | None = None) -> str:
        variables = {
            "table": "photos",
            "prop": "image",
            "put": {"file_name": "x.png", "content_type": ctype, "size": size, "checksum_sha256": checksum},
        }
        return await h.error_code(PUT_PRESIGN, variables)

    assert await code("image/png", 10240 * 1024 + 1) == "UPLOAD_TOO_LARGE"
    assert await code("image/png", 10) == "UPLOAD_TOO_SMALL"
    assert await code("image/svg+xml", 5000) == "CONTENT_TYPE_NOT_ALLOWED"
    assert await code("text/html", 5000) == "CONTENT_TYPE_NOT_ALLOWED"
    assert await code("image/png", 5000, "not base64!") == "BAD_USER_INPUT"
    assert await code("image/png", 5000, base64.b64encode(b"short").decode()) == "BAD_USER_INPUT"
    # The client may only narrow: a smaller size range given with presign_url still applies.
    narrowed = {
        "table": "photos",
        "prop": "image",
        "presign": {"content_length": {"lte": 2}},
    }
    body = await h.gql(
        PROPERTY_PRESIGN.replace("$presign: PresignUrl)", "$presign: PresignUrl, $put: PutUploadInput)").replace(
            "presign_url: $presign)", "presign_url: $presign, put: $put)"
        ),
        {**narrowed, "put": {"file_name": "x.png", "content_type": "image/png", "size": 5000}},
    )
    assert body["errors"][0]["extensions"]["code"] == "UPLOAD_TOO_LARGE"
