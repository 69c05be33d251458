"""The storage contract suite's fixtures: a started adapter on a bucket of its own, on every backend
(moto, SeaweedFS, Azurite, and TEST_S3_ENDPOINT_URL when set; see tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.settings import Secret
from app.storage.azure import AzureStorage
from app.storage.base import PresignedRequest, Storage
from app.storage.s3 import S3Config, S3Storage
from tests.conftest import StorageServer, remove_buckets

ALL_BACKENDS = pytest.mark.backends("moto", "seaweedfs", "azurite", "external")
# The demo page's origin in the tests: what the bucket's (or account's) CORS rules allow.
PAGE_ORIGIN = "http://127.0.0.1:8000"


def config_for(server: StorageServer, bucket: str, **changes: object) -> S3Config:
    values: dict[str, object] = {
        "bucket": bucket,
        "region": server.region,
        "endpoint_url": server.url,
        "access_key_id": server.access_key_id,
        "secret_access_key": Secret(server.secret_access_key),
        "public_read": server.public_read,
        "conditional_copy": server.conditional_copy,
        **changes,
    }
    return S3Config(**values)  # type: ignore[arg-type]


@pytest.fixture
async def store(storage_server: StorageServer) -> AsyncIterator[Storage]:
    """A started adapter on a fresh bucket (with its CORS rules and, for policy backends, its policy),
    or on Azurite a fresh private container and its public one."""
    if storage_server.name == "azurite":
        config = storage_server.config()
        azure = AzureStorage(config)
        await azure.start()
        try:
            await azure.ensure_bucket((PAGE_ORIGIN,))
            yield azure
        finally:
            await azure.close()
            await remove_buckets(storage_server, [config.container, str(config.public_container)])
        return
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(config_for(storage_server, bucket))
    await storage.start()
    try:
        await storage.ensure_bucket((PAGE_ORIGIN,))
        yield storage
    finally:
        await storage.close()
        if storage_server.name != "moto":
            await remove_buckets(storage_server, [bucket])


async def send(request: PresignedRequest, data: bytes, file_name: str = "file.bin", **fields: str) -> httpx.Response:
    """Send a file the way a browser does with a presigned request (form POST, or PUT with its headers)."""
    async with httpx.AsyncClient(timeout=60) as client:
        if request.method == "PUT":
            return await client.put(request.url, content=data, headers=request.headers)
        form = {**request.fields, **fields}
        return await client.post(request.url, data=form, files={"file": (file_name, data)})


async def anonymous_get(storage: Storage, key: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(storage.public_url(key))


# What storage answers an anonymous read of a private object: S3 403; Azure 403, or 404 to hide it.
REFUSED = (403, 404)
