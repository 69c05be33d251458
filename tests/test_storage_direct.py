"""Storage.head, Storage.read_range and Storage.probe send presigned requests over aiohttp when the
fast signer covers the configuration, instead of botocore's request pipeline. They must answer exactly
as the botocore path does: the same ObjectHead, None for a missing object, STORAGE_UNAVAILABLE for
refusals and outages, after the one retry botocore's standard mode makes. A probe (what a save checks)
is one ranged GET there, where botocore's path takes a HEAD and a GET."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

import pytest

from app.errors import StorageUnavailable
from app.keys import StorageUrls
from app.settings import Settings
from app.storage.s3 import Storage
from tests.conftest import MotoServer, free_port

KEYS = ["docs/a.pdf", "docs/with space/é+%~!'()*.txt", "docs/tiny", "docs/empty", "docs/plain"]


def settings_for(endpoint: str, bucket: str, *, direct: bool) -> Settings:
    env = {
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    if not direct:
        # A configuration the fast signer leaves to botocore: every call takes the botocore path.
        env["S3_ADDRESSING_STYLE"] = "virtual"
    return Settings.from_env(env)


@asynccontextmanager
async def storage(endpoint: str, bucket: str, *, direct: bool) -> AsyncIterator[Storage]:
    settings = settings_for(endpoint, bucket, direct=direct)
    s = Storage(settings, StorageUrls(bucket=bucket, region="us-east-1", endpoint_url=endpoint))
    await s.start()
    try:
        assert (s._http is not None) is direct
        yield s
    finally:
        await s.close()


async def test_direct_answers_equal_botocores(moto: MotoServer) -> None:
    bucket = "direct-heads"
    async with storage(moto.url, bucket, direct=True) as fast, storage(moto.url, bucket, direct=False) as boto:
        await fast.ensure_bucket(())
        s3 = boto.client
        await s3.put_object(Bucket=bucket, Key=KEYS[0], Body=b"%PDF-1.4 " + b"x" * 100, ContentType="application/pdf",
                            ContentDisposition='attachment; filename="a.pdf"')  # fmt: skip
        await s3.put_object(Bucket=bucket, Key=KEYS[1], Body=b"hello", ContentType="text/plain; charset=utf-8")
        await s3.put_object(Bucket=bucket, Key=KEYS[2], Body=b"\x89PNG", ContentType="image/png")
        await s3.put_object(Bucket=bucket, Key=KEYS[3], Body=b"", ContentType="application/octet-stream")
        await s3.put_object(Bucket=bucket, Key=KEYS[4], Body=b"no type given")
        for key in KEYS:
            got, expected = await fast.head(key), await boto.head(key)
            assert got == expected and got is not None, key
            assert got.last_modified.tzinfo is not None
            if got.size:
                assert await fast.read_range(key, 16) == await boto.read_range(key, 16), key
            else:  # a range of an empty object is refused (416); saves never ask for one
                for s in (fast, boto):
                    with pytest.raises(StorageUnavailable):
                        await s.read_range(key, 16)
            # The probe: the same head and the first bytes, on both paths.
            expected_first = await boto.read_range(key, 16) if expected.size else b""
            assert await fast.probe(key, 16) == (expected, expected_first), key
            assert await boto.probe(key, 16) == (expected, expected_first), key
            # A range longer than the object: all of it.
            assert await fast.probe(key, 4096) == (expected, await boto.read_range(key, 4096) if expected.size else b"")
        assert await fast.head("docs/missing") is None
        assert await boto.head("docs/missing") is None
        assert await fast.probe("docs/missing", 16) is None
        assert await boto.probe("docs/missing", 16) is None
        # A GET of a missing object is an outage to the caller, on both paths.
        for s in (fast, boto):
            with pytest.raises(StorageUnavailable):
                await s.read_range("docs/missing", 16)


class LoopbackServer:
    """An HTTP/1.1 server on a free loopback port; `answer` gives the raw reply to each request."""

    def __init__(self) -> None:
        self.port = free_port()

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.server.close()
        await self.server.wait_closed()

    def answer(self, request: bytes) -> bytes:
        raise NotImplementedError

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await reader.readuntil(b"\r\n\r\n"):
                writer.write(self.answer(request))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class FakeStorage(LoopbackServer):
    """Answers every request with one status and counts the requests."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status
        self.requests = 0

    def answer(self, request: bytes) -> bytes:
        self.requests += 1
        body = b"<Error><Code>Refused</Code></Error>"
        head = f"HTTP/1.1 {self.status} X\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + (b"" if request.startswith(b"HEAD ") else body)


