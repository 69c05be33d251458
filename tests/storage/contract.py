"""The storage contract suite's fixtures: a started adapter on a bucket of its own, on every backend
(moto, SeaweedFS, and TEST_S3_ENDPOINT_URL when set; see tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.settings import Secret
from app.storage.base import PresignedRequest, Storage
from app.storage.s3 import S3Config, S3Storage
from tests.conftest import StorageServer, remove_buckets

ALL_BACKENDS = pytest.mark.backends("moto", "seaweedfs", "external")


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
async def store(storage_server: StorageServer) -> AsyncIterator[S3Storage]:
    """An S3Storage on a fresh bucket (with its CORS rules and, for policy backends, its policy)."""
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(config_for(storage_server, bucket))
    await storage.start()
    try:
        await storage.ensure_bucket(("http://127.0.0.1:8000",))
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
