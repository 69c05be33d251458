"""Presigned PUT over HTTP against the moto server: the exact type, length and checksum are signed
and re-checked at confirm. moto does not enforce SigV4 signatures on PUT (real S3 refuses a PUT whose
signed headers differ), so the tests that send other bytes show what the confirm-time checks catch."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

from tests import files
from tests.conftest import Harness
from tests.gql import PROPERTY_PRESIGN
from tests.large import PUT_PRESIGN, SAVE, download, put, record_vars


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
    assert key.startswith("photos/image/") and key.endswith("/ünïcode cat.png")
    assert p["content_types"] == ["image/png"]
    headers = p["headers"]
    assert isinstance(headers, dict)
    assert headers == {
        "Content-Type": "image/png",
        "Content-Length": str(len(data)),
        "Content-Disposition": headers["Content-Disposition"],
        "x-amz-acl": "public-read",
        "Cache-Control": "max-age=315576000, public",
        "x-amz-checksum-sha256": b64sha256(data),
    }
    assert headers["Content-Disposition"].startswith("inline; filename=")
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


async def test_put_with_another_type_is_rejected_at_confirm_and_deleted(h: Harness) -> None:
    data = files.jpeg()
    p = await presign(h, "cat.png", "image/png", len(data))
    headers = dict(p["headers"])  # type: ignore[call-overload]
    headers["Content-Type"] = "image/jpeg"  # real S3 refuses this PUT (signature); moto stores it
    assert (await put(str(p["upload_url"]), data, headers)).status_code == 200
    code = await h.error_code(SAVE, record_vars("photos", "image", str(p["key"])))
    assert code == "CONTENT_TYPE_NOT_ALLOWED"
    assert str(p["key"]) not in await h.keys()


async def test_put_with_another_length_is_rejected_at_confirm(h: Harness) -> None:
    data = files.png()
    longer = await presign(h, "a.png", "image/png", len(data) - 100)
    headers = {k: v for k, v in dict(longer["headers"]).items() if k != "Content-Length"}  # type: ignore[call-overload]
    assert (await put(str(longer["upload_url"]), data, headers)).status_code == 200
    assert await h.error_code(SAVE, record_vars("photos", "image", str(longer["key"]))) == "UPLOAD_TOO_LARGE"

    shorter = await presign(h, "b.png", "image/png", len(data) + 100)
    headers = {k: v for k, v in dict(shorter["headers"]).items() if k != "Content-Length"}  # type: ignore[call-overload]
    assert (await put(str(shorter["upload_url"]), data, headers)).status_code == 200
    assert await h.error_code(SAVE, record_vars("photos", "image", str(shorter["key"]))) == "UPLOAD_TOO_SMALL"
    assert await h.keys() == []


async def test_put_with_another_checksum_is_rejected_when_storage_reports_one(h: Harness) -> None:
    data = files.png(64, 48)
    forged = data[:-1] + bytes([data[-1] ^ 1])  # same length, other bytes
    p = await presign(h, "c.png", "image/png", len(data), b64sha256(data))
    headers = dict(p["headers"])  # type: ignore[call-overload]
    headers["x-amz-checksum-sha256"] = b64sha256(forged)
    # Real S3 refuses this PUT (the checksum header is signed). moto keeps a checksum only when told
    # the algorithm; with it, HEAD (ChecksumMode ENABLED) reports the stored file's SHA-256.
    headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
    assert (await put(str(p["upload_url"]), forged, headers)).status_code == 200
    assert await h.error_code(SAVE, record_vars("photos", "image", str(p["key"]))) == "CONTENT_MISMATCH"
    assert await h.keys() == []

    honest = await presign(h, "d.png", "image/png", len(data), b64sha256(data))
    headers = dict(honest["headers"]) | {"x-amz-sdk-checksum-algorithm": "SHA256"}  # type: ignore[call-overload]
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
