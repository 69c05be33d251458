"""What Azure (here Azurite) itself enforces on the SAS URLs the adapter hands out, and what it does
not: the reasons the save-time checks and the promotion exist. Also what is Azure's own in the adapter:
the two containers (private, and public for public files), block ids and the multipart marker,
uncommitted blocks, copies in blocks."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from app.errors import StorageUnavailable
from app.storage import azure as azure_module
from app.storage.azure import AzureStorage, encoded_block_id
from app.storage.base import ObjectHeaders, UploadGrant
from tests.conftest import AzuriteServer, remove_buckets
from tests.storage.azure.conftest import PAGE_ORIGIN, started

BLOCK_BLOB = {"x-ms-blob-type": "BlockBlob"}


def key(name: str = "photo.png") -> str:
    return f"cache/photos/image/{uuid.uuid4().hex}/{name}"


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def presigned(storage: AzureStorage, k: str, expires_in: int = 300) -> tuple[str, dict[str, str]]:
    grant = UploadGrant(key=k, expires_in=expires_in, max_size=1024, content_type="image/png")
    request = await storage.presign_put(grant)
    return request.url, request.headers


async def put(url: str, headers: dict[str, str], body: bytes = b"\x89PNG\r\n\x1a\n") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.put(url, content=body, headers=headers)


async def test_a_presigned_put_is_for_create_and_write_of_one_blob_until_expiry(azure_storage: AzureStorage) -> None:
    k = key()
    url, headers = await presigned(azure_storage, k)
    assert headers == {"x-ms-blob-type": "BlockBlob", "Content-Type": "image/png"}
    query = dict(parse_qsl(urlsplit(url).query))
    assert (query["sp"], query["sr"]) == ("cw", "b")  # create and write, of this blob only
    assert "srt" not in query and "ss" not in query  # a service SAS, not an account SAS
    assert (await put(url, headers)).status_code == 201


async def test_storage_refuses_expired_tampered_read_only_and_other_blob_sas(azure_storage: AzureStorage) -> None:
    k = key()
    url, headers = await presigned(azure_storage, k)
    expired, _ = await presigned(azure_storage, k, expires_in=-60)
    later = dict(parse_qsl(urlsplit(url).query))["se"].replace("20", "21", 1)  # a century more
    other_url, _ = await presigned(azure_storage, key())
    read_only = azure_storage.presign_get_now(k, 300)
    assert read_only is not None
    refused = {
        "expired": expired,
        "expiry pushed back": with_query(url, se=later),
        "signature changed": with_query(url, sig=base64.b64encode(b"x" * 32).decode()),
        "permissions widened": with_query(url, sp="racwd"),
        "read-only SAS": read_only,
        "another blob's SAS": other_url.split("?")[0] + "?" + urlsplit(url).query,
        "no SAS at all": url.split("?")[0],
    }
    for what, bad in refused.items():
        answer = await put(bad, headers)
        assert answer.status_code in (401, 403, 404), (what, answer.status_code, answer.text)
    assert await azure_storage.head(k) is None
    assert await azure_storage.head(urlsplit(other_url).path.split("/", 3)[3]) is None


async def test_storage_checks_content_md5(azure_storage: AzureStorage) -> None:
    k = key()
    url, headers = await presigned(azure_storage, k)
    body = b"\x89PNG\r\n\x1a\n"
    wrong = base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode()
    answer = await put(url, {**headers, "Content-MD5": wrong}, body)
    assert answer.status_code == 400 and answer.headers["x-ms-error-code"] == "Md5Mismatch"
    assert await azure_storage.head(k) is None
    right = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    assert (await put(url, {**headers, "Content-MD5": right}, body)).status_code == 201


async def test_a_sas_binds_neither_size_nor_type(azure_storage: AzureStorage) -> None:
    """What Azure lets through is what the save-time checks and the promotion stop."""
    k = key()
    url, headers = await presigned(azure_storage, k)  # granted: 1 KiB of image/png
    answer = await put(url, {**headers, "Content-Type": "text/html"}, b"<html>" + b"x" * 4096)
    assert answer.status_code == 201
    head = await azure_storage.head(k)
    assert head is not None and (head.size, head.content_type) == (4102, "text/html")


async def test_cors_preflight_is_honoured_for_the_demo_pages_origin(azure_storage: AzureStorage) -> None:
    k = key()
    url, headers = await presigned(azure_storage, k)
    preflight = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": ",".join(h.lower() for h in headers),
    }
    async with httpx.AsyncClient() as http:
        allowed = await http.options(url, headers={"Origin": PAGE_ORIGIN, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == PAGE_ORIGIN
        assert "PUT" in allowed.headers["access-control-allow-methods"]
        other = await http.options(url, headers={"Origin": "http://evil.example", **preflight})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        sent = await http.put(url, content=b"\x89PNG", headers={**headers, "Origin": PAGE_ORIGIN})
        assert sent.status_code == 201
        assert sent.headers["access-control-allow-origin"] == PAGE_ORIGIN
        assert "etag" in sent.headers["access-control-expose-headers"].lower()


async def test_public_files_are_read_from_the_public_container_and_private_ones_never(
    azure_storage: AzureStorage,
) -> None:
    """Azure has no per-blob ACL: public objects go to the public container (anonymous blob reads,
    never a listing), everything else stays in the private one (no anonymous access at all)."""
    public_key, private_key = key().removeprefix("cache/"), key("cv.pdf").removeprefix("cache/")
    await azure_storage.put(public_key, b"\x89PNG", ObjectHeaders("image/png", public=True))
    await azure_storage.put(private_key, b"%PDF", ObjectHeaders("application/pdf", public=False))
    config = azure_storage.config
    public_base = f"{config.blob_endpoint}/{config.public_container}"
    private_base = f"{config.blob_endpoint}/{config.container}"
    assert azure_storage.public_url(public_key).startswith(public_base + "/")
    assert azure_storage.public_url("cache/" + public_key).startswith(private_base + "/")  # quarantine
    async with httpx.AsyncClient() as http:
        answer = await http.get(azure_storage.public_url(public_key))
        assert answer.status_code == 200 and answer.content == b"\x89PNG"
        # The private file is in the private container only: neither URL serves it anonymously.
        for base in (public_base, private_base):
            assert (await http.get(f"{base}/{private_key}")).status_code in (403, 404)
        for base in (public_base, private_base):
            anonymous_write = await http.put(f"{base}/{public_key}", content=b"<html>", headers=BLOCK_BLOB)
            assert anonymous_write.status_code in (401, 403, 404)
            listing = await http.get(f"{base}?restype=container&comp=list")
            assert listing.status_code in (401, 403, 404)  # blob-level public access never lists
    # Reads and deletes find an object in whichever container holds it.
    assert await azure_storage.get(public_key) == b"\x89PNG" and await azure_storage.get(private_key) == b"%PDF"
    assert await azure_storage.list_keys(public_key.rsplit("/", 1)[0] + "/") == [public_key]
    await azure_storage.delete([public_key, private_key])
    assert await azure_storage.head(public_key) is None and await azure_storage.head(private_key) is None


async def test_a_private_container_open_to_anonymous_reads_is_not_ready_until_ensure_bucket_closes_it(
    azurite_server: AzuriteServer,
) -> None:
    from azure.storage.blob import AccessPolicy, ContainerSasPermissions

    config = azurite_server.config()
    storage = await started(config)
    try:
        policy = AccessPolicy(ContainerSasPermissions(read=True), expiry=datetime.now(UTC) + timedelta(days=1))
        await storage.container.set_container_access_policy({"kept": policy}, public_access="blob")
        with pytest.raises(StorageUnavailable) as info:
            await storage.ping()  # what /readyz asks
        assert f"container {config.container} allows anonymous reads" in info.value.message
        await storage.ensure_bucket([PAGE_ORIGIN])
        await storage.ping()
        current = await storage.container.get_container_access_policy()
        assert current["public_access"] is None
        assert [i.id for i in current["signed_identifiers"]] == ["kept"]  # stored policies are kept
    finally:
        await storage.close()
        await remove_buckets(azurite_server, [config.container, str(config.public_container)])


async def test_a_signed_get_cannot_change_the_headers_it_names(azure_storage: AzureStorage) -> None:
    k = key("report.pdf")
    await azure_storage.put(k, b"%PDF", ObjectHeaders("application/pdf", "attachment"))
    url = azure_storage.presign_get_now(k, 60, content_disposition="attachment", content_type="application/pdf")
    assert url is not None
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
        assert (await http.get(with_query(url, rscd="inline", rsct="text/html"))).status_code == 403


async def test_put_block_urls_and_the_multipart_marker(azure_storage: AzureStorage) -> None:
    k = key("big.bin")
    upload_id = await azure_storage.create_multipart_upload(k, ObjectHeaders("application/zip"))
    url = await azure_storage.presign_upload_part(k, upload_id, 7, 300)
    query = dict(parse_qsl(urlsplit(url).query))
    assert (query["comp"], query["blockid"], query["sp"]) == ("block", encoded_block_id(7), "w")
    assert {len(encoded_block_id(n)) for n in (1, 9, 10_000, 50_000)} == {8}  # Azure: one length per blob
    async with httpx.AsyncClient() as http:
        # A block SAS is a write SAS of the object's blob, not of the marker beside it.
        marker = url.split("?")[0] + azure_module.MARKER_SUFFIX + "?" + urlsplit(url).query
        assert (await http.put(marker, content=b"x", headers={"x-ms-blob-type": "BlockBlob"})).status_code == 403
        # Azure refuses a block whose id is not as long as the others'.
        uneven = with_query(url, blockid=base64.b64encode(b"1").decode())
        assert (await http.put(url, content=b"seven")).status_code == 201
        assert (await http.put(uneven, content=b"x")).status_code == 400
    parts = await azure_storage.list_parts(k, upload_id)
    assert parts is not None and [(p.part_number, p.size) for p in parts] == [(7, 5)]
    assert await azure_storage.abort_multipart_upload(k, upload_id)
    assert await azure_storage.abort_multipart_upload(k, upload_id) is False  # no such upload any more
    # Abort discarded the uncommitted blocks at once (Azure would keep them a week).
    blob = azure_storage.container.get_blob_client(k)
    with pytest.raises(Exception) as info:
        await blob.get_block_list("all")
    assert getattr(info.value, "status_code", None) == 404


async def test_copy_of_a_blob_larger_than_one_copy_block(
    azure_storage: AzureStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large blobs are promoted block by block (Put Block From URL), each conditional on the ETag."""
    monkeypatch.setattr(azure_module, "COPY_BLOCK", 4096)
    source, destination = key("big.bin"), key("big.bin").removeprefix("cache/")
    data = bytes(range(256)) * 70  # 17,920 bytes: five blocks
    await azure_storage.put(source, data, ObjectHeaders("text/html"))
    verified = await azure_storage.head(source)
    assert verified is not None
    copied = await azure_storage.copy(
        source, destination, if_match=verified.etag, headers=ObjectHeaders("application/zip", "attachment")
    )
    assert copied.size == len(data) and await azure_storage.get(destination) == data
    committed, _ = await azure_storage.container.get_blob_client(destination).get_block_list("committed")
    assert len(committed) == 5
    head = await azure_storage.head(destination)
    assert head is not None and (head.content_type, head.content_disposition) == ("application/zip", "attachment")


