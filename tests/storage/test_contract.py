"""One contract for every storage backend (app/storage/base.py's Storage), run against moto, SeaweedFS,
Azurite and any endpoint named by TEST_S3_ENDPOINT_URL, like Strawberry runs one HTTP suite against
every integration. What the use cases rely on, said once: round trips keep the server's headers, public
objects are anyone's to read and private ones only through a signed GET, probes and ranged reads,
streams, empty and missing objects, conditional copies, the multipart life cycle, batched deletes,
listing within a prefix, presigned uploads to quarantine, and outages answering STORAGE_UNAVAILABLE.
Where backends differ in what they answer (status codes, ETag forms), the test says which."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.errors import StorageUnavailable
from app.storage import azure as azure_module
from app.storage.azure import AzureStorage
from app.storage.base import (
    FILENAME_VAR,
    MultipartRejected,
    ObjectHeaders,
    PreconditionFailed,
    Storage,
    UploadGrant,
)
from app.storage.s3 import S3Storage
from tests.conftest import StorageServer, free_port
from tests.storage.contract import ALL_BACKENDS, REFUSED, anonymous_get, config_for, send, store

pytestmark = ALL_BACKENDS
__all__ = ["store"]  # the fixture, imported for pytest

MIB = 1024**2
# A disposition as app/policy.py writes it: ASCII only, the UTF-8 name percent-encoded.
DISPOSITION = "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
PUBLIC = ObjectHeaders("image/png", 'inline; filename="a.png"', "max-age=60, public", public=True)
PRIVATE = ObjectHeaders("application/pdf", DISPOSITION, "private, max-age=60", public=False)


def blob(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


async def test_round_trip_keeps_the_servers_headers(store: Storage) -> None:
    data = blob(3000)
    await store.put("t/a.png", data, PUBLIC)
    head = await store.head("t/a.png")
    assert head is not None
    assert (head.size, head.content_type, head.content_disposition) == (3000, "image/png", 'inline; filename="a.png"')
    assert head.cache_control == "max-age=60, public"
    assert head.etag and not head.etag.startswith('"')
    if isinstance(store, S3Storage):
        assert head.etag == hashlib.md5(data).hexdigest()
    assert head.last_modified.tzinfo is not None
    assert abs(head.last_modified - datetime.now(UTC)) < timedelta(minutes=5)
    assert await store.get("t/a.png") == data
    # Public objects are anyone's to read; private ones only through a signed GET, which carries the
    # disposition and type it names.
    await store.put("t/résumé final.pdf", b"%PDF-1.4 private", PRIVATE)
    head = await store.head("t/résumé final.pdf")
    assert head is not None and (head.content_disposition, head.cache_control) == (DISPOSITION, "private, max-age=60")
    public = await anonymous_get(store, "t/a.png")
    assert public.status_code == 200 and public.content == data
    assert (await anonymous_get(store, "t/résumé final.pdf")).status_code in REFUSED
    disposition = 'attachment; filename="x.pdf"'
    now = store.presign_get_now("t/résumé final.pdf", 60, content_disposition=disposition, content_type="x/y")
    later = await store.presign_get("t/résumé final.pdf", 60, content_disposition=disposition, content_type="x/y")
    async with httpx.AsyncClient() as client:
        for signed in filter(None, (now, later)):
            got = await client.get(signed)
            assert got.status_code == 200 and got.content == b"%PDF-1.4 private"
            assert (got.headers["content-disposition"], got.headers["content-type"]) == (disposition, "x/y")
        assert (await client.get(later.split("?", 1)[0])).status_code in REFUSED
    # The URL forms map back to the key.
    assert store.key_from_url(store.public_url("t/a b+é.png")) == "t/a b+é.png"
    assert store.key_from_url(later) == "t/résumé final.pdf"
    assert store.key_from_url("https://elsewhere.example.com/t/a.png") is None


async def test_probe_and_ranged_reads(store: Storage) -> None:
    data = blob(5000, seed=1)
    await store.put("p/x.bin", data, PRIVATE)
    probed = await store.probe("p/x.bin", 512)
    assert probed is not None
    head, first = probed
    assert head == await store.head("p/x.bin") and first == data[:512]
    assert await store.probe("p/x.bin", 10_000) == (head, data)
    assert await store.read_range("p/x.bin", 0, 16) == data[:16]
    assert await store.read_range("p/x.bin", 1000, 100) == data[1000:1100]
    assert await store.read_range("p/x.bin", 4990, 100) == data[4990:]


async def test_stream_reads_the_object_in_bounded_chunks(store: Storage) -> None:
    data = blob(3 * MIB + 17, seed=2)
    await store.put("s/big.bin", data, PRIVATE)
    chunks = [chunk async for chunk in store.stream("s/big.bin", chunk_size=MIB)]
    assert b"".join(chunks) == data
    assert all(0 < len(c) <= MIB for c in chunks)


async def test_conditional_stream_reads_only_the_verified_object(store: Storage) -> None:
    """What a scan reads: the object with the ETag the save verified, or nothing."""
    data = blob(2 * MIB + 5, seed=5)
    await store.put("s/scan.bin", data, PRIVATE)
    head = await store.head("s/scan.bin")
    assert head is not None
    for etag in (head.etag, f'"{head.etag}"'):
        assert b"".join([c async for c in store.stream("s/scan.bin", chunk_size=MIB, if_match=etag)]) == data
    await store.put("s/scan.bin", blob(len(data), seed=6), PRIVATE)
    with pytest.raises(PreconditionFailed):
        async for _ in store.stream("s/scan.bin", if_match=head.etag):
            pass
    with pytest.raises(PreconditionFailed):
        async for _ in store.stream("s/gone.bin", if_match=head.etag):
            pass


async def test_an_empty_object(store: Storage) -> None:
    await store.put("e/empty", b"", PRIVATE)
    head = await store.head("e/empty")
    assert head is not None and head.size == 0
    assert await store.probe("e/empty", 512) == (head, b"")
    assert await store.get("e/empty") == b""
    assert [c async for c in store.stream("e/empty")] == []


async def test_missing_keys(store: Storage) -> None:
    assert await store.head("nope/x") is None
    assert await store.probe("nope/x", 16) is None
    assert await store.list_keys("nope/") == []
    await store.delete(["nope/x", "nope/y", "cache/nope/z"])  # missing objects are fine
    for size in (None, 10):
        with pytest.raises(PreconditionFailed):
            await store.copy(
                "nope/x", "nope/y", if_match="0123456789abcdef0123456789abcdef", headers=PRIVATE, size=size
            )
    assert await store.list_parts("nope/x", "no-such-upload") is None
    with pytest.raises(StorageUnavailable):
        await store.get("nope/x")
    with pytest.raises(StorageUnavailable):
        [c async for c in store.stream("nope/x")]


@pytest.mark.parametrize(
    ("in_parts", "sized"), [(False, False), (False, True), (True, True)], ids=["copy", "sized-copy", "part-copies"]
)
async def test_conditional_copy(
    store: Storage, storage_server: StorageServer, monkeypatch: pytest.MonkeyPatch, in_parts: bool, sized: bool
) -> None:
    """`sized`: the caller knows the source's size (as a save does), so storage alone checks the ETag."""
    if in_parts:
        # Objects above the single-copy limit (S3) or one copy block (Azure) are copied part by part
        # (block by block), each part conditional too.
        if isinstance(store, S3Storage):
            store.config = config_for(storage_server, store.bucket, max_copy_size=5 * MIB, copy_part_size=5 * MIB)
        else:
            monkeypatch.setattr(azure_module, "COPY_BLOCK", 5 * MIB)
    source = blob(11 * MIB if in_parts else 4096, seed=3)
    await store.put("cache/c/src", source, ObjectHeaders("binary/octet-stream", "attachment"))
    head = await store.head("cache/c/src")
    assert head is not None
    size = len(source) if sized else None
    copied = await store.copy("cache/c/src", "c/dst", if_match=head.etag, headers=PUBLIC, size=size)
    assert copied.size == len(source)
    stored = await store.head("c/dst")
    assert stored is not None and stored.content_type == "image/png" and stored.size == len(source)
    assert stored.content_disposition == 'inline; filename="a.png"' and stored.cache_control == "max-age=60, public"
    assert copied.etag == stored.etag
    assert await store.get("c/dst") == source
    assert (await anonymous_get(store, "c/dst")).status_code == 200
    # Refused once the source changed: the ETag no longer matches (quoted or not, as clients send it).
    await store.put("cache/c/src", blob(len(source), seed=4), ObjectHeaders("binary/octet-stream"))
    for etag in (head.etag, f'"{head.etag}"'):
        with pytest.raises(PreconditionFailed):
            await store.copy("cache/c/src", "c/other", if_match=etag, headers=PRIVATE, size=size)
    assert await store.head("c/other") is None
    assert await store.get("c/dst") == source
    # A private copy is nobody's to read anonymously.
    latest = await store.head("cache/c/src")
    assert latest is not None
    await store.copy("cache/c/src", "c/private", if_match=latest.etag, headers=PRIVATE, size=size)
    assert (await anonymous_get(store, "c/private")).status_code in REFUSED


