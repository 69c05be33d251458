"""Multipart uploads over HTTP, on moto and SeaweedFS: parts PUT straight to storage with presigned
part URLs (to a quarantine key), completed, then saved with record_create through the same verified
path as any upload, which promotes the assembled object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.uploads.multipart import MAX_PARTS, part_plan
from tests.conftest import Harness
from tests.large import (
    MIB,
    MP_ABORT,
    MP_COMPLETE,
    MP_CREATE,
    MP_LIST,
    MP_SIGN,
    SAVE,
    blob,
    download,
    put,
    record_vars,
    schema_dir,
)

pytestmark = pytest.mark.backends("moto", "seaweedfs")


@pytest.fixture
async def big(harness_factory: Any, tmp_path: Path) -> Harness:
    harness: Harness = await harness_factory(SCHEMA_DIR=schema_dir(tmp_path))
    return harness


async def create(h: Harness, size: int, name: str = "film.mp4", ctype: str = "video/mp4") -> dict[str, Any]:
    variables = {"table": "videos", "prop": "clip", "name": name, "type": ctype, "size": size}
    started: dict[str, Any] = (await h.ok(MP_CREATE, variables))["multipart_upload_create"]
    return started


async def sign(h: Harness, started: dict[str, Any], numbers: list[int]) -> dict[int, str]:
    variables = {"id": started["upload_id"], "key": started["key"], "parts": numbers}
    signed = (await h.ok(MP_SIGN, variables))["multipart_upload_sign_parts"]
    return {s["part_number"]: s["url"] for s in signed}


async def send_parts(h: Harness, started: dict[str, Any], chunks: dict[int, bytes]) -> dict[int, str]:
    """PUT each part as Uppy does; the ETag comes back in the response header."""
    urls = await sign(h, started, sorted(chunks))
    etags: dict[int, str] = {}
    for number, chunk in chunks.items():
        response = await put(urls[number], chunk, {})
        assert response.status_code == 200, response.text
        etags[number] = response.headers["ETag"]
    return etags


def split(data: bytes, part_size: int) -> dict[int, bytes]:
    return {i // part_size + 1: data[i : i + part_size] for i in range(0, len(data), part_size)}


async def complete(h: Harness, started: dict[str, Any], etags: dict[int, str]) -> dict[str, Any]:
    parts = [{"part_number": n, "etag": e} for n, e in sorted(etags.items())]
    return await h.gql(MP_COMPLETE, {"id": started["upload_id"], "key": started["key"], "parts": parts})


def code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    result: str = body["errors"][0]["extensions"]["code"]
    return result


async def test_three_parts_completed_saved_and_downloaded_identical(big: Harness) -> None:
    data = blob(10 * MIB + 300 * 1024)
    started = await create(big, len(data), "../My film é.mp4")
    assert started["part_size"] == 5 * MIB and started["part_count"] == 3
    assert started["key"].startswith("cache/videos/clip/") and started["key"].endswith("/My film é.mp4")
    etags = await send_parts(big, started, split(data, started["part_size"]))
    done = (await complete(big, started, etags))["data"]["multipart_upload_complete"]
    assert done["key"] == started["key"] and done["size"] == len(data)

    saved = (await big.ok(SAVE, record_vars("videos", "clip", done["url"], title="Film")))["record_create"]
    assert saved["upload"]["size"] == len(data)
    assert saved["upload"]["content_type"] == "video/mp4"
    assert saved["upload"]["file_name"] == "My film é.mp4"
    got = await download(saved["upload"]["url"])
    assert got.status_code == 200 and got.content == data
    # Promoted with the server's headers; nothing is left in quarantine.
    head = await big.s3.head_object(Bucket=big.bucket, Key=started["key"].removeprefix("cache/"))
    assert head["ContentType"] == "video/mp4"
    assert head["ContentDisposition"].startswith("inline; filename=")
    assert await big.keys() == [started["key"].removeprefix("cache/")]


async def test_resume_after_losing_client_state(big: Harness) -> None:
    data = blob(10 * MIB + 1234, seed=2)
    started = await create(big, len(data))
    chunks = split(data, started["part_size"])
    await send_parts(big, started, {1: chunks[1]})

    # A reload (or another device) knows only upload_id and key: ask storage what is there.
    ids = {"id": started["upload_id"], "key": started["key"]}
    listed = (await big.ok(MP_LIST, ids))["multipart_upload_list_parts"]
    assert [(p["part_number"], p["size"]) for p in listed] == [(1, 5 * MIB)]
    etags = {p["part_number"]: p["etag"] for p in listed}
    # Part URLs can be signed again at any time before the upload expires.
    etags |= await send_parts(big, started, {2: chunks[2], 3: chunks[3]})
    listed = (await big.ok(MP_LIST, ids))["multipart_upload_list_parts"]
    assert [p["part_number"] for p in listed] == [1, 2, 3]

    done = (await complete(big, started, etags))["data"]["multipart_upload_complete"]
    saved = (await big.ok(SAVE, record_vars("videos", "clip", done["key"])))["record_create"]
    assert (await download(saved["upload"]["url"])).content == data


async def test_abort_then_complete_fails(big: Harness) -> None:
    data = blob(6 * MIB, seed=3)
    started = await create(big, len(data))
    etags = await send_parts(big, started, split(data, started["part_size"]))
    ids = {"id": started["upload_id"], "key": started["key"]}
    assert (await big.ok(MP_ABORT, ids))["multipart_upload_abort"] is True
    assert code(await complete(big, started, etags)) == "UPLOAD_EXPIRED"
    assert code(await big.gql(MP_SIGN, ids | {"parts": [1]})) == "UPLOAD_EXPIRED"
    uploads = await big.s3.list_multipart_uploads(Bucket=big.bucket)
    assert uploads.get("Uploads", []) == []
    assert await big.keys() == []


async def test_wrong_etag_and_part_number_checks(big: Harness) -> None:
    data = blob(6 * MIB, seed=4)
    started = await create(big, len(data))
    etags = await send_parts(big, started, split(data, started["part_size"]))
    assert code(await complete(big, started, {1: etags[1], 2: '"0123456789abcdef0123456789abcdef"'})) == (
        "BAD_USER_INPUT"
    )
    assert code(await complete(big, started, {1: etags[1]})) == "UPLOAD_TOO_SMALL"  # part 2 left out
    ids = {"id": started["upload_id"], "key": started["key"]}
    assert code(await big.gql(MP_SIGN, ids | {"parts": [3]})) == "BAD_USER_INPUT"  # only 2 parts
    assert code(await big.gql(MP_SIGN, ids | {"parts": [0]})) == "BAD_USER_INPUT"
    assert code(await big.gql(MP_SIGN, ids | {"parts": [1] * 101})) == "BAD_USER_INPUT"  # 100 per call
    assert code(await big.gql(MP_LIST, ids | {"id": "another-upload-id"})) == "FOREIGN_UPLOAD"
    # Nothing was assembled by the failed attempts; the right ETags still complete it.
    done = (await complete(big, started, etags))["data"]["multipart_upload_complete"]
    assert done["size"] == len(data)


async def test_part_below_five_mib_is_refused_by_storage(big: Harness) -> None:
    started = await create(big, 6 * MIB)
    assert started["part_count"] == 2
    # Same declared total, but split 1 MiB + 5 MiB: S3 (and moto) answer EntityTooSmall.
    etags = await send_parts(big, started, {1: blob(MIB, seed=5), 2: blob(5 * MIB, seed=6)})
    body = await complete(big, started, etags)
    assert code(body) == "UPLOAD_TOO_SMALL"
    assert "5 MiB" in body["errors"][0]["message"]


async def test_oversize_rejected_at_create_and_at_complete(big: Harness) -> None:
    variables = {"table": "videos", "prop": "clip", "name": "big.mp4", "type": "video/mp4"}
    assert await big.error_code(MP_CREATE, variables | {"size": 12 * MIB + 1}) == "UPLOAD_TOO_LARGE"
    assert await big.error_code(MP_CREATE, variables | {"size": 5 * MIB - 1}) == "BAD_USER_INPUT"
    assert await big.error_code(MP_CREATE, variables | {"size": 6 * MIB, "type": "text/html"}) == (
        "CONTENT_TYPE_NOT_ALLOWED"
    )
    docs = {"table": "documents", "prop": "resume", "name": "a.pdf", "type": "application/pdf", "size": 6 * MIB}
    assert await big.error_code(MP_CREATE, docs) == "UPLOAD_TOO_LARGE"  # documents stop at 5 MiB

    # Declared 11 MiB, but the parts storage holds add up to 13 MiB: over the 12 MiB limit.
    started = await create(big, 11 * MIB)
    assert started["part_count"] == 3
    etags = await send_parts(big, started, {1: blob(5 * MIB), 2: blob(5 * MIB), 3: blob(3 * MIB)})
    assert code(await complete(big, started, etags)) == "UPLOAD_TOO_LARGE"
    assert await big.keys() == []
    # Nor can the unfinished key be saved into a record.
    assert await big.error_code(SAVE, record_vars("videos", "clip", started["key"])) == "UPLOAD_NOT_FOUND"


@pytest.mark.parametrize(
    ("size", "plan"),
    [
        (5 * MIB, (5 * MIB, 1)),
        (5 * MIB + 1, (5 * MIB, 2)),
        (50_000 * MIB, (5 * MIB, 10_000)),
        (50_000 * MIB + 1, (6 * MIB, 8334)),
        (5 * 1024**4, (525 * MIB, 9987)),
    ],
)
def test_part_plan_is_deterministic_and_within_s3_limits(size: int, plan: tuple[int, int]) -> None:
    part_size, count = part_plan(size)
    assert (part_size, count) == plan
    assert count <= MAX_PARTS and part_size >= 5 * MIB and (count - 1) * part_size < size <= count * part_size
