"""The Storage protocol on Azurite, method by method, asserting only what the protocol promises (these
join the contract suite of every backend); Azure's own rules are in test_azure_enforcement.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from app.errors import StorageUnavailable
from app.storage.base import (
    MultipartRejected,
    ObjectHeaders,
    PreconditionFailed,
    Storage,
    UploadGrant,
)
from tests.storage.azure.conftest import Azurite, start_azurite, started

# A disposition as app/policy.py writes it: ASCII only, the UTF-8 name percent-encoded.
DISPOSITION = "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
PDF = ObjectHeaders("application/pdf", DISPOSITION, "private, max-age=60")


@pytest.fixture
def storage(azure_storage: Storage) -> Storage:
    return azure_storage


def key(name: str = "file.bin") -> str:
    return f"cache/photos/image/{uuid.uuid4().hex}/{name}"


async def client_put(storage: Storage, k: str, data: bytes, content_type: str | None = None) -> httpx.Response:
    """Upload as a browser does: PUT the body to the presigned URL with exactly the headers given."""
    grant = UploadGrant(key=k, expires_in=300, max_size=len(data), content_type=content_type, size=len(data))
    request = await storage.presign_put(grant)
    async with httpx.AsyncClient() as http:
        return await http.request(request.method, request.url, content=data, headers=request.headers)


async def put_all(storage: Storage, keys: list[str]) -> None:
    gate = asyncio.Semaphore(16)

    async def put(k: str) -> None:
        async with gate:
            await storage.put(k, b"x", ObjectHeaders("text/plain"))

    await asyncio.gather(*(put(k) for k in keys))


async def test_put_then_head_and_get_give_the_servers_headers_back(storage: Storage) -> None:
    k = key("r\u00e9sum\u00e9 final.pdf")
    before = datetime.now(UTC)
    await storage.put(k, b"%PDF-1.7 body", PDF)
    head = await storage.head(k)
    assert head is not None
    assert (head.size, head.content_type, head.content_disposition, head.cache_control) == (
        13,
        "application/pdf",
        PDF.content_disposition,
        PDF.cache_control,
    )
    assert head.etag and not head.etag.startswith('"')
    assert head.last_modified.tzinfo is not None and head.last_modified >= before.replace(microsecond=0)
    assert await storage.get(k) == b"%PDF-1.7 body"


async def test_a_presigned_put_uploads_with_the_headers_it_names(storage: Storage) -> None:
    k = key("photo.png")
    grant = UploadGrant(
        key=k,
        expires_in=300,
        max_size=100,
        content_type="image/png",
        content_disposition="inline",
        cache_control="max-age=315576000, public",
    )
    request = await storage.presign_put(grant)
    assert request.method == "PUT" and request.fields == {}
    async with httpx.AsyncClient() as http:
        answer = await http.put(request.url, content=b"\x89PNG\r\n\x1a\n", headers=request.headers)
    assert answer.status_code == 201, answer.text
    head = await storage.head(k)
    assert head is not None
    assert (head.size, head.content_type, head.content_disposition, head.cache_control) == (
        8,
        "image/png",
        "inline",
        "max-age=315576000, public",
    )


async def test_missing_objects(storage: Storage) -> None:
    k = key()
    assert await storage.head(k) is None
    assert await storage.probe(k, 16) is None
    assert await storage.list_keys(k) == []
    await storage.delete([k])  # missing is fine


async def test_probe_gives_the_head_and_the_first_bytes_in_one_answer(storage: Storage) -> None:
    k = key()
    data = os.urandom(5000)
    await storage.put(k, data, ObjectHeaders("image/png"))
    probed = await storage.probe(k, 512)
    assert probed is not None
    head, first = probed
    assert head.size == 5000 and head.content_type == "image/png" and first == data[:512]
    assert head == await storage.head(k)
    small = await storage.probe(k, 10_000)
    assert small is not None and small[1] == data


async def test_an_empty_object(storage: Storage) -> None:
    k = key("empty.txt")
    await storage.put(k, b"", ObjectHeaders("text/plain"))
    probed = await storage.probe(k, 512)
    assert probed is not None and probed[0].size == 0 and probed[1] == b""
    assert await storage.get(k) == b""
    assert [c async for c in storage.stream(k)] == []
    assert await storage.read_range(k, 0, 0) == b""


async def test_ranged_reads_and_streaming_in_bounded_chunks(storage: Storage) -> None:
    k = key()
    data = os.urandom(10_000)
    await storage.put(k, data, ObjectHeaders("application/octet-stream"))
    assert await storage.read_range(k, 1000, 24) == data[1000:1024]
    assert await storage.read_range(k, 9990, 100) == data[9990:]
    chunks = [c async for c in storage.stream(k, chunk_size=4096)]
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert b"".join(chunks) == data


async def test_list_keys_stays_within_the_prefix(storage: Storage) -> None:
    token = uuid.uuid4().hex
    mine = [f"cache/t/p/{token}/a.png", f"cache/t/p/{token}/versions/thumb.webp"]
    other = [f"cache/t/p/{token}x/a.png", f"t/p/{token}/a.png"]
    for k in mine + other:
        await storage.put(k, b"x", ObjectHeaders("image/png"))
    assert sorted(await storage.list_keys(f"cache/t/p/{token}/")) == sorted(mine)


async def test_delete_more_than_one_batch(storage: Storage) -> None:
    prefix = f"cache/t/p/{uuid.uuid4().hex}/"
    keys = [f"{prefix}{i:04d}" for i in range(300)]  # Azure's batch limit is 256
    await put_all(storage, keys)
    assert len(await storage.list_keys(prefix)) == 300
    await storage.delete([*keys, f"{prefix}missing"])
    assert await storage.list_keys(prefix) == []


async def test_copy_is_conditional_and_takes_the_servers_headers(storage: Storage) -> None:
    source, destination = key("a.pdf"), key("a.pdf").removeprefix("cache/")
    answer = await client_put(storage, source, b"%PDF verified", "text/html")
    assert answer.status_code == 201
    verified = await storage.head(source)
    assert verified is not None
    copied = await storage.copy(source, destination, if_match=verified.etag, headers=PDF)
    head = await storage.head(destination)
    assert head == copied
    assert (head.size, head.content_type, head.content_disposition, head.cache_control) == (
        13,
        "application/pdf",
        PDF.content_disposition,
        PDF.cache_control,
    )
    assert await storage.get(destination) == b"%PDF verified"


async def test_copy_is_refused_when_the_source_changed_or_vanished(storage: Storage) -> None:
    source, destination = key("a.png"), key("a.png").removeprefix("cache/")
    await client_put(storage, source, b"verified bytes", "image/png")
    verified = await storage.head(source)
    assert verified is not None
    await client_put(storage, source, b"<html>swapped</html>", "image/png")
    with pytest.raises(PreconditionFailed):
        await storage.copy(source, destination, if_match=verified.etag, headers=ObjectHeaders("image/png"))
    assert await storage.head(destination) is None
    await storage.delete([source])
    with pytest.raises(PreconditionFailed):
        await storage.copy(source, destination, if_match=verified.etag, headers=ObjectHeaders("image/png"))


async def test_a_private_object_is_read_through_a_signed_get(storage: Storage) -> None:
    k = key("report.pdf")
    await storage.put(k, b"%PDF private", PDF)
    disposition = 'attachment; filename="x.pdf"'
    now = storage.presign_get_now(k, 60, content_disposition=disposition, content_type="x/y")
    later = await storage.presign_get(k, 60, content_disposition=disposition, content_type="x/y")
    async with httpx.AsyncClient() as http:
        for url in filter(None, (now, later)):
            answer = await http.get(url)
            assert answer.status_code == 200 and answer.content == b"%PDF private"
            assert answer.headers["content-disposition"] == disposition
            assert answer.headers["content-type"] == "x/y"
        assert (await http.get(later.split("?")[0])).status_code in (401, 403, 404)


async def test_urls_map_back_to_keys(storage: Storage) -> None:
    k = "photos/image/0123456789abcdef0123456789abcdef/caf\u00e9 + cr\u00e8me.png"
    url = storage.public_url(k)
    assert "%20" in url and storage.key_from_url(url) == k
    assert storage.key_from_url(url.replace("%C3%A9", "\u00e9").replace("%20", " ")) == k
    signed = storage.presign_get_now(k, 60)
    assert signed is not None and storage.key_from_url(signed) == k
    assert storage.key_from_url("https://elsewhere.example/" + k) is None
    assert storage.key_from_url(k) is None
    for broken in ("http://[::1/x", "http://127.0.0.1:99999/x", "http://%zz/x", "ftp://host/x", ""):
        assert storage.key_from_url(broken) is None


async def test_the_multipart_life_cycle(storage: Storage) -> None:
    k = key("big.bin")
    upload_id = await storage.create_multipart_upload(k, PDF)
    assert await storage.list_parts(k, upload_id) == []
    blocks = [os.urandom(3000), os.urandom(3000), os.urandom(1000)]
    async with httpx.AsyncClient() as http:
        for number, body in enumerate(blocks, 1):
            url = await storage.presign_upload_part(k, upload_id, number, 300)
            assert (await http.put(url, content=body)).status_code == 201
    parts = await storage.list_parts(k, upload_id)
    assert parts is not None and [(p.part_number, p.size) for p in parts] == [(1, 3000), (2, 3000), (3, 1000)]
    etags = [(p.part_number, p.etag) for p in parts]
    assert await storage.head(k) is None  # nothing is committed yet

    with pytest.raises(MultipartRejected):  # a wrong ETag
        await storage.complete_multipart_upload(k, upload_id, [(1, etags[0][1]), (2, "wrong"), (3, etags[2][1])])
    with pytest.raises(MultipartRejected):  # a part that was never uploaded
        await storage.complete_multipart_upload(k, upload_id, [*etags, (4, etags[0][1].replace("1", "4"))])
    assert await storage.head(k) is None and await storage.list_parts(k, upload_id) == parts

    await storage.complete_multipart_upload(k, upload_id, etags)
    head = await storage.head(k)
    assert head is not None and (head.size, head.content_type, head.content_disposition) == (
        7000,
        "application/pdf",
        PDF.content_disposition,
    )
    assert hashlib.sha256(await storage.get(k)).digest() == hashlib.sha256(b"".join(blocks)).digest()
    assert await storage.list_parts(k, upload_id) is None
    assert await storage.abort_multipart_upload(k, upload_id) is False
    with pytest.raises(MultipartRejected):  # completing again
        await storage.complete_multipart_upload(k, upload_id, etags)


async def test_abort_discards_the_parts(storage: Storage) -> None:
    k = key("big.bin")
    upload_id = await storage.create_multipart_upload(k, PDF)
    async with httpx.AsyncClient() as http:
        url = await storage.presign_upload_part(k, upload_id, 1, 300)
        assert (await http.put(url, content=b"part one")).status_code == 201
    assert await storage.list_parts(k, upload_id) is not None
    assert await storage.list_parts(k, "another-id") is None
    assert await storage.abort_multipart_upload(k, "another-id") is False
    assert await storage.abort_multipart_upload(k, upload_id) is True
    assert await storage.list_parts(k, upload_id) is None
    assert await storage.abort_multipart_upload(k, upload_id) is False
    assert await storage.head(k) is None
    assert await storage.list_keys(k) == []


async def test_ping(storage: Storage) -> None:
    await storage.ping()


async def test_an_outage_answers_storage_unavailable(tmp_path_factory: pytest.TempPathFactory) -> None:
    server: Azurite = start_azurite(tmp_path_factory.mktemp("azurite-outage"))
    storage = await started(server.config())
    try:
        k = key()
        await storage.put(k, b"x", ObjectHeaders("text/plain"))
        server.stop()
        calls = [
            storage.ping(),
            storage.head(k),
            storage.probe(k, 10),
            storage.get(k),
            storage.read_range(k, 0, 1),
            storage.list_keys("cache/"),
            storage.put(k, b"y", ObjectHeaders("text/plain")),
            storage.delete([k]),
            storage.copy(k, "x/" + k, if_match="0x1", headers=ObjectHeaders("text/plain")),
            storage.create_multipart_upload(k, PDF),
            storage.list_parts(k, "id"),
            storage.abort_multipart_upload(k, "id"),
            storage.complete_multipart_upload(k, "id", [(1, "x")]),
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert [type(o).__name__ for o in outcomes] == ["StorageUnavailable"] * len(calls)
        assert {o.code for o in outcomes if isinstance(o, StorageUnavailable)} == {"STORAGE_UNAVAILABLE"}
        with pytest.raises(StorageUnavailable):
            [c async for c in storage.stream(k)]
        # Presigning needs no storage: it still works.
        assert (await storage.presign_put(UploadGrant(key=k, expires_in=60, max_size=1))).method == "PUT"
    finally:
        await storage.close()
        server.stop()