async def test_multipart_life_cycle(store: Storage) -> None:
    key = "cache/m/film.mp4"
    upload_id = await store.create_multipart_upload(key, ObjectHeaders("video/mp4", "attachment"))
    assert await store.list_parts(key, upload_id) == []
    parts = {1: blob(5 * MIB, seed=5), 2: blob(5 * MIB, seed=6), 3: blob(MIB, seed=7)}
    answered: dict[int, str | None] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for number, chunk in parts.items():
            url = await store.presign_upload_part(key, upload_id, number, 600)
            response = await client.put(url, content=chunk)
            assert response.status_code in (200, 201), response.text
            answered[number] = response.headers.get("ETag")
    assert await store.head(key) is None  # nothing is assembled yet
    listed = await store.list_parts(key, upload_id)
    assert listed is not None and [(p.part_number, p.size) for p in listed] == [(1, 5 * MIB), (2, 5 * MIB), (3, MIB)]
    etags = {p.part_number: p.etag for p in listed}
    if isinstance(store, AzureStorage):
        assert answered == {1: None, 2: None, 3: None}  # Put Block answers no ETag: list_parts tells it
    else:
        assert {n: str(e).strip('"') for n, e in answered.items()} == etags
    with pytest.raises(MultipartRejected) as refused:
        await store.complete_multipart_upload(key, upload_id, [(1, etags[1]), (2, "0" * 32), (3, etags[3])])
    assert refused.value.code in ("InvalidPart", "InvalidPartOrder", "BadDigest")
    with pytest.raises(MultipartRejected):  # a part that was never uploaded
        await store.complete_multipart_upload(key, upload_id, [*sorted(etags.items()), (4, etags[1])])
    assert await store.head(key) is None and await store.list_parts(key, upload_id) == listed
    await store.complete_multipart_upload(key, upload_id, sorted(etags.items()))
    head = await store.head(key)
    assert head is not None and head.size == 11 * MIB and head.content_type == "video/mp4"
    assert await store.get(key) == parts[1] + parts[2] + parts[3]
    assert await store.list_parts(key, upload_id) is None  # completed: no longer an open upload

    aborted = await store.create_multipart_upload("cache/m/aborted", ObjectHeaders("video/mp4"))
    async with httpx.AsyncClient(timeout=60) as client:
        url = await store.presign_upload_part("cache/m/aborted", aborted, 1, 600)
        assert (await client.put(url, content=b"part one")).status_code in (200, 201)
    assert await store.list_parts("cache/m/aborted", "another-id") is None
    assert await store.abort_multipart_upload("cache/m/aborted", aborted) is True
    assert await store.list_parts("cache/m/aborted", aborted) is None
    assert await store.head("cache/m/aborted") is None
    assert await store.list_keys("cache/m/aborted") == []