async def test_ping_names_a_missing_container(azurite_server: AzuriteServer) -> None:
    storage = AzureStorage(azurite_server.config())
    await storage.start()
    try:
        with pytest.raises(StorageUnavailable) as info:
            await storage.ping()
        assert "does not exist" in info.value.message
    finally:
        await storage.close()


async def test_a_signed_get_of_a_key_with_spaces_and_accents(azure_storage: AzureStorage) -> None:
    k = key("caf\u00e9 cr\u00e8me + 100%.pdf")
    await azure_storage.put(k, b"%PDF", ObjectHeaders("application/pdf"))
    url = azure_storage.presign_get_now(k, 60, content_disposition="attachment; filename*=UTF-8''caf%C3%A9.pdf")
    assert url is not None and azure_storage.key_from_url(url) == k
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    assert answer.status_code == 200 and answer.content == b"%PDF"
    assert answer.headers["content-disposition"] == "attachment; filename*=UTF-8''caf%C3%A9.pdf"


async def test_a_put_sas_also_allows_put_block_and_the_blocks_are_listed_and_discarded(
    azure_storage: AzureStorage,
) -> None:
    """A create+write SAS lets its holder stage blocks that nobody commits: invisible to a plain
    listing and kept by Azure for a week. The adapter lists them and discards them on delete."""
    k = key("staged.bin")
    url, _ = await presigned(azure_storage, k)
    async with httpx.AsyncClient() as http:
        staged = await http.put(f"{url}&comp=block&blockid={encoded_block_id(1)}", content=b"x" * 1000)
    assert staged.status_code == 201
    assert await azure_storage.head(k) is None  # no blob yet, only a block
    assert await azure_storage.list_keys(k.rsplit("/", 1)[0] + "/") == [k]
    await azure_storage.delete([k])
    assert await azure_storage.list_keys(k.rsplit("/", 1)[0] + "/") == []
    # Where Delete Blob cannot reach such a blob (Azure answers 404), Put Blob then Delete Blob does.
    async with httpx.AsyncClient() as http:
        assert (await http.put(f"{url}&comp=block&blockid={encoded_block_id(2)}", content=b"y")).status_code == 201
    blob = azure_storage.container.get_blob_client(k)
    await azure_storage._discard_blocks(blob)
    with pytest.raises(Exception) as info:
        await blob.get_block_list("all")
    assert getattr(info.value, "status_code", None) == 404


async def test_clients_get_upload_urls_for_quarantine_keys_only(azure_storage: AzureStorage) -> None:
    with pytest.raises(ValueError, match="not a quarantine key"):
        await azure_storage.presign_put(UploadGrant(key="photos/image/x/a.png", expires_in=60, max_size=1))


async def test_malformed_urls_are_foreign(azure_storage: AzureStorage) -> None:
    for broken in ("http://[::1/x", "http://127.0.0.1:99999/x", "http://%zz/x", "ftp://host/x", "", "cache/a/b"):
        assert azure_storage.key_from_url(broken) is None
    k = "photos/image/0123456789abcdef0123456789abcdef/caf\u00e9 + cr\u00e8me.png"
    url = azure_storage.public_url(k)
    assert "%20" in url and azure_storage.key_from_url(url.replace("%C3%A9", "\u00e9").replace("%20", " ")) == k
