"""Storage enforces what a presign allows, by itself: a form POST over the size, of another type, to
another key, with a tampered or expired policy, and a PUT whose bytes differ from what was signed are
refused before anything is stored. Runs on the backends that enforce policies (SeaweedFS, and an
external endpoint unless TEST_S3_ENFORCES_POLICY=false); moto enforces none of it, which is why the
save checks everything again (tests/test_hostile.py)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from app.sigv4 import PresignedGetSigner
from app.storage.base import FILENAME_VAR, PresignedRequest, UploadGrant
from app.storage.s3 import S3Storage
from tests.conftest import StorageServer
from tests.storage.contract import send, store

pytestmark = pytest.mark.backends("seaweedfs", "external")
__all__ = ["store"]  # the fixture, imported for pytest

KEY = "cache/photos/image/" + "ab" * 16 + "/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 200


@pytest.fixture(autouse=True)
def enforcing(storage_server: StorageServer) -> None:
    if not storage_server.enforces_policy:
        pytest.skip(f"{storage_server.name} does not enforce POST policies")


def grant(**changes: object) -> UploadGrant:
    values: dict[str, object] = {
        "key": KEY + FILENAME_VAR,
        "expires_in": 300,
        "max_size": 1024,
        "min_size": 1,
        "content_type": "image/png",
        "content_disposition": "attachment",
    }
    return UploadGrant(**{**values, **changes})  # type: ignore[arg-type]


async def assert_refused(store: S3Storage, response_status: int, text: str) -> None:
    assert response_status in (400, 403), text
    assert await store.list_keys(KEY) == []


async def test_the_allowed_file_is_stored(store: S3Storage) -> None:
    response = await send(await store.presign_post(grant()), PNG, "a.png")
    assert response.status_code == 201, response.text
    assert await store.list_keys(KEY) == [KEY + "a.png"]


async def test_oversize_and_undersize_are_refused(store: S3Storage) -> None:
    post = await store.presign_post(grant())
    big = await send(post, PNG + b"\0" * 2000, "big.png")
    await assert_refused(store, big.status_code, big.text)
    empty = await send(post, b"", "empty.png")
    await assert_refused(store, empty.status_code, empty.text)


async def test_another_type_is_refused(store: S3Storage) -> None:
    post = await store.presign_post(grant())
    response = await send(post, PNG, "a.png", **{"Content-Type": "text/html"})
    await assert_refused(store, response.status_code, response.text)
    # A family only: the client's type must start with it.
    family_grant = grant(content_type=None, client_sets_content_type=True, content_type_prefix="image/")
    family = await store.presign_post(family_grant)
    response = await send(family, PNG, "a.png", **{"Content-Type": "text/html"})
    await assert_refused(store, response.status_code, response.text)
    response = await send(family, PNG, "a.png", **{"Content-Type": "image/png"})
    assert response.status_code == 201, response.text


async def test_another_key_or_acl_is_refused(store: S3Storage) -> None:
    post = await store.presign_post(grant(key=KEY + "a.png"))
    permanent = "photos/image/" + "ab" * 16 + "/a.png"
    for field, value in (("key", KEY + "other.png"), ("key", permanent), ("acl", "public-read")):
        response = await send(post, PNG, "a.png", **{field: value})
        assert response.status_code in (400, 403), (field, value, response.text)
    assert await store.list_keys("") == []


async def test_a_tampered_policy_is_refused(store: S3Storage) -> None:
    post = await store.presign_post(grant())
    policy = json.loads(base64.b64decode(post.fields["policy"]))
    for condition in policy["conditions"]:
        if isinstance(condition, list) and condition[0] == "content-length-range":
            condition[2] = 10**9
    tampered = base64.b64encode(json.dumps(policy).encode()).decode()
    response = await send(post, PNG + b"\0" * 2000, "big.png", policy=tampered)
    await assert_refused(store, response.status_code, response.text)


async def test_an_expired_policy_is_refused(store: S3Storage, storage_server: StorageServer) -> None:
    signer = PresignedGetSigner(
        access_key=storage_server.access_key_id,
        secret_key=storage_server.secret_access_key,
        session_token=None,
        region=storage_server.region,
        endpoint_url=storage_server.url,
        bucket=store.bucket,
    )
    # Signed an hour ago for ten minutes: expired fifty minutes ago.
    url, fields = signer.presign_post(
        KEY + FILENAME_VAR, {}, [["content-length-range", 1, 1024]], 600, now=datetime.now(UTC) - timedelta(hours=1)
    )
    response = await send(PresignedRequest("POST", url, fields=fields), PNG, "late.png")
    await assert_refused(store, response.status_code, response.text)


async def test_a_put_of_other_bytes_is_refused(store: S3Storage) -> None:
    data = PNG + b"\1" * 100
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    put = await store.presign_put(
        grant(key=KEY + "p.png", size=len(data), min_size=len(data), max_size=len(data), checksum_sha256=digest)
    )
    other = data[:-1] + b"\2"  # same length, other bytes: the signed checksum does not match
    response = await send(put, other)
    await assert_refused(store, response.status_code, response.text)
    for header, value in (("Content-Type", "text/html"), ("x-amz-acl", "public-read")):
        changed = PresignedRequest("PUT", put.url, headers={**put.headers, header: value})
        response = await send(changed, data)
        await assert_refused(store, response.status_code, response.text)
    assert (await send(put, data)).status_code == 200
    assert await store.list_keys(KEY) == [KEY + "p.png"]