async def test_deleting_more_than_a_thousand_keys(store: Storage) -> None:
    keys = [f"d/{i:05d}" for i in range(1001)]
    gate = asyncio.Semaphore(32)

    async def put(key: str) -> None:
        async with gate:
            await store.put(key, b"x", PRIVATE)

    await asyncio.gather(*(put(k) for k in keys))
    assert len(await store.list_keys("d/")) == 1001
    await store.delete(keys)
    assert await store.list_keys("d/") == []


async def test_listing_stays_within_its_prefix(store: Storage) -> None:
    for key in ("l/a/1", "l/a/2", "l/a/sub/3", "l/ab/4", "l/b/5"):
        await store.put(key, b"x", PRIVATE)
    await store.put("l/a/public", b"x", PUBLIC)
    assert sorted(await store.list_keys("l/a/")) == ["l/a/1", "l/a/2", "l/a/public", "l/a/sub/3"]
    assert await store.list_keys("l/ab/") == ["l/ab/4"]
    await store.delete(["l/a/public"])
    assert await store.head("l/a/public") is None


async def test_presigned_uploads_store_exactly_the_grant_privately_in_quarantine(
    store: Storage, storage_server: StorageServer
) -> None:
    if store.capabilities.form_post:
        grant = UploadGrant(
            key="cache/u/" + FILENAME_VAR,
            expires_in=300,
            max_size=10_000,
            content_type="image/png",
            content_disposition="attachment",
        )
        post = await store.presign_post(grant)
        assert post.method == "POST" and post.fields["acl"] == "private"
        response = await send(post, b"\x89PNG 1234", "a b.png")
        assert response.status_code == 201, response.text
        if storage_server.name != "moto":  # moto answers a form POST with neither ETag nor Location
            assert "ETag" in response.headers
        head = await store.head("cache/u/a b.png")
        assert head is not None and head.content_type == "image/png" and head.content_disposition == "attachment"
        assert (await anonymous_get(store, "cache/u/a b.png")).status_code in REFUSED
    data = blob(2048, seed=7)
    put = await store.presign_put(
        UploadGrant(
            key="cache/u/b.pdf",
            expires_in=300,
            max_size=2048,
            min_size=2048,
            content_type="application/pdf",
            size=2048,
            content_disposition="attachment",
        )
    )
    assert put.method == "PUT" and put.fields == {} and put.headers["Content-Type"] == "application/pdf"
    response = await send(put, data)
    assert response.status_code in (200, 201), response.text
    assert "ETag" in response.headers
    assert await store.get("cache/u/b.pdf") == data
    head = await store.head("cache/u/b.pdf")
    assert head is not None and (head.content_type, head.content_disposition) == ("application/pdf", "attachment")
    assert head.etag == response.headers["ETag"].strip('"')
    assert (await anonymous_get(store, "cache/u/b.pdf")).status_code in REFUSED