@pytest.mark.parametrize(("status", "attempts"), [(403, 1), (400, 1), (503, 2), (500, 2), (429, 2)])
async def test_refusals_and_server_errors_are_storage_unavailable(status: int, attempts: int) -> None:
    """Both paths fail with STORAGE_UNAVAILABLE; the direct one retries server errors and throttling
    once, as botocore's standard mode does. (botocore also re-sends a HEAD answered 400, looking for
    the bucket's region: the direct path needs the configured region to be right in the first place,
    as every presigned URL handed to browsers does.)"""
    async with FakeStorage(status) as server:
        endpoint = f"http://127.0.0.1:{server.port}"
        for direct in (True, False):
            async with storage(endpoint, "bucket", direct=direct) as s:
                for call in (lambda: s.head("k"), lambda: s.read_range("k", 16), lambda: s.probe("k", 16)):
                    server.requests = 0
                    with pytest.raises(StorageUnavailable):
                        await call()
                    if direct:
                        assert server.requests == attempts, status
                    else:
                        assert server.requests >= 1


async def test_unreachable_storage_is_storage_unavailable() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with storage(endpoint, "bucket", direct=True) as s:
        with pytest.raises(StorageUnavailable):
            await s.head("k")
        with pytest.raises(StorageUnavailable):
            await s.read_range("k", 16)
        with pytest.raises(StorageUnavailable):
            await s.probe("k", 16)


class ObjectServer(LoopbackServer):
    """Serves one object (`body`), honouring Range or ignoring it like a server that does not do
    ranges; records the requests it was sent."""

    def __init__(self, body: bytes, *, ranges: bool) -> None:
        super().__init__()
        self.body = body
        self.ranges = ranges
        self.requests: list[str] = []

    def answer(self, request: bytes) -> bytes:
        method = request.split(b" ", 1)[0].decode()
        wanted = re.search(rb"(?im)^range: bytes=0-(\d+)\r$", request)
        self.requests.append(f"{method} {'range' if wanted else 'whole'}")
        headers = 'Content-Type: image/png\r\nETag: "abc"\r\nLast-Modified: Sat, 21 Nov 2026 10:00:00 GMT\r\n'
        if method == "GET" and wanted and self.ranges:
            payload = self.body[: int(wanted[1]) + 1]
            span = f"bytes 0-{len(payload) - 1}/{len(self.body)}"
            head = f"HTTP/1.1 206 Partial\r\n{headers}Content-Range: {span}\r\n"
        else:
            head, payload = f"HTTP/1.1 200 OK\r\n{headers}", self.body
        return f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + (payload if method == "GET" else b"")


@pytest.mark.parametrize("ranges", [True, False])
async def test_a_probe_is_one_request_and_reads_no_more_than_it_needs(ranges: bool) -> None:
    body = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4096  # 1 MiB and a bit
    async with ObjectServer(body, ranges=ranges) as server:
        async with storage(f"http://127.0.0.1:{server.port}", "bucket", direct=True) as s:
            probed = await s.probe("k", 512)
    assert probed is not None
    head, first = probed
    assert head.size == len(body) and head.content_type == "image/png" and head.etag == "abc"
    assert head.last_modified.tzinfo is not None
    assert first == body[:512]
    # One ranged GET: no HEAD first. (A server that ignores the range sends the whole object;
    # the probe reads its first bytes and drops the connection.)
    assert server.requests == ["GET range"]