async def test_ping(store: Storage) -> None:
    await store.ping()


async def test_an_outage_is_storage_unavailable(storage_server: StorageServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    if storage_server.name == "azurite":
        down: Storage = AzureStorage(storage_server.config(endpoint=dead + "/devstoreaccount1"))
    else:
        down = S3Storage(config_for(storage_server, "contract-down", endpoint_url=dead))
    await down.start()
    try:
        calls = [
            down.ping(),
            down.head("k"),
            down.probe("k", 16),
            down.read_range("k", 0, 16),
            down.get("k"),
            down.list_keys("k/"),
            down.put("k", b"x", PRIVATE),
            down.copy("k", "l", if_match="abc", headers=PRIVATE),
            down.copy("k", "l", if_match="abc", headers=PRIVATE, size=1),
            down.delete(["k"]),
            down.create_multipart_upload("k", PRIVATE),
            down.list_parts("k", "id"),
            down.complete_multipart_upload("k", "id", [(1, "x")]),
            down.abort_multipart_upload("k", "id"),
            down.ensure_bucket(()),
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert [type(o).__name__ for o in outcomes] == ["StorageUnavailable"] * len(calls), outcomes
        with pytest.raises(StorageUnavailable):
            async for _ in down.stream("k"):
                pass
        # Signing is local computation: it goes on.
        grant = UploadGrant(key="cache/k", expires_in=60, max_size=1, content_type="a/b", size=1)
        assert (await down.presign_put(grant)).url
        assert await down.presign_get("k", 60)
    finally:
        await down.close()
